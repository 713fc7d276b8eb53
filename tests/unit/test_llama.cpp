// tests/unit/test_llama.cpp — LlamaAttention (grouped-query attention, rotary embeddings,
// Hugging Face names) and forward_batch (many sequences, each with its own cache, in one call):
//   - fast vs reference on every usable ISA at 1 and N threads, over H, G, head_dim around the
//     tiles, both rotary layouts, theta, biases and T up to 300, with a bound derived from the
//     data (the rotation computed here in double, independently of the library);
//   - the cached path over prompt/chunk splits, with f32 and stored caches;
//   - forward_batch: each sequence bitwise what it gets alone, at N = 1, 3, 16 and at 1 and N
//     threads, ragged prefill, sequences joining and leaving, and its errors;
//   - the module's arguments and Hugging Face checkpoint loading.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "modules/attention_core.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "simdattn/kv_cache.hpp"
#include "support/compare.hpp"
#include "test_attention_fast_support.hpp"

namespace simdattn::test {
namespace {

struct LlamaCase {
  std::int64_t batch = 1, tokens = 1, heads = 4, kv_heads = 2, head_dim = 16, d_model = 32;
  Rope rope = Rope::halves;
  double theta = 10000.0;
  bool qkv_bias = false, o_bias = false;
  std::string describe() const {
    std::ostringstream os;
    os << "Llama B " << batch << " T " << tokens << " H " << heads << " G " << kv_heads << " hd "
       << head_dim << " d " << d_model << " rope " << rope_name(rope) << " theta " << theta
       << " qkv_bias " << qkv_bias << " o_bias " << o_bias << " isa " << isa_name(active_isa())
       << " threads " << num_threads();
    return os.str();
  }
};

std::unique_ptr<LlamaAttention> make_llama(const LlamaCase& c, std::int64_t context = 0,
                                           std::uint64_t seed = 1) {
  auto m = std::make_unique<LlamaAttention>(c.d_model, c.heads, c.kv_heads, c.head_dim,
                                            context > 0 ? context : std::max<std::int64_t>(c.tokens, 4),
                                            c.rope, c.theta, c.qkv_bias, c.o_bias);
  m->init_random(seed);
  return m;
}

double w_at(const std::vector<float>& v, std::int64_t i) {
  return static_cast<double>(v[static_cast<std::size_t>(i)]);
}

/// Error bound of a fast forward against the reference (why): as for the chapter-3 modules
/// (test_attention_fast_modules.cpp), each projection output is off by <= (d + 4) eps sum |x w|;
/// the rotation mixes the two values of a pair with float cos/sin (each within eps/2) in two
/// rounded products and a rounded sum, so a rotated value is off by <= 2 e + 6 eps (|a| + |b|),
/// e the projection error; the rotated q and k then move a scaled score by ds; the attention
/// errs by attention_tolerance(ds) * max|v| plus the value error; o_proj multiplies that by
/// max_o sum_c |wo_oc| and adds its own rounding. Computed from the actual inputs and weights in
/// double; the rotation here is this file's own (exact angles).
double llama_tolerance(const AttentionModule& m, const std::vector<float>& x, std::int64_t rows,
                       const std::vector<std::int64_t>& positions, std::int64_t tokens_seen) {
  const auto& spec = m.core().spec();
  const auto w = m.core().weights();
  const std::int64_t d = spec.d_in, hd = spec.head_dim, inner = spec.inner_dim();
  const std::int64_t kvd = spec.kv_dim();
  auto project = [&](const std::vector<float>& wt, const std::vector<float>& bias, std::int64_t out,
                     std::vector<double>& val, std::vector<double>& mag) {
    val.assign(static_cast<std::size_t>(rows * out), 0.0);
    mag.assign(val.size(), 0.0);
    for (std::int64_t t = 0; t < rows; ++t)
      for (std::int64_t o = 0; o < out; ++o) {
        double acc = bias.empty() ? 0.0 : bias[static_cast<std::size_t>(o)];
        double mg = std::fabs(acc);
        for (std::int64_t k = 0; k < d; ++k) {
          const double p = static_cast<double>(x[static_cast<std::size_t>(t * d + k)]) *
                           w_at(wt, o * d + k);
          acc += p;
          mg += std::fabs(p);
        }
        val[static_cast<std::size_t>(t * out + o)] = acc;
        mag[static_cast<std::size_t>(t * out + o)] = (d + 4) * kEps * mg;
      }
  };
  std::vector<double> q, qe, k, ke, v, ve;
  project(w.wq, w.bq, inner, q, qe);
  project(w.wk, w.bk, kvd, k, ke);
  project(w.wv, w.bv, kvd, v, ve);
  // Rotate q and k (exact angles) and carry the error through the rotation.
  auto rotate = [&](std::vector<double>& val, std::vector<double>& err, std::int64_t width) {
    if (spec.rope == Rope::none) return;
    for (std::int64_t t = 0; t < rows; ++t)
      for (std::int64_t h0 = 0; h0 < width; h0 += hd)
        for (std::int64_t i = 0; i < hd / 2; ++i) {
          const std::int64_t ia = h0 + (spec.rope == Rope::halves ? i : 2 * i);
          const std::int64_t ib = h0 + (spec.rope == Rope::halves ? i + hd / 2 : 2 * i + 1);
          const double angle = static_cast<double>(positions[static_cast<std::size_t>(t)]) *
                               std::pow(spec.rope_theta, -2.0 * static_cast<double>(i) / hd);
          double& a = val[static_cast<std::size_t>(t * width + ia)];
          double& b = val[static_cast<std::size_t>(t * width + ib)];
          double& ea = err[static_cast<std::size_t>(t * width + ia)];
          double& eb = err[static_cast<std::size_t>(t * width + ib)];
          const double c = std::cos(angle), s = std::sin(angle);
          const double na = a * c - b * s, nb = b * c + a * s;
          const double e = 2.0 * std::max(ea, eb) + 6.0 * kEps * (std::fabs(a) + std::fabs(b));
          a = na;
          b = nb;
          ea = eb = e;
        }
  };
  rotate(q, qe, inner);
  rotate(k, ke, kvd);
  auto amax = [](const std::vector<double>& a) {
    double r = 0;
    for (double z : a) r = std::max(r, std::fabs(z));
    return r;
  };
  const double mq = amax(q), mk = amax(k), mv = amax(v), eq = amax(qe), ek = amax(ke), ev = amax(ve);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  // sum_d |q_d| |k_d| <= hd * max|q| * max|k| (a bound, not the exact largest score).
  const double smax = scale * hd * mq * mk;
  const double proj_ds = scale * hd * (eq * mk + ek * mq);
  const double equiv_smax = smax + proj_ds / ((hd + 2) * kEps);
  const double ctx_err = attention_tolerance(equiv_smax, hd, tokens_seen, mv) + 2.0 * ev;
  double row_sum = 0.0, bmax = 0.0;
  for (std::int64_t o = 0; o < spec.output_dim(); ++o) {
    double s = 0.0;
    for (std::int64_t c = 0; c < inner; ++c) s += std::fabs(w_at(w.wo, o * inner + c));
    row_sum = std::max(row_sum, s);
    if (!w.bo.empty()) bmax = std::max(bmax, std::fabs(w_at(w.bo, o)));
  }
  const double ctx_max = mv + ctx_err;
  return 2.0 * (ctx_err * row_sum + (inner + 4) * kEps * (ctx_max * row_sum + bmax)) + 1e-30;
}

/// Positions 0..T-1 for each of `batch` sequences (a plain forward).
std::vector<std::int64_t> plain_positions(std::int64_t batch, std::int64_t tokens) {
  std::vector<std::int64_t> p;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = 0; t < tokens; ++t) p.push_back(t);
  return p;
}

::testing::AssertionResult check_plain(const LlamaCase& c, std::uint32_t seed) {
  auto m = make_llama(c, 0, seed);
  const std::vector<float> xv =
      random_values(static_cast<std::size_t>(c.batch * c.tokens * c.d_model), seed + 1);
  const double tol = llama_tolerance(*m, xv, c.batch * c.tokens, plain_positions(c.batch, c.tokens),
                                     c.tokens);
  const Tensor x({c.batch, c.tokens, c.d_model}, xv);
  ForwardOptions ref;
  ref.backend = Backend::reference;
  const Tensor yr = m->forward(x, ref);
  const Tensor yf = m->forward(x);
  return all_close(yr.values(), yf.values(), tol, 0.0, c.describe());
}

using Llama = IsaThreadsTest;

TEST_P(Llama, SampledShapesMatchTheReference) {
  constexpr std::int64_t kTokens[] = {1, 2, 3, 7, 8, 9, 17, 63, 64, 65, 129, 300};
  constexpr std::int64_t kHeadDims[] = {2, 8, 16, 24, 32, 64, 80, 128};
  constexpr std::int64_t kGroups[][2] = {{1, 1}, {2, 1}, {4, 2}, {4, 4}, {6, 2}, {8, 1}, {3, 3}};
  std::int64_t i = 0;
  for (std::int64_t t : kTokens)
    for (int rep = 0; rep < 2; ++rep, ++i) {
      LlamaCase c;
      c.tokens = t;
      c.batch = 1 + i % 2;
      c.head_dim = kHeadDims[(i * 3 + rep) % 8];
      c.heads = kGroups[i % 7][0];
      c.kv_heads = kGroups[i % 7][1];
      if (t > 100) {  // keep the double reference cheap
        c.heads = std::min<std::int64_t>(c.heads, 4);
        c.kv_heads = std::min(c.kv_heads, c.heads);
        while (c.heads % c.kv_heads != 0) --c.kv_heads;
        c.head_dim = std::min<std::int64_t>(c.head_dim, 64);
        c.batch = 1;
      }
      c.d_model = 16 + (i % 5) * 24;
      c.rope = rep == 0 ? Rope::halves : (i % 3 == 0 ? Rope::none : Rope::interleaved);
      c.theta = i % 4 == 0 ? 500000.0 : 10000.0;
      c.qkv_bias = i % 2 == 1;
      c.o_bias = i % 3 == 1;
      ASSERT_TRUE(check_plain(c, static_cast<std::uint32_t>(100 + i)));
    }
}

// The bound must be tight enough to catch a wrong rotation: the same module with the other
// layout (or none) is far outside it.
TEST_P(Llama, TheBoundRejectsAWrongRotation) {
  LlamaCase c;
  c.tokens = 40;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 16;
  c.d_model = 32;
  auto m = make_llama(c, 0, 9);
  const std::vector<float> xv = random_values(static_cast<std::size_t>(c.tokens * c.d_model), 10);
  const double tol = llama_tolerance(*m, xv, c.tokens, plain_positions(1, c.tokens), c.tokens);
  const Tensor x({c.tokens, c.d_model}, xv);
  const Tensor y = m->forward(x);
  for (Rope other : {Rope::interleaved, Rope::none}) {
    LlamaCase o = c;
    o.rope = other;
    auto wrong = make_llama(o, 0, 9);  // same weights (same seed), other rotation
    const Tensor yw = wrong->forward(x);
    EXPECT_FALSE(all_close(y.values(), yw.values(), tol, 0.0, "wrong rotation"));
  }
  // A wrong group mapping (K/V head h % G instead of h / (H/G)) as well: reorder the query
  // heads' weights so that each reads the other K/V head.
  TensorMap sd = m->state_dict();
  Tensor& wq = sd.at("q_proj.weight");
  const std::int64_t hd = c.head_dim, d = c.d_model;
  std::vector<float> swapped = wq.values();
  // Heads 1 and 2 trade places (head 1 reads K/V head 0, head 2 K/V head 1).
  for (std::int64_t r = 0; r < hd; ++r)
    for (std::int64_t k = 0; k < d; ++k)
      std::swap(swapped[static_cast<std::size_t>((hd + r) * d + k)],
                swapped[static_cast<std::size_t>((2 * hd + r) * d + k)]);
  sd.at("q_proj.weight") = Tensor(wq.shape(), swapped);
  auto permuted = make_llama(c, 0, 9);
  permuted->load_state_dict(sd);
  EXPECT_FALSE(all_close(y.values(), permuted->forward(x).values(), tol, 0.0, "wrong group"));
}

TEST_P(Llama, CachedSplitsMatchTheReference) {
  for (DType kv : {DType::f32, DType::f16, DType::q8_0}) {
    LlamaCase c;
    c.heads = 6;
    c.kv_heads = 2;
    c.head_dim = 32;
    c.d_model = 64;
    c.qkv_bias = true;
    c.rope = kv == DType::f16 ? Rope::interleaved : Rope::halves;
    const std::int64_t total = 70;
    auto m = make_llama(c, 128, 21);
    const std::vector<float> xv = random_values(static_cast<std::size_t>(total * c.d_model), 22);
    // Reference: the same splits through a reference cache (both read K/V as stored).
    for (const std::vector<std::int64_t>& split :
         {std::vector<std::int64_t>{70}, {1, 1, 1, 67}, {33, 1, 2, 30, 4}}) {
      KVCache cf(*m, 1, 0, false, kv), cr(*m, 1, 0, false, kv);
      std::int64_t at = 0;
      for (std::int64_t n : split) {
        const Tensor x({n, c.d_model},
                       std::vector<float>(xv.begin() + at * c.d_model, xv.begin() + (at + n) * c.d_model));
        ForwardOptions ref;
        ref.backend = Backend::reference;
        const Tensor yr = m->forward(x, cr, ref);
        const Tensor yf = m->forward(x, cf);
        std::vector<std::int64_t> pos;
        for (std::int64_t t = 0; t < n; ++t) pos.push_back(at + t);
        const std::vector<float> xs(xv.begin() + at * c.d_model, xv.begin() + (at + n) * c.d_model);
        // K/V storage rounding is common to both backends (they read the same stored rows).
        const double tol = llama_tolerance(*m, xs, n, pos, at + n);
        ASSERT_TRUE(all_close(yr.values(), yf.values(), tol, 0.0,
                              c.describe() + " kv " + dtype_name(kv) + " chunk at " +
                                  std::to_string(at)));
        at += n;
      }
      EXPECT_EQ(cf.position(), total);
    }
  }
}

// Non-finite values go where the reference puts them, plain and through a cache: an Inf or NaN
// in a key weight, rotated (Inf * sin 0 is NaN at position 0) and grouped. The finite elements
// are held to 1e-3 only: the derived bounds are checked above; here the question is where the
// non-finite values go.
TEST_P(Llama, NonFiniteWeightsPropagateLikeTheReference) {
  for (Rope rope : {Rope::halves, Rope::interleaved})
    for (float bad : {kInfF, -kInfF, kNanF}) {
      LlamaCase c;
      c.heads = 4;
      c.kv_heads = 2;
      c.head_dim = 16;
      c.d_model = 32;
      c.rope = rope;
      auto m = make_llama(c, 16, 61);
      TensorMap sd = m->state_dict();
      sd.at("k_proj.weight")[5 * c.d_model + 3] = bad;  // K/V head 0, dimension 5
      m->load_state_dict(sd);
      const std::vector<float> xv = random_values(static_cast<std::size_t>(9 * c.d_model), 62);
      ForwardOptions ref;
      ref.backend = Backend::reference;
      const Tensor x({9, c.d_model}, xv);
      ASSERT_TRUE(all_close(m->forward(x, ref).values(), m->forward(x).values(), 1e-3, 1e-3,
                            c.describe() + " plain"));
      KVCache cf(*m, 1), cr(*m, 1);
      for (std::int64_t t = 0; t < 9; ++t) {
        const Tensor xt({1, c.d_model}, std::vector<float>(xv.begin() + t * c.d_model,
                                                            xv.begin() + (t + 1) * c.d_model));
        ASSERT_TRUE(all_close(m->forward(xt, cr, ref).values(), m->forward(xt, cf).values(), 1e-3,
                              1e-3, c.describe() + " cached token " + std::to_string(t)));
      }
    }
}

// A cache holds G heads: its bytes are G/H of the same model's with G = H.
TEST_P(Llama, CacheHoldsTheKvHeadsOnly) {
  LlamaAttention gqa(64, 8, 2, 16, 32), mha(64, 8, 8, 16, 32), mqa(64, 8, 1, 16, 32);
  const KVCache a(gqa, 1), b(mha, 1), c(mqa, 1);
  EXPECT_EQ(a.bytes() * 4, b.bytes());
  EXPECT_EQ(c.bytes() * 8, b.bytes());
  EXPECT_EQ(gqa.num_kv_heads(), 2);
  EXPECT_EQ(gqa.output_dim(), 64);
}

/// N sequences of different cache lengths decoded together: each must have the bits it has
/// alone (one forward_batch step of that sequence only), at every step.
void check_batch_invariance(std::int64_t n, DType kv_type, std::int64_t prompt_tokens_per_seq,
                            std::int64_t d_model = 64) {
  LlamaCase c;
  c.heads = 8;
  c.kv_heads = 2;
  c.head_dim = 32;  // a q8_0 cache needs a multiple of 32
  c.d_model = d_model;
  c.qkv_bias = true;
  c.o_bias = true;
  auto m = make_llama(c, 256, 31);
  const std::int64_t d = c.d_model;
  std::vector<KVCache> together, alone;
  for (std::int64_t i = 0; i < n; ++i) {
    together.emplace_back(*m, 1, 0, false, kv_type);
    alone.emplace_back(*m, 1, 0, false, kv_type);
  }
  // Prompts of different lengths (a ragged prefill), then decode steps.
  std::vector<std::int64_t> lengths;
  for (std::int64_t i = 0; i < n; ++i) lengths.push_back(1 + (i * prompt_tokens_per_seq) % 37);
  for (int step = 0; step < 4; ++step) {
    std::vector<AttentionModule::SequenceStep> steps;
    std::int64_t rows = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t t = step == 0 ? lengths[static_cast<std::size_t>(i)] : (step == 2 ? 2 : 1);
      steps.push_back({&together[static_cast<std::size_t>(i)], t});
      rows += t;
    }
    const std::vector<float> xv = random_values(static_cast<std::size_t>(rows * d),
                                                static_cast<std::uint32_t>(500 + step));
    const Tensor x({rows, d}, xv);
    Tensor y;
    m->forward_batch(x, steps, y);
    std::int64_t row = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t t = steps[static_cast<std::size_t>(i)].tokens;
      const Tensor xi({t, d}, std::vector<float>(xv.begin() + row * d, xv.begin() + (row + t) * d));
      Tensor yi;
      m->forward_batch(xi, {{&alone[static_cast<std::size_t>(i)], t}}, yi);
      const std::vector<float> got(y.values().begin() + row * d, y.values().begin() + (row + t) * d);
      ASSERT_TRUE(bitwise_equal(yi.values(), got,
                                "sequence " + std::to_string(i) + " of " + std::to_string(n) +
                                    " step " + std::to_string(step) + " kv " + dtype_name(kv_type) +
                                    " isa " + isa_name(active_isa()) + " threads " +
                                    std::to_string(num_threads())));
      row += t;
    }
  }
}

