// tests/unit/test_attention_fast_modules.cpp — every chapter-3 module and simple_attention on
// the fast backend against the reference backend, on every usable ISA at 1 and N threads:
// a sample of B x T x head_dim x heads (T around tile and block edges up to 300), d_in != d_out,
// qkv_bias on and off, logits up to ~1e4, NaN and inf inputs, train-mode dropout with the
// reference's masks, attention weights, and bitwise-equal outputs for 1 and N threads.
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
#include "support/compare.hpp"
#include "test_attention_fast_support.hpp"

namespace simdattn::test {
namespace {

enum class Kind { v1, v2, causal, wrapper, mha };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::v1: return "SelfAttentionV1";
    case Kind::v2: return "SelfAttentionV2";
    case Kind::causal: return "CausalAttention";
    case Kind::wrapper: return "MultiHeadAttentionWrapper";
    case Kind::mha: return "MultiHeadAttention";
  }
  return "?";
}

struct Case {
  Kind kind = Kind::mha;
  std::int64_t batch = 1, tokens = 1, head_dim = 8, heads = 1, d_in = 8;
  bool bias = false;
  double dropout = 0.0;
  std::string describe() const {
    std::ostringstream os;
    os << kind_name(kind) << " B " << batch << " T " << tokens << " hd " << head_dim << " heads "
       << heads << " d_in " << d_in << " bias " << bias << " dropout " << dropout << " isa "
       << isa_name(active_isa()) << " threads " << num_threads();
    return os.str();
  }
};

std::unique_ptr<AttentionModule> make_module(const Case& c) {
  const std::int64_t ctx = std::max<std::int64_t>(c.tokens, 4);
  switch (c.kind) {
    case Kind::v1: return std::make_unique<SelfAttentionV1>(c.d_in, c.head_dim);
    case Kind::v2: return std::make_unique<SelfAttentionV2>(c.d_in, c.head_dim, c.bias);
    case Kind::causal:
      return std::make_unique<CausalAttention>(c.d_in, c.head_dim, ctx, c.dropout, c.bias);
    case Kind::wrapper:
      return std::make_unique<MultiHeadAttentionWrapper>(c.d_in, c.head_dim, ctx, c.dropout,
                                                          c.heads, c.bias);
    case Kind::mha:
      return std::make_unique<MultiHeadAttention>(c.d_in, c.head_dim * c.heads, ctx, c.dropout,
                                                  c.heads, c.bias);
  }
  return nullptr;
}

/// Error bound of a fast forward against the reference (why): each projection output is a
/// d_in-long float dot product, off by <= (d_in + 4) eps sum_k |x_k w_k| (+|b|); that error in q
/// and k, plus the kernel's own score rounding, moves a scaled score by ds; the attention then
/// errs by attention_tolerance(ds) * max|v| plus the value error; out_proj multiplies the
/// context error by max_o sum_c |wo_oc| and adds its own (inner + 4) eps rounding. Computed from
/// the actual (finite) inputs and weights in double.
struct Tolerance {
  double y = 0.0;        ///< on the module output
  double weights = 0.0;  ///< on attention weights (<= keep_scale each)
};

Tolerance module_tolerance(const AttentionModule& m, const std::vector<float>& x,
                           std::int64_t batch, std::int64_t tokens, double keep_scale) {
  const auto& spec = m.core().spec();
  const auto& w = m.core().weights();
  const std::int64_t d_in = spec.d_in, inner = spec.inner_dim(), hd = spec.head_dim;
  const std::int64_t rows = batch * tokens;
  auto project = [&](const std::vector<float>& wt, const std::vector<float>& bias,
                     std::vector<double>& out, double& err) {
    out.assign(static_cast<std::size_t>(rows * inner), 0.0);
    err = 0.0;
    for (std::int64_t t = 0; t < rows; ++t)
      for (std::int64_t o = 0; o < inner; ++o) {
        double acc = bias.empty() ? 0.0 : bias[static_cast<std::size_t>(o)];
        double mag = std::fabs(acc);
        for (std::int64_t k = 0; k < d_in; ++k) {
          const double xv = x[static_cast<std::size_t>(t * d_in + k)];
          const double wv = wt[static_cast<std::size_t>(o * d_in + k)];
          if (!std::isfinite(xv)) continue;
          acc += xv * wv;
          mag += std::fabs(xv * wv);
        }
        out[static_cast<std::size_t>(t * inner + o)] = acc;
        err = std::max(err, (d_in + 4) * kEps * mag);
      }
  };
  std::vector<double> q, k, v;
  double eq = 0, ek = 0, ev = 0;
  project(w.wq, w.bq, q, eq);
  project(w.wk, w.bk, k, ek);
  project(w.wv, w.bv, v, ev);
  auto amax = [](const std::vector<double>& a) {
    double r = 0;
    for (double z : a) r = std::max(r, std::fabs(z));
    return r;
  };
  const double mq = amax(q), mk = amax(k), mv = amax(v);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  // Largest scaled |q_i|.|k_j| sum per head and batch (what the score rounding scales with).
  double smax = 0.0;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t h = 0; h < spec.num_heads; ++h)
      for (std::int64_t i = 0; i < tokens; ++i)
        for (std::int64_t j = 0; j < tokens; ++j) {
          double s = 0.0;
          for (std::int64_t d = 0; d < hd; ++d)
            s += std::fabs(q[static_cast<std::size_t>((b * tokens + i) * inner + h * hd + d)] *
                           k[static_cast<std::size_t>((b * tokens + j) * inner + h * hd + d)]);
          smax = std::max(smax, s * scale);
        }
  // Projection errors seen as a score error: scale * hd * (eq |k| + ek |q|), folded into an
  // equivalent score magnitude for attention_tolerance.
  const double proj_ds = scale * hd * (eq * mk + ek * mq);
  const double equiv_smax = smax + proj_ds / ((hd + 2) * kEps);
  const double ctx_err =
      attention_tolerance(equiv_smax, hd, tokens, mv, keep_scale) + 2.0 * keep_scale * ev;
  // A weight is a softmax output scaled by the dropout factor: its error is relative to it
  // (exp(2 ds) - 1 plus the sum's rounding), i.e. at most that much of keep_scale in absolute.
  Tolerance tol;
  tol.weights = attention_tolerance(equiv_smax, hd, tokens, 1.0, keep_scale);
  tol.y = ctx_err;
  if (!spec.out_proj) return tol;
  double row_sum = 0.0, bmax = 0.0;
  for (std::int64_t o = 0; o < inner; ++o) {
    double s = 0.0;
    for (std::int64_t c = 0; c < inner; ++c) s += std::fabs(w.wo[static_cast<std::size_t>(o * inner + c)]);
    row_sum = std::max(row_sum, s);
    bmax = std::max(bmax, static_cast<double>(std::fabs(w.bo[static_cast<std::size_t>(o)])));
  }
  const double ctx_max = keep_scale * mv + ctx_err;
  tol.y = 2.0 * (ctx_err * row_sum + (inner + 4) * kEps * (ctx_max * row_sum + bmax)) + 1e-30;
  return tol;
}

/// Runs one case on both backends and compares (optionally in train mode, with weights).
::testing::AssertionResult check_case(const Case& c, std::uint32_t seed, float x_range = 1.0f,
                                      bool train = false, bool weights = false,
                                      std::vector<std::pair<std::size_t, float>> pokes = {},
                                      DType storage = DType::f32) {
  auto m = make_module(c);
  m->init_random(seed);
  if (storage != DType::f32) m->set_weight_storage(storage);  // both backends read it as stored
  std::vector<float> xv = random_values(static_cast<std::size_t>(c.batch * c.tokens * c.d_in),
                                        seed + 1, -x_range, x_range);
  const double keep = train && c.dropout > 0.0 ? 1.0 / (1.0 - c.dropout) : 1.0;
  const Tolerance tol = module_tolerance(*m, xv, c.batch, c.tokens, keep);
  for (const auto& [i, v] : pokes) xv[i] = v;
  const Tensor x({c.batch, c.tokens, c.d_in}, xv);
  ForwardOptions ref_opt, fast_opt;
  ref_opt.backend = Backend::reference;
  ref_opt.train = fast_opt.train = train;
  ref_opt.seed = fast_opt.seed = seed * 7 + 3;
  Tensor w_ref, w_fast;
  if (weights) {
    ref_opt.attn_weights = &w_ref;
    fast_opt.attn_weights = &w_fast;
  }
  const Tensor y_ref = m->forward(x, ref_opt);
  const Tensor y_fast = m->forward(x, fast_opt);
  auto r = all_close(y_ref.values(), y_fast.values(), tol.y, 0.0, c.describe() + " output");
  if (!r || !weights) return r;
  return all_close(w_ref.values(), w_fast.values(), tol.weights, 0.0,
                   c.describe() + " attn_weights");
}

constexpr std::int64_t kTokens[] = {1,  2,  3,  4,  5,  6,  7,  8,   9,   10,  11,  12,  13,  14,
                                    15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 300};