TEST_P(Llama, BatchedSequencesGetTheBitsTheyGetAlone) {
  for (std::int64_t n : {1, 3, 16}) check_batch_invariance(n, DType::f32, 7);
  // A reduction longer than every ISA's depth slice (kc <= 1024): 16 rows take the blocked
  // GEMM, one row the small-M path, and the two must still agree.
  check_batch_invariance(16, DType::f32, 5, 1088);
  check_batch_invariance(5, DType::q8_0, 11);
  check_batch_invariance(4, DType::f16, 3);
}

// forward_batch against the reference backend, and against forward_into of each sequence's
// own cache (the single-sequence cached path): a batch changes nothing.
TEST_P(Llama, BatchedDecodeMatchesTheReferenceAndTheSingleSequencePath) {
  LlamaCase c;
  c.heads = 4;
  c.kv_heads = 1;
  c.head_dim = 32;
  c.d_model = 48;
  c.rope = Rope::interleaved;
  c.theta = 500000.0;
  auto m = make_llama(c, 64, 41);
  const std::int64_t n = 3, d = c.d_model;
  std::vector<KVCache> fast, ref, single;
  for (std::int64_t i = 0; i < n; ++i) {
    fast.emplace_back(*m, 1);
    ref.emplace_back(*m, 1);
    single.emplace_back(*m, 1);
  }
  const std::int64_t prompt[] = {5, 1, 12};
  for (int step = 0; step < 3; ++step) {
    std::vector<AttentionModule::SequenceStep> sf, sr;
    std::int64_t rows = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t t = step == 0 ? prompt[i] : 1;
      sf.push_back({&fast[static_cast<std::size_t>(i)], t});
      sr.push_back({&ref[static_cast<std::size_t>(i)], t});
      rows += t;
    }
    const std::vector<float> xv = random_values(static_cast<std::size_t>(rows * d),
                                                static_cast<std::uint32_t>(42 + step));
    const Tensor x({rows, d}, xv);
    Tensor yf, yr;
    m->forward_batch(x, sf, yf);
    ForwardOptions ro;
    ro.backend = Backend::reference;
    m->forward_batch(x, sr, yr, ro);
    std::int64_t row = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t t = sf[static_cast<std::size_t>(i)].tokens;
      const std::vector<float> xs(xv.begin() + row * d, xv.begin() + (row + t) * d);
      const std::int64_t before = fast[static_cast<std::size_t>(i)].position() - t;
      std::vector<std::int64_t> pos;
      for (std::int64_t j = 0; j < t; ++j) pos.push_back(before + j);
      const double tol = llama_tolerance(*m, xs, t, pos, before + t);
      const std::vector<float> got(yf.values().begin() + row * d, yf.values().begin() + (row + t) * d);
      const std::vector<float> want(yr.values().begin() + row * d, yr.values().begin() + (row + t) * d);
      ASSERT_TRUE(all_close(want, got, tol, 0.0, "sequence " + std::to_string(i)));
      Tensor ys;
      m->forward_into(Tensor({t, d}, xs), single[static_cast<std::size_t>(i)], ys);
      ASSERT_TRUE(bitwise_equal(ys.values(), got, "forward_into vs forward_batch " + std::to_string(i)));
      row += t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, Llama, ::testing::ValuesIn(all_isa_threads()), isa_threads_name);