constexpr std::int64_t kHeadDims[] = {1, 2, 3, 7, 8, 16, 31, 64, 65, 128};
constexpr std::int64_t kHeads[] = {1, 2, 3, 12};
constexpr Kind kKinds[] = {Kind::mha, Kind::causal, Kind::wrapper, Kind::v2, Kind::v1};

/// A deterministic sample of the cross product, kept cheap for the double reference: long
/// sequences get narrow models.
std::vector<Case> sampled_cases() {
  std::vector<Case> out;
  std::int64_t i = 0;
  for (std::int64_t t : kTokens) {
    for (int rep = 0; rep < 2; ++rep, ++i) {
      Case c;
      c.kind = kKinds[i % 5];
      c.tokens = t;
      c.batch = 1 + (i * 7) % 3;
      c.head_dim = kHeadDims[(i * 3 + rep) % 10];
      c.heads = (c.kind == Kind::mha || c.kind == Kind::wrapper) ? kHeads[(i / 5 + rep) % 4] : 1;
      if (t > 100) {
        c.heads = std::min<std::int64_t>(c.heads, 2);
        c.head_dim = std::min<std::int64_t>(c.head_dim, 31);
        c.batch = std::min<std::int64_t>(c.batch, 2);
      } else if (c.heads * c.head_dim > 200) {
        c.head_dim = std::max<std::int64_t>(1, 200 / c.heads);
      }
      c.d_in = c.head_dim * c.heads + 1 + (i % 4) * 5;  // d_in != d_out
      c.bias = i % 2 == 1;
      out.push_back(c);
    }
  }
  return out;
}

using FastModules = IsaThreadsTest;

TEST_P(FastModules, SampledShapesMatchTheReference) {
  std::uint32_t seed = 1;
  for (const Case& c : sampled_cases()) ASSERT_TRUE(check_case(c, seed++));
}

TEST_P(FastModules, WideHeadsAndGpt2LikeShapes) {
  ASSERT_TRUE(check_case({Kind::mha, 1, 33, 64, 12, 768, true}, 11));
  ASSERT_TRUE(check_case({Kind::mha, 2, 65, 128, 3, 100, false}, 12));
  ASSERT_TRUE(check_case({Kind::wrapper, 3, 17, 65, 2, 40, true}, 13));
  ASSERT_TRUE(check_case({Kind::mha, 1, 300, 16, 12, 64, true}, 14));
  ASSERT_TRUE(check_case({Kind::causal, 2, 300, 64, 1, 3, false}, 15));
}

// Weights stored as f16, bf16, q8_0 or q4_0: the reference decodes the stored values exactly,
// the fast path reads them as stored; the bound is derived from the stored values.
TEST_P(FastModules, StoredWeightsMatchTheReferenceOnTheStoredValues) {
  for (DType t : {DType::f16, DType::bf16, DType::q8_0, DType::q4_0}) {
    SCOPED_TRACE(dtype_name(t));
    ASSERT_TRUE(check_case({Kind::mha, 2, 70, 32, 2, 64, true}, 21, 1.0f, false, false, {}, t));
    ASSERT_TRUE(check_case({Kind::mha, 1, 33, 64, 12, 768, true}, 22, 1.0f, false, false, {}, t));
    ASSERT_TRUE(check_case({Kind::causal, 3, 17, 64, 1, 96, false}, 23, 1.0f, true, true, {}, t));
    ASSERT_TRUE(check_case({Kind::wrapper, 1, 9, 16, 3, 32, true}, 24, 1.0f, false, false, {}, t));
  }
}

TEST_P(FastModules, LargeLogitsNoOverflowNoNan) {
  // x up to +-60 with nn.Linear-initialised weights drives scaled logits to ~1e3..1e4.
  for (Kind k : {Kind::mha, Kind::causal, Kind::v1}) {
    Case c{k, 2, 70, 16, k == Kind::mha ? 2 : 1, 24, true};
    ASSERT_TRUE(check_case(c, 21, 60.0f));
    auto m = make_module(c);
    m->init_random(21);
    const Tensor x({c.batch, c.tokens, c.d_in},
                   random_values(static_cast<std::size_t>(c.batch * c.tokens * c.d_in), 22, -60.0f, 60.0f));
    const Tensor y = m->forward(x);
    for (float v : y.values()) ASSERT_TRUE(std::isfinite(v));
  }
}