// Batch invariance does not depend on the thread count either: the same batch at 1 and N
// threads gives the same bits (N above the small-M kernel's max_m rows: row chunks of it).
TEST(LlamaBatch, SameBitsAtOneAndManyThreads) {
  LlamaCase c;
  c.heads = 8;
  c.kv_heads = 4;
  c.head_dim = 32;
  c.d_model = 256;
  auto m = make_llama(c, 64, 51);
  std::vector<float> outs[2];
  for (int threads : {1, 0}) {
    set_num_threads(threads);
    std::vector<KVCache> caches;
    std::vector<AttentionModule::SequenceStep> steps;
    for (int i = 0; i < 16; ++i) caches.emplace_back(*m, 1);
    for (int i = 0; i < 16; ++i) steps.push_back({&caches[static_cast<std::size_t>(i)], 1 + i % 3});
    std::int64_t rows = 0;
    for (const auto& s : steps) rows += s.tokens;
    const Tensor x({rows, c.d_model}, random_values(static_cast<std::size_t>(rows * c.d_model), 52));
    Tensor y;
    m->forward_batch(x, steps, y);
    outs[threads == 1 ? 0 : 1] = y.values();
  }
  set_num_threads(0);
  EXPECT_TRUE(bitwise_equal(outs[0], outs[1], "1 vs N threads"));
}