TEST_P(FastModules, NanAndInfInputsPropagateLikeTheReference) {
  const float inf = kInfF, nan = kNanF;
  // One non-finite feature of one token of batch 1: that batch's rows go NaN/inf exactly where
  // the reference's do (through masked weights too); batches 0 and 2 stay finite.
  for (Kind k : {Kind::mha, Kind::causal, Kind::wrapper, Kind::v2}) {
    Case c{k, 3, 40, 8, k == Kind::mha || k == Kind::wrapper ? 2 : 1, 12, true};
    const std::size_t tok = static_cast<std::size_t>((1 * 40 + 25) * 12 + 3);
    ASSERT_TRUE(check_case(c, 31, 1.0f, false, false, {{tok, nan}}));
    ASSERT_TRUE(check_case(c, 32, 1.0f, false, false, {{tok, inf}}));
    ASSERT_TRUE(check_case(c, 33, 1.0f, false, false, {{tok, -inf}, {tok + 12, inf}}));
  }
}

TEST_P(FastModules, TrainModeDropoutDrawsTheReferenceMask) {
  ASSERT_TRUE(check_case({Kind::causal, 2, 45, 16, 1, 20, true, 0.1}, 41, 1.0f, true));
  ASSERT_TRUE(check_case({Kind::mha, 3, 130, 8, 3, 30, false, 0.5}, 42, 1.0f, true));
  ASSERT_TRUE(check_case({Kind::wrapper, 1, 64, 7, 2, 9, true, 0.3}, 43, 1.0f, true));
  // Inference mode never drops, whatever the module's p.
  ASSERT_TRUE(check_case({Kind::mha, 1, 20, 8, 2, 16, true, 0.5}, 44, 1.0f, false));
}

TEST_P(FastModules, AttentionWeightsOnRequest) {
  ASSERT_TRUE(check_case({Kind::causal, 2, 37, 16, 1, 10, true}, 51, 1.0f, false, true));
  ASSERT_TRUE(check_case({Kind::causal, 1, 29, 8, 1, 10, false, 0.2}, 52, 1.0f, true, true));
  ASSERT_TRUE(check_case({Kind::v1, 2, 19, 5, 1, 6}, 53, 1.0f, false, true));
  ASSERT_TRUE(check_case({Kind::v2, 1, 33, 3, 1, 4, true}, 54, 1.0f, false, true));
  ASSERT_TRUE(check_case({Kind::mha, 2, 40, 8, 1, 12, true}, 55, 1.0f, false, true));
}

TEST_P(FastModules, SimpleAttentionMatchesTheReference) {
  for (std::int64_t t : {1, 6, 33, 129})
    for (std::int64_t d : {1, 3, 16, 65}) {
      const std::vector<float> xv = random_values(static_cast<std::size_t>(2 * t * d),
                                                  static_cast<std::uint32_t>(t * 100 + d));
      const Tensor x({2, t, d}, xv);
      ForwardOptions ref;
      ref.backend = Backend::reference;
      Tensor wf, wr;
      ForwardOptions fw;
      fw.attn_weights = &wf;
      ref.attn_weights = &wr;
      const Tensor yr = simple_attention(x, ref);
      const Tensor yf = simple_attention(x);
      const Tensor yfw = simple_attention(x, fw);
      const double tol = attention_tolerance(d * 1.0, d, t, 1.0);
      std::ostringstream what;
      what << "simple_attention T " << t << " d " << d << " isa " << isa_name(active_isa());
      ASSERT_TRUE(all_close(yr.values(), yf.values(), tol, 0.0, what.str()));
      ASSERT_TRUE(all_close(yr.values(), yfw.values(), tol, 0.0, what.str() + " (weights path)"));
      ASSERT_TRUE(all_close(wr.values(), wf.values(), tol, 0.0, what.str() + " weights"));
    }
}

TEST_P(FastModules, SameBitsForOneAndManyThreads) {
  for (const Case& c : {Case{Kind::mha, 3, 257, 16, 3, 50, true, 0.1},
                        Case{Kind::v2, 2, 129, 31, 1, 20, false}}) {
    auto m = make_module(c);
    m->init_random(61);
    const Tensor x({c.batch, c.tokens, c.d_in},
                   random_values(static_cast<std::size_t>(c.batch * c.tokens * c.d_in), 62));
    ForwardOptions opt;
    opt.train = true;
    opt.seed = 5;
    set_num_threads(1);
    const Tensor one = m->forward(x, opt);
    set_num_threads(0);
    const Tensor many = m->forward(x, opt);
    EXPECT_TRUE(bitwise_equal(one.values(), many.values(), c.describe()));
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, FastModules, ::testing::ValuesIn(all_isa_threads()),
                         isa_threads_name);

}  // namespace
}  // namespace simdattn::test