// Sequences join and leave between calls; the caches of the others are not disturbed, and a
// steady loop reuses y's storage.
TEST(LlamaBatch, SequencesJoinAndLeave) {
  LlamaAttention m(32, 4, 2, 8, 64);
  m.init_random(3);
  KVCache a(m, 1), b(m, 1), c(m, 1);
  Tensor y;
  m.forward_batch(Tensor({3, 32}, random_values(96, 1)), {{&a, 2}, {&b, 1}}, y);
  const float* storage = y.data();
  m.forward_batch(Tensor({3, 32}, random_values(96, 2)), {{&a, 1}, {&b, 1}, {&c, 1}}, y);
  EXPECT_EQ(y.data(), storage);  // same shape: reused
  m.forward_batch(Tensor({2, 32}, random_values(64, 3)), {{&c, 1}, {&a, 1}}, y);  // b left
  EXPECT_EQ(a.position(), 4);
  EXPECT_EQ(b.position(), 2);
  EXPECT_EQ(c.position(), 2);
  b.reset();  // a new sequence takes b's cache
  m.forward_batch(Tensor({1, 32}, random_values(32, 4)), {{&b, 1}}, y);
  EXPECT_EQ(b.position(), 1);
}

TEST(LlamaBatch, ErrorsChangeNothing) {
  LlamaAttention m(32, 4, 2, 8, 16), other(32, 4, 2, 8, 16);
  KVCache a(m, 1), b(m, 1), wide(m, 2), foreign(other, 1), small(m, 1, 2);
  Tensor y;
  const Tensor x2({2, 32}), x1({1, 32});
  auto code = [&](const Tensor& x, std::vector<AttentionModule::SequenceStep> steps) {
    try {
      m.forward_batch(x, steps, y);
    } catch (const Error& e) {
      return e.code();
    }
    return static_cast<ErrorCode>(0);
  };
  EXPECT_EQ(code(x2, {{&a, 1}, {&a, 1}}), ErrorCode::invalid_argument);   // shared cache
  EXPECT_EQ(code(x2, {{&wide, 2}}), ErrorCode::invalid_argument);          // batch 2
  EXPECT_EQ(code(x2, {{&foreign, 2}}), ErrorCode::invalid_argument);       // other module
  EXPECT_EQ(code(x2, {{&a, 1}}), ErrorCode::invalid_argument);             // rows != tokens
  EXPECT_EQ(code(x1, {{&a, 0}}), ErrorCode::invalid_argument);             // tokens < 1
  EXPECT_EQ(code(x1, {}), ErrorCode::invalid_argument);                    // no sequences
  EXPECT_EQ(code(x1, {{nullptr, 1}}), ErrorCode::invalid_argument);
  m.forward_batch(x2, {{&small, 2}}, y);
  EXPECT_EQ(code(Tensor({3, 32}), {{&b, 2}, {&small, 1}}), ErrorCode::capacity);  // small is full
  EXPECT_EQ(b.position(), 0);  // checked before anything changed
  EXPECT_EQ(small.position(), 2);
  EXPECT_EQ(a.position(), 0);
}

TEST(LlamaModule, ArgumentsAreChecked) {
  auto code = [](auto make) {
    try {
      make();
    } catch (const Error& e) {
      return e.code();
    }
    return static_cast<ErrorCode>(0);
  };
  EXPECT_EQ(code([] { LlamaAttention(32, 6, 4, 8, 16); }), ErrorCode::invalid_argument);  // G !| H
  EXPECT_EQ(code([] { LlamaAttention(32, 4, 0, 8, 16); }), ErrorCode::invalid_argument);
  EXPECT_EQ(code([] { LlamaAttention(32, 4, 2, 7, 16); }), ErrorCode::invalid_argument);  // odd hd
  EXPECT_EQ(code([] { LlamaAttention(32, 4, 2, 8, 16, Rope::halves, 0.0); }),
            ErrorCode::invalid_argument);
  EXPECT_EQ(code([] { LlamaAttention(32, 4, 2, 8, 0); }), ErrorCode::invalid_argument);
  LlamaAttention odd(32, 4, 2, 7, 16, Rope::none);  // no rotation: any head_dim
  EXPECT_EQ(odd.rope(), Rope::none);
  EXPECT_EQ(parse_rope("interleaved"), Rope::interleaved);
  EXPECT_EQ(code([] { parse_rope("rotate"); }), ErrorCode::invalid_argument);
  // T > context_length, like the other causal modules.
  LlamaAttention m(32, 4, 2, 8, 16);
  EXPECT_EQ(code([&] { m.forward(Tensor({17, 32})); }), ErrorCode::invalid_argument);
}

TEST(LlamaModule, HuggingFaceNamesAndCheckpointLayers) {
  LlamaAttention m(32, 4, 2, 8, 16, Rope::halves, 10000.0, /*qkv_bias=*/true, /*o_bias=*/false);
  std::vector<std::string> names;
  for (const ParamInfo& p : m.parameters()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"q_proj.weight", "q_proj.bias", "k_proj.weight",
                                             "k_proj.bias", "v_proj.weight", "v_proj.bias",
                                             "o_proj.weight"}));
  EXPECT_EQ(m.state_dict().at("k_proj.weight").shape(), (std::vector<std::int64_t>{16, 32}));
  EXPECT_EQ(m.state_dict().at("o_proj.weight").shape(), (std::vector<std::int64_t>{32, 32}));
  m.init_random(5);
  TensorMap ckpt;
  for (const auto& [k, v] : m.state_dict()) ckpt.emplace("model.layers.3.self_attn." + k, v);
  ckpt.emplace("model.layers.3.self_attn.rotary_emb.inv_freq", Tensor({4}));  // ignored
  ckpt.emplace("model.layers.3.mlp.up_proj.weight", Tensor({2, 2}));          // not attention
  ckpt.emplace("model.layers.13.self_attn.q_proj.weight", Tensor({2, 2}));    // another layer
  LlamaAttention n(32, 4, 2, 8, 16, Rope::halves, 10000.0, true, false);
  n.load_state_dict(hf_attention_state_dict(ckpt, 3));
  const Tensor x({5, 32}, random_values(160, 6));
  EXPECT_TRUE(bitwise_equal(m.forward(x).values(), n.forward(x).values(), "loaded layer"));
  EXPECT_THROW(hf_attention_state_dict(ckpt, 4), Error);
}

}  // namespace
}  // namespace simdattn::test
