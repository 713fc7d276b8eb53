// tests/unit/test_kv_cache.cpp — forward through a KVCache: a prompt prefilled and the rest
// decoded a token (or a few) at a time equals one full forward over the whole sequence, for the
// three causal modules on the reference backend and on the fast backend at every usable ISA;
// training-mode dropout draws the same mask; sliding-window caches attend to exactly the window
// they document; one module serves interleaved caches; and every misuse is a clean Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "common/dropout.hpp"
#include "modules/attention_core.hpp"
#include "modules/kv_cache_storage.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/runtime.hpp"
#include "support/compare.hpp"
#include "support/required_isas.hpp"
#include "test_attention_fast_support.hpp"

namespace simdattn::test {
namespace {

enum class Kind { causal, wrapper, mha };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::causal: return "CausalAttention";
    case Kind::wrapper: return "MultiHeadAttentionWrapper";
    case Kind::mha: return "MultiHeadAttention";
  }
  return "?";
}

struct Shape {
  Kind kind = Kind::mha;
  std::int64_t batch = 1, tokens = 1, head_dim = 4, heads = 1, d_in = 5;
  bool bias = false;
  double dropout = 0.0;
  std::string describe() const {
    std::ostringstream os;
    os << kind_name(kind) << " B " << batch << " T " << tokens << " hd " << head_dim
       << " heads " << heads << " d_in " << d_in << " bias " << bias << " dropout " << dropout;
    return os.str();
  }
};

std::unique_ptr<AttentionModule> make_module(const Shape& s, std::int64_t context = 0) {
  const std::int64_t ctx = context > 0 ? context : s.tokens;
  switch (s.kind) {
    case Kind::causal:
      return std::make_unique<CausalAttention>(s.d_in, s.head_dim, ctx, s.dropout, s.bias);
    case Kind::wrapper:
      return std::make_unique<MultiHeadAttentionWrapper>(s.d_in, s.head_dim, ctx, s.dropout,
                                                          s.heads, s.bias);
    case Kind::mha:
      return std::make_unique<MultiHeadAttention>(s.d_in, s.head_dim * s.heads, ctx, s.dropout,
                                                  s.heads, s.bias);
  }
  return nullptr;
}

std::string schedule_to_string(const std::vector<std::int64_t>& chunks) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < chunks.size() && i < 6; ++i) os << (i ? " " : "") << chunks[i];
  if (chunks.size() > 6) os << " ... (" << chunks.size() << " chunks)";
  os << "]";
  return os.str();
}

/// How a sequence of T tokens is fed: a prompt of P tokens, then one at a time (P = 0: every
/// token decoded alone; P = T: one prefill); or chunks of several tokens.
std::vector<std::int64_t> prefill_then_decode(std::int64_t tokens, std::int64_t prefill) {
  std::vector<std::int64_t> out;
  if (prefill > 0) out.push_back(prefill);
  for (std::int64_t t = prefill; t < tokens; ++t) out.push_back(1);
  return out;
}

std::vector<std::int64_t> ragged_chunks(std::int64_t tokens) {
  static constexpr std::int64_t kCycle[] = {3, 1, 5, 2, 8, 16, 4};
  std::vector<std::int64_t> out;
  for (std::int64_t t = 0, i = 0; t < tokens; ++i) {
    const std::int64_t n = std::min<std::int64_t>(kCycle[i % 7], tokens - t);
    out.push_back(n);
    t += n;
  }
  return out;
}

std::vector<std::vector<std::int64_t>> schedules(std::int64_t tokens) {
  std::vector<std::vector<std::int64_t>> out;
  for (std::int64_t p : {std::int64_t{0}, std::int64_t{1}, tokens / 2, tokens - 1, tokens})
    out.push_back(prefill_then_decode(tokens, std::clamp<std::int64_t>(p, 0, tokens)));
  out.push_back(ragged_chunks(tokens));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

/// Tokens [t0, t0 + n) of every batch row of x [B, T, d]: [B, n, d].
Tensor slice_tokens(const Tensor& x, std::int64_t t0, std::int64_t n) {
  const std::int64_t batch = x.dim(0), tokens = x.dim(1), d = x.dim(2);
  Tensor out({batch, n, d});
  for (std::int64_t b = 0; b < batch; ++b)
    std::copy_n(x.data() + (b * tokens + t0) * d, n * d, out.data() + b * n * d);
  return out;
}

/// Writes y [B, n, d] into tokens [t0, t0 + n) of out [B, T, d].
void place_tokens(const Tensor& y, std::int64_t t0, Tensor& out) {
  const std::int64_t batch = out.dim(0), tokens = out.dim(1), d = out.dim(2), n = y.dim(1);
  for (std::int64_t b = 0; b < batch; ++b)
    std::copy_n(y.data() + b * n * d, n * d, out.data() + (b * tokens + t0) * d);
}

/// Feeds x [B, T, d_in] through `cache` in the given chunks; returns the outputs side by side
/// [B, T, output_dim], checking length() and position() after every call.
Tensor run_chunks(const AttentionModule& m, KVCache& cache, const Tensor& x,
                  const std::vector<std::int64_t>& chunks, const ForwardOptions& options) {
  Tensor y({x.dim(0), x.dim(1), m.output_dim()});
  std::int64_t t = 0;
  for (std::int64_t n : chunks) {
    const std::int64_t before = cache.position();
    place_tokens(m.forward(slice_tokens(x, t, n), cache, options), t, y);
    t += n;
    EXPECT_EQ(cache.position(), before + n);
    EXPECT_EQ(cache.length(), cache.sliding_window() ? std::min(cache.position(), cache.capacity())
                                                     : cache.position());
  }
  return y;
}

/// A bound on |cached forward - exact| (and the reference's own rounding), derived from the
/// actual weights and inputs (why): each projection is a d_in-long float dot product, off by
/// <= (d_in + 4) eps sum|x w| (+|b|) — the reference's float-rounded cached K/V are within that
/// too; those errors move a scaled score by at most scale hd (e_q max|k| + e_k max|q|), which
/// with the score's own rounding (Cauchy-Schwarz bounds |q|.|k| by |q| |k|) gives
/// attention_tolerance over T keys, plus the value error; out_proj multiplies the context error
/// by its largest row sum of |w| and adds its own (inner + 4) eps rounding. Slack factor 2.
double cache_tolerance(const AttentionModule& m, const Tensor& x, double keep_scale) {
  const auto& spec = m.core().spec();
  const auto& w = m.core().weights();
  const std::int64_t d_in = spec.d_in, inner = spec.inner_dim(), hd = spec.head_dim;
  const std::int64_t rows = x.numel() / d_in, tokens = x.dim(x.rank() - 2);
  double mq = 0, mk = 0, mv = 0, eq = 0, ek = 0, ev = 0, qn = 0, kn = 0;
  auto project = [&](const std::vector<float>& wt, const std::vector<float>& b, double& amax,
                     double& err, double* norm) {
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t h = 0; h < spec.num_heads; ++h) {
        double sq = 0.0;
        for (std::int64_t c = 0; c < hd; ++c) {
          const std::int64_t o = h * hd + c;
          double acc = b.empty() ? 0.0 : b[static_cast<std::size_t>(o)];
          double mag = std::fabs(acc);
          for (std::int64_t k = 0; k < d_in; ++k) {
            const double p = double(x[r * d_in + k]) * wt[static_cast<std::size_t>(o * d_in + k)];
            acc += p;
            mag += std::fabs(p);
          }
          amax = std::max(amax, std::fabs(acc));
          err = std::max(err, (d_in + 4) * kEps * mag);
          sq += acc * acc;
        }
        if (norm) *norm = std::max(*norm, std::sqrt(sq));
      }
  };
  project(w.wq, w.bq, mq, eq, &qn);
  project(w.wk, w.bk, mk, ek, &kn);
  project(w.wv, w.bv, mv, ev, nullptr);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const double smax = scale * qn * kn;
  const double proj_ds = scale * hd * (eq * mk + ek * mq);
  const double equiv_smax = smax + proj_ds / ((hd + 2) * kEps);
  const double ctx_err =
      attention_tolerance(equiv_smax, hd, tokens, mv, keep_scale) + 2.0 * keep_scale * ev;
  if (!spec.out_proj) return ctx_err + kEps * keep_scale * mv;
  double row_sum = 0.0, bmax = 0.0;
  for (std::int64_t o = 0; o < inner; ++o) {
    double s = 0.0;
    for (std::int64_t c = 0; c < inner; ++c)
      s += std::fabs(w.wo[static_cast<std::size_t>(o * inner + c)]);
    row_sum = std::max(row_sum, s);
    bmax = std::max(bmax, double(std::fabs(w.bo[static_cast<std::size_t>(o)])));
  }
  const double ctx_max = keep_scale * mv + ctx_err;
  return 2.0 * (ctx_err * row_sum + (inner + 4) * kEps * (ctx_max * row_sum + bmax)) + 1e-30;
}

/// Windowed causal attention in double, straight from the module's weights: query t of the
/// sequence attends to keys [lo[t], t]. With `dropout`, the mask at absolute positions.
std::vector<float> windowed_oracle(const AttentionModule& m, const Tensor& x,
                                   const std::vector<std::int64_t>& lo,
                                   const detail::DropoutParams& dropout = {}) {
  const auto& spec = m.core().spec();
  const auto& w = m.core().weights();
  const std::int64_t batch = x.dim(0), tokens = x.dim(1), d_in = spec.d_in;
  const std::int64_t inner = spec.inner_dim(), hd = spec.head_dim, out_dim = spec.output_dim();
  auto at = [](std::int64_t r, std::int64_t cols, std::int64_t c) {
    return static_cast<std::size_t>(r * cols + c);
  };
  std::vector<float> y(static_cast<std::size_t>(batch * tokens * out_dim));
  for (std::int64_t b = 0; b < batch; ++b) {
    std::vector<double> q(static_cast<std::size_t>(tokens * inner)), k(q.size()), v(q.size());
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t o = 0; o < inner; ++o) {
        const std::size_t oi = static_cast<std::size_t>(o);
        double aq = w.bq.empty() ? 0.0 : w.bq[oi], ak = w.bk.empty() ? 0.0 : w.bk[oi],
               av = w.bv.empty() ? 0.0 : w.bv[oi];
        for (std::int64_t c = 0; c < d_in; ++c) {
          const double xv = x[(b * tokens + t) * d_in + c];
          aq += xv * w.wq[at(o, d_in, c)];
          ak += xv * w.wk[at(o, d_in, c)];
          av += xv * w.wv[at(o, d_in, c)];
        }
        q[at(t, inner, o)] = aq;
        k[at(t, inner, o)] = ak;
        v[at(t, inner, o)] = av;
      }
    std::vector<double> ctx(static_cast<std::size_t>(tokens * inner), 0.0);
    for (std::int64_t h = 0; h < spec.num_heads; ++h)
      for (std::int64_t i = 0; i < tokens; ++i) {
        const std::int64_t first = lo[static_cast<std::size_t>(i)];
        std::vector<double> s(static_cast<std::size_t>(i + 1 - first));
        double mx = -1e300, sum = 0.0;
        for (std::int64_t j = first; j <= i; ++j) {
          double acc = 0.0;
          for (std::int64_t c = 0; c < hd; ++c)
            acc += q[at(i, inner, h * hd + c)] * k[at(j, inner, h * hd + c)];
          s[static_cast<std::size_t>(j - first)] = acc / std::sqrt(double(hd));
          mx = std::max(mx, s[static_cast<std::size_t>(j - first)]);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (std::int64_t j = first; j <= i; ++j) {
          double p = s[static_cast<std::size_t>(j - first)] / sum;
          if (dropout.active())
            p = detail::dropout_keep(dropout, std::uint64_t(b), std::uint64_t(h),
                                     std::uint64_t(i), std::uint64_t(j))
                    ? p * dropout.keep_scale()
                    : 0.0;
          for (std::int64_t c = 0; c < hd; ++c)
            ctx[at(i, inner, h * hd + c)] += p * v[at(j, inner, h * hd + c)];
        }
      }
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t o = 0; o < out_dim; ++o) {
        double acc = ctx[at(t, inner, o)];
        if (spec.out_proj) {
          acc = w.bo[static_cast<std::size_t>(o)];
          for (std::int64_t c = 0; c < inner; ++c) acc += ctx[at(t, inner, c)] * w.wo[at(o, inner, c)];
        }
        y[static_cast<std::size_t>((b * tokens + t) * out_dim + o)] = static_cast<float>(acc);
      }
  }
  return y;
}

/// The window each query sees, from the documented eviction rule (kv_cache.hpp,
/// KVCache::Storage::make_room): before a chunk of n tokens is written, a full sliding cache
/// keeps only its capacity - n most recent tokens; query i of the chunk then sees those, the
/// chunk's earlier tokens and itself. Decoding one token at a time, query p sees
/// max(0, p - capacity + 1) .. p.
std::vector<std::int64_t> window_starts(const std::vector<std::int64_t>& chunks,
                                        std::int64_t capacity) {
  std::vector<std::int64_t> lo;
  std::int64_t length = 0, position = 0;
  for (std::int64_t n : chunks) {
    if (length + n > capacity) length = capacity - n;
    for (std::int64_t i = 0; i < n; ++i) lo.push_back(position - length);
    length += n;
    position += n;
  }
  return lo;
}

// ---- the backend / ISA parameterisation -----------------------------------------------------

struct Path {
  Backend backend;
  Isa isa;          ///< forced with set_isa on the fast backend
  int threads = 0;  ///< set_num_threads; 0: the machine's concurrency
};

std::string path_name(const ::testing::TestParamInfo<Path>& info) {
  if (info.param.backend == Backend::reference) return "reference";
  return std::string("fast_") + isa_name(info.param.isa) +
         (info.param.threads == 1 ? "_1thread" : "_Nthreads");
}

class KVCacheOnPath : public ::testing::TestWithParam<Path> {
 protected:
  void SetUp() override {
    const Path p = GetParam();
    if (p.backend == Backend::fast) {
      SIMDATTN_SKIP_UNLESS_USABLE(p.isa);
      saved_isa_ = active_isa();
      set_isa(p.isa);
      set_num_threads(p.threads);
      restore_ = true;
    }
    options_.backend = p.backend;
  }
  void TearDown() override {
    if (!restore_) return;
    set_isa(saved_isa_);
    set_num_threads(0);
  }
  std::string where() const {
    return std::string(backend_name(GetParam().backend)) + " isa " + isa_name(active_isa()) +
           " threads " + std::to_string(num_threads());
  }

  /// Every schedule of `shape` against the reference's full forward.
  void check_schedules(const Shape& shape, std::uint32_t seed, bool train = false) {
    auto m = make_module(shape);
    m->init_random(seed);
    const Tensor x({shape.batch, shape.tokens, shape.d_in},
                   random_values(static_cast<std::size_t>(shape.batch * shape.tokens * shape.d_in),
                                 seed + 1));
    ForwardOptions full_opt = options_;
    full_opt.backend = Backend::reference;
    full_opt.train = train;
    full_opt.seed = seed * 3 + 1;
    ForwardOptions opt = options_;
    opt.train = train;
    opt.seed = full_opt.seed;
    const Tensor expected = m->forward(x, full_opt);
    const double keep = train && shape.dropout > 0.0 ? 1.0 / (1.0 - shape.dropout) : 1.0;
    const double tol = cache_tolerance(*m, x, keep);
    KVCache cache(*m, shape.batch);
    EXPECT_EQ(cache.capacity(), shape.tokens);
    for (const auto& chunks : schedules(shape.tokens)) {
      cache.reset();
      const Tensor y = run_chunks(*m, cache, x, chunks, opt);
      ASSERT_TRUE(all_close(expected.values(), y.values(), tol, 0.0,
                            shape.describe() + " chunks " + schedule_to_string(chunks) + " on " +
                                where()));
    }
  }

  ForwardOptions options_;

 private:
  Isa saved_isa_ = Isa::sse2;
  bool restore_ = false;
};

/// Every causal module over lengths from 1 to 300, head widths around SIMD widths and tiles
/// (odd ones included), batch 1 to 3, bias alternating.
std::vector<Shape> shapes() {
  std::vector<Shape> out;
  struct Size {
    std::int64_t batch, tokens;
  };
  constexpr Size kSizes[] = {{2, 1}, {1, 2}, {3, 5}, {2, 17}, {1, 33}, {2, 64}, {1, 129}, {2, 300}};
  constexpr std::int64_t kHeadDims[] = {3, 8, 16, 17, 64, 5, 33, 4};
  int i = 0;
  for (Kind kind : {Kind::causal, Kind::wrapper, Kind::mha})
    for (const Size& sz : kSizes) {
      Shape s;
      s.kind = kind;
      s.batch = sz.batch;
      s.tokens = sz.tokens;
      s.heads = kind == Kind::causal ? 1 : 2 + i % 2;
      s.head_dim = kHeadDims[(i + static_cast<int>(kind)) % 8];
      s.d_in = 2 + (i * 3) % 11;
      s.bias = i % 2 == 0;
      out.push_back(s);
      ++i;
    }
  return out;
}

TEST_P(KVCacheOnPath, PrefillPlusDecodeEqualsFullForward) {
  std::uint32_t seed = 100;
  for (const Shape& s : shapes()) check_schedules(s, seed += 7);
}

TEST_P(KVCacheOnPath, QkvBiasBothWays) {
  for (bool bias : {false, true}) {
    check_schedules({Kind::mha, 2, 33, 8, 2, 12, bias}, bias ? 201 : 202);
    check_schedules({Kind::causal, 1, 20, 5, 1, 3, bias}, bias ? 203 : 204);
  }
}

TEST_P(KVCacheOnPath, TrainModeDropoutDrawsTheFullForwardsMask) {
  check_schedules({Kind::mha, 2, 40, 4, 3, 7, true, 0.5}, 301, /*train=*/true);
  check_schedules({Kind::causal, 3, 25, 6, 1, 5, false, 0.2}, 302, true);
  check_schedules({Kind::wrapper, 1, 31, 3, 2, 4, true, 0.7}, 303, true);
}

TEST_P(KVCacheOnPath, GptLikeWidth) {
  // Head width 64 and 12 heads, as in GPT-2 small, over a short sequence.
  const Shape s{Kind::mha, 1, 9, 64, 12, 96, true};
  auto m = make_module(s);
  m->init_random(401);
  const Tensor x({1, 9, 96}, random_values(9 * 96, 402));
  ForwardOptions ref;
  ref.backend = Backend::reference;
  const Tensor expected = m->forward(x, ref);
  KVCache cache(*m, 1);
  const Tensor y = run_chunks(*m, cache, x, prefill_then_decode(9, 4), options_);
  ASSERT_TRUE(all_close(expected.values(), y.values(), cache_tolerance(*m, x, 1.0), 0.0,
                        s.describe() + " on " + where()));
}

TEST_P(KVCacheOnPath, RankTwoInputHasBatchOne) {
  const Shape s{Kind::mha, 1, 6, 4, 2, 5, true};
  auto m = make_module(s);
  m->init_random(411);
  const std::vector<float> xv = random_values(6 * 5, 412);
  ForwardOptions ref;
  ref.backend = Backend::reference;
  const Tensor expected = m->forward(Tensor({6, 5}, xv), ref);
  KVCache cache(*m, 1);
  const Tensor y0 = m->forward(Tensor({4, 5}, std::vector<float>(xv.begin(), xv.begin() + 20)),
                               cache, options_);
  const Tensor y1 = m->forward(Tensor({2, 5}, std::vector<float>(xv.begin() + 20, xv.end())),
                               cache, options_);
  ASSERT_EQ(y0.shape(), (std::vector<std::int64_t>{4, 8}));
  ASSERT_EQ(y1.shape(), (std::vector<std::int64_t>{2, 8}));
  std::vector<float> y(y0.values());
  y.insert(y.end(), y1.values().begin(), y1.values().end());
  ASSERT_TRUE(all_close(expected.values(), y,
                        cache_tolerance(*m, Tensor({1, 6, 5}, xv), 1.0), 0.0, where()));
}

TEST_P(KVCacheOnPath, SlidingWindowDecodeAttendsToTheLastCapacityTokens) {
  for (const Shape& s : {Shape{Kind::mha, 2, 40, 5, 2, 6, true},
                         Shape{Kind::causal, 1, 23, 7, 1, 4, false},
                         Shape{Kind::wrapper, 3, 19, 3, 3, 5, true}})
    for (std::int64_t capacity : {1, 2, 7, 16}) {
      auto m = make_module(s);
      m->init_random(static_cast<std::uint64_t>(500 + capacity));
      const Tensor x({s.batch, s.tokens, s.d_in},
                     random_values(static_cast<std::size_t>(s.batch * s.tokens * s.d_in),
                                   static_cast<std::uint32_t>(501 + capacity)));
      KVCache cache(*m, s.batch, capacity, /*sliding_window=*/true);
      EXPECT_TRUE(cache.sliding_window());
      EXPECT_EQ(cache.capacity(), capacity);
      const auto chunks = prefill_then_decode(s.tokens, std::min<std::int64_t>(capacity, 3));
      const std::vector<std::int64_t> lo = window_starts(chunks, capacity);
      for (std::int64_t p = std::min<std::int64_t>(capacity, 3); p < s.tokens; ++p)
        ASSERT_EQ(lo[static_cast<std::size_t>(p)], std::max<std::int64_t>(0, p - capacity + 1));
      const Tensor y = run_chunks(*m, cache, x, chunks, options_);
      EXPECT_EQ(cache.length(), capacity);
      EXPECT_EQ(cache.position(), s.tokens);
      ASSERT_TRUE(all_close(windowed_oracle(*m, x, lo), y.values(), cache_tolerance(*m, x, 1.0),
                            0.0, s.describe() + " window " + std::to_string(capacity) + " on " +
                                     where()));
    }
}

TEST_P(KVCacheOnPath, SlidingWindowChunksEvictBeforeWriting) {
  const Shape s{Kind::mha, 2, 50, 4, 2, 5, false, 0.4};
  auto m = make_module(s);
  m->init_random(601);
  const Tensor x({2, 50, 5}, random_values(2 * 50 * 5, 602));
  const std::int64_t capacity = 9;
  const std::vector<std::int64_t> chunks{5, 4, 1, 9, 3, 3, 7, 1, 1, 8, 2, 6};  // sums to 50
  const auto lo = window_starts(chunks, capacity);
  for (bool train : {false, true}) {
    ForwardOptions opt = options_;
    opt.train = train;
    opt.seed = 77;
    KVCache cache(*m, 2, capacity, true);
    const Tensor y = run_chunks(*m, cache, x, chunks, opt);
    const detail::DropoutParams drop{train ? s.dropout : 0.0, 77};
    ASSERT_TRUE(all_close(windowed_oracle(*m, x, lo, drop), y.values(),
                          cache_tolerance(*m, x, train ? 1.0 / 0.6 : 1.0), 0.0,
                          std::string("sliding chunks train ") + (train ? "1" : "0") + " on " +
                              where()));
  }
  // A chunk larger than the window cannot be held even by a sliding cache.
  KVCache cache(*m, 2, capacity, true);
  try {
    m->forward(slice_tokens(x, 0, capacity + 1), cache, options_);
    ADD_FAILURE() << "no error for a chunk larger than the window";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::capacity) << e.what();
  }
  EXPECT_EQ(cache.length(), 0);
}

TEST_P(KVCacheOnPath, OneModuleServesInterleavedCaches) {
  const Shape s{Kind::mha, 2, 21, 6, 2, 7, true};
  auto m = make_module(s);
  m->init_random(701);
  constexpr int kSeqs = 3;
  std::vector<Tensor> xs;
  std::vector<std::vector<std::int64_t>> plans;
  for (int i = 0; i < kSeqs; ++i) {
    xs.emplace_back(std::vector<std::int64_t>{2, 21, 7},
                    random_values(2 * 21 * 7, static_cast<std::uint32_t>(702 + i)));
    plans.push_back(i == 0 ? ragged_chunks(21) : prefill_then_decode(21, 4 * i));
  }
  // Separately, one after the other.
  std::vector<Tensor> alone;
  for (int i = 0; i < kSeqs; ++i) {
    KVCache c(*m, 2);
    alone.push_back(run_chunks(*m, c, xs[i], plans[i], options_));
  }
  // Interleaved: one chunk of each sequence in turn, each through its own cache.
  std::vector<KVCache> caches;
  std::vector<Tensor> mixed;
  std::vector<std::int64_t> next(kSeqs, 0), done(kSeqs, 0);
  for (int i = 0; i < kSeqs; ++i) {
    caches.emplace_back(*m, 2);
    mixed.emplace_back(std::vector<std::int64_t>{2, 21, m->output_dim()});
  }
  for (bool progress = true; progress;) {
    progress = false;
    for (int i = 0; i < kSeqs; ++i) {
      auto& plan = plans[static_cast<std::size_t>(i)];
      std::int64_t& k = next[static_cast<std::size_t>(i)];
      if (k == static_cast<std::int64_t>(plan.size())) continue;
      std::int64_t& t = done[static_cast<std::size_t>(i)];
      const std::int64_t n = plan[static_cast<std::size_t>(k++)];
      place_tokens(m->forward(slice_tokens(xs[i], t, n), caches[i], options_), t, mixed[i]);
      t += n;
      progress = true;
    }
  }
  for (int i = 0; i < kSeqs; ++i)
    ASSERT_TRUE(bitwise_equal(alone[i].values(), mixed[i].values(),
                              "sequence " + std::to_string(i) + " on " + where()));
}

TEST_P(KVCacheOnPath, CapacityOverflowIsAnErrorAndChangesNothing) {
  const Shape s{Kind::mha, 1, 12, 4, 2, 5, true};
  auto m = make_module(s);
  m->init_random(801);
  const Tensor x({1, 12, 5}, random_values(60, 802));
  ForwardOptions ref;
  ref.backend = Backend::reference;
  const Tensor expected = m->forward(x, ref);
  KVCache cache(*m, 1, 10);
  Tensor y({1, 12, m->output_dim()});
  place_tokens(m->forward(slice_tokens(x, 0, 8), cache, options_), 0, y);
  try {
    m->forward(slice_tokens(x, 8, 3), cache, options_);
    ADD_FAILURE() << "appending past the capacity did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::capacity) << e.what();
    EXPECT_NE(std::string(e.what()).find("capacity (10)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cache.length(), 8);
  EXPECT_EQ(cache.position(), 8);
  // The cache is intact: the two tokens that still fit continue the sequence correctly.
  place_tokens(m->forward(slice_tokens(x, 8, 2), cache, options_), 8, y);
  EXPECT_EQ(cache.length(), 10);
  EXPECT_THROW(m->forward(slice_tokens(x, 10, 1), cache, options_), Error);
  EXPECT_EQ(cache.length(), 10);
  std::vector<float> got(y.values().begin(), y.values().begin() + 10 * m->output_dim());
  std::vector<float> want(expected.values().begin(),
                          expected.values().begin() + 10 * m->output_dim());
  ASSERT_TRUE(all_close(want, got, cache_tolerance(*m, x, 1.0), 0.0, where()));
}

TEST_P(KVCacheOnPath, ResetStartsANewSequence) {
  const Shape s{Kind::wrapper, 2, 10, 3, 2, 4, false};
  auto m = make_module(s);
  m->init_random(901);
  const Tensor a({2, 10, 4}, random_values(80, 902));
  const Tensor b({2, 10, 4}, random_values(80, 903));
  KVCache cache(*m, 2);
  const Tensor ya = run_chunks(*m, cache, a, ragged_chunks(10), options_);
  EXPECT_EQ(cache.length(), 10);
  cache.reset();
  EXPECT_EQ(cache.length(), 0);
  EXPECT_EQ(cache.position(), 0);
  EXPECT_EQ(cache.capacity(), 10);
  const Tensor yb = run_chunks(*m, cache, b, prefill_then_decode(10, 3), options_);
  KVCache fresh(*m, 2);
  const Tensor yb_fresh = run_chunks(*m, fresh, b, prefill_then_decode(10, 3), options_);
  ASSERT_TRUE(bitwise_equal(yb_fresh.values(), yb.values(), "after reset on " + where()));
  cache.reset();
  const Tensor ya2 = run_chunks(*m, cache, a, ragged_chunks(10), options_);
  ASSERT_TRUE(bitwise_equal(ya.values(), ya2.values(), "again after reset on " + where()));
}

TEST_P(KVCacheOnPath, TruncateRewindsToAnEarlierPrefix) {
  const Shape s{Kind::mha, 2, 14, 5, 3, 5, true};
  auto m = make_module(s);
  m->init_random(911);
  const Tensor a({2, 14, 5}, random_values(140, 912));
  const Tensor b({2, 14, 5}, random_values(140, 913));
  // The same 9-token prefix, then two continuations: a's last 5 tokens are appended, dropped
  // again, and b's appended instead. Expected: a fresh cache fed prefix + b's tokens.
  Tensor prefix_then_b = a;
  place_tokens(slice_tokens(b, 9, 5), 9, prefix_then_b);
  KVCache fresh(*m, 2);
  const Tensor want = run_chunks(*m, fresh, prefix_then_b, prefill_then_decode(14, 9), options_);

  KVCache cache(*m, 2);
  run_chunks(*m, cache, a, prefill_then_decode(14, 9), options_);
  cache.truncate(0);
  EXPECT_EQ(cache.length(), 14);
  cache.truncate(5);
  EXPECT_EQ(cache.length(), 9);
  EXPECT_EQ(cache.position(), 9);
  Tensor got = want;  // rows 0..8 are not recomputed here; 9..13 are overwritten below
  for (std::int64_t t = 9; t < 14; ++t)
    place_tokens(m->forward(slice_tokens(b, t, 1), cache, options_), t, got);
  ASSERT_TRUE(bitwise_equal(want.values(), got.values(), "decode after truncate on " + where()));
}

/// x with element (b, t, feature 1) set to `value`.
Tensor poked(const Tensor& x, std::int64_t b, std::int64_t t, float value) {
  Tensor out = x;
  out.data()[(b * x.dim(1) + t) * x.dim(2) + 1] = value;
  return out;
}

bool all_nan(const float* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isnan(p[i])) return false;
  return true;
}

TEST_P(KVCacheOnPath, NonFiniteTokenReachesOnlyTheRowsThatSeeIt) {
  // One token of x NaN or +-inf, in batch row 1 only. Through a cache, whatever the split:
  // rows before it are exactly the forward of the finite prefix (within the derived
  // tolerance), its own row and every later one of that batch row are non-finite, and batch
  // row 0 never notices. The plain forward follows the book instead (attn_weights @ values:
  // 0 * NaN reaches every row), so there every row of batch row 1 is NaN.
  for (Kind kind : {Kind::mha, Kind::causal})
    for (float value : {kNanF, kInfF, -kInfF})
      for (std::int64_t t : {0, 2, 9, 31}) {
        const Shape s{kind, 2, 37, 16, kind == Kind::causal ? 1 : 2, 6, true};
        auto m = make_module(s);
        m->init_random(900 + static_cast<std::uint64_t>(t));
        const Tensor clean({2, 37, 6}, random_values(2 * 37 * 6, 901 + static_cast<std::uint32_t>(t)));
        const Tensor x = poked(clean, 1, t, value);
        const std::int64_t od = m->output_dim();
        const std::string what = s.describe() + " token " + std::to_string(t) + " value " +
                                 std::to_string(value) + " on " + where();
        ForwardOptions ref;
        ref.backend = Backend::reference;
        const Tensor expected_clean = m->forward(clean, ref);
        const double tol = cache_tolerance(*m, clean, 1.0);

        const Tensor plain = m->forward(x, options_);
        ASSERT_TRUE(all_nan(plain.data() + 37 * od, 37 * od)) << "plain forward, " << what;
        ASSERT_TRUE(all_close(expected_clean.data(), plain.data(), 37 * od, tol, 0.0,
                              "plain forward, batch row 0, " + what));

        KVCache cache(*m, 2);
        for (const auto& chunks : schedules(37)) {
          cache.reset();
          const Tensor y = run_chunks(*m, cache, x, chunks, options_);
          const std::string w = what + " chunks " + schedule_to_string(chunks);
          ASSERT_TRUE(all_close(expected_clean.data(), y.data(), 37 * od, tol, 0.0,
                                "batch row 0, " + w));
          ASSERT_TRUE(all_close(expected_clean.data() + 37 * od, y.data() + 37 * od, t * od,
                                tol, 0.0, "rows before the token, " + w));
          for (std::int64_t r = t; r < 37; ++r) {
            const float* row = y.data() + (37 + r) * od;
            bool finite_row = true;
            for (std::int64_t c = 0; c < od; ++c) finite_row = finite_row && std::isfinite(row[c]);
            ASSERT_FALSE(finite_row) << "row " << r << " sees the token but is finite, " << w;
          }
        }
      }
}

TEST_P(KVCacheOnPath, NanTokenRowsAreNanWhateverTheSplit) {
  // A NaN token makes its q, k and v NaN: every row that sees it is NaN everywhere, on the
  // decode kernel (one token per call) as on flash attention (chunks), reference alike.
  const Shape s{Kind::mha, 1, 40, 8, 2, 5, false};
  auto m = make_module(s);
  m->init_random(911);
  const Tensor x = poked(Tensor({1, 40, 5}, random_values(200, 912)), 0, 17, kNanF);
  KVCache cache(*m, 1);
  for (const auto& chunks : schedules(40)) {
    cache.reset();
    const Tensor y = run_chunks(*m, cache, x, chunks, options_);
    for (std::int64_t r = 0; r < 40; ++r) {
      const float* row = y.data() + r * 8 * 2;
      ASSERT_EQ(all_nan(row, 16), r >= 17) << "row " << r << " chunks "
                                           << schedule_to_string(chunks) << " on " << where();
      if (r < 17) {
        for (std::int64_t c = 0; c < 16; ++c) ASSERT_TRUE(std::isfinite(row[c]));
      }
    }
  }
}

TEST_P(KVCacheOnPath, NonFiniteWeightsPoisonWhatTheyTouch) {
  // A NaN in W_value poisons one value column for every token: all of out_proj's outputs. A
  // NaN in out_proj.bias poisons its output column only. An inf in W_query makes every score
  // of its head non-finite. Same on the plain forward and through a cache, any split.
  const Shape s{Kind::mha, 1, 20, 8, 2, 5, true};
  struct Case {
    const char* key;
    std::int64_t index;
    float value;
    std::int64_t poisoned_column;  ///< -1: every column
  };
  for (const Case& c : {Case{"W_value.weight", 13, kNanF, -1}, Case{"out_proj.bias", 3, kNanF, 3},
                        Case{"W_query.weight", 7, kInfF, -1},
                        // NaN queries over finite keys and values: every score of head 0 is
                        // NaN, which must make its rows NaN (not "nothing to attend to").
                        Case{"W_query.bias", 2, kNanF, -1}}) {
    auto m = make_module(s);
    m->init_random(921);
    TensorMap state = m->state_dict();
    state.at(c.key).data()[c.index] = c.value;
    m->load_state_dict(state);
    const Tensor x({1, 20, 5}, random_values(100, 922));
    auto check = [&](const Tensor& y, const std::string& what) {
      for (std::int64_t r = 0; r < 20; ++r)
        for (std::int64_t col = 0; col < 16; ++col) {
          const float v = y.data()[r * 16 + col];
          const bool poisoned = c.poisoned_column < 0 || col == c.poisoned_column;
          ASSERT_EQ(std::isfinite(v), !poisoned)
              << c.key << " row " << r << " column " << col << " value " << v << ", " << what;
        }
    };
    check(m->forward(x, options_), std::string("plain on ") + where());
    KVCache cache(*m, 1);
    for (const auto& chunks : schedules(20)) {
      cache.reset();
      check(run_chunks(*m, cache, x, chunks, options_),
            "chunks " + schedule_to_string(chunks) + " on " + where());
    }
  }
}

TEST_P(KVCacheOnPath, AttentionWeightsFollowTheBookWithNonFiniteTokens) {
  // CausalAttention's attention weights: the book masks scores with -inf before the softmax,
  // so rows before a NaN token are the clean rows, and every row from it on is NaN.
  auto m = make_module(Shape{Kind::causal, 1, 30, 8, 1, 5, true});
  m->init_random(931);
  const Tensor clean({1, 30, 5}, random_values(150, 932));
  const Tensor x = poked(clean, 0, 11, kNanF);
  Tensor w, w_clean;
  ForwardOptions opt = options_;
  opt.attn_weights = &w;
  m->forward(x, opt);
  ForwardOptions ref;
  ref.backend = Backend::reference;
  ref.attn_weights = &w_clean;
  m->forward(clean, ref);
  ASSERT_EQ(w.values().size(), 30u * 30u);
  ASSERT_TRUE(all_close(w_clean.data(), w.data(), 11 * 30, 1e-6, 0.0, "rows before, " + where()));
  ASSERT_TRUE(all_nan(w.data() + 11 * 30, 19 * 30)) << where();
}

TEST_P(KVCacheOnPath, PositionsPast2To24StayExact) {
  // A sliding cache's position grows without bound; masks compare positions as integers (the
  // kernels see positions relative to the block), so a cache whose absolute positions are
  // 2^24 (and 2^33) higher gives the same bits as one that starts at 0. Positions are shifted
  // through the cache's storage, as if that many tokens had slid past.
  const Shape s{Kind::mha, 1, 45, 8, 2, 5, false};
  auto m = make_module(s);
  m->init_random(941);
  const Tensor x({1, 45, 5}, random_values(225, 942));
  const std::vector<std::int64_t> chunks{6, 1, 1, 7, 2, 1, 9, 3, 1, 5, 1, 8};  // 45
  KVCache base(*m, 1, 16, true);
  const Tensor expected = run_chunks(*m, base, x, chunks, options_);
  for (std::int64_t shift : {std::int64_t{1} << 24, (std::int64_t{1} << 33) + 3}) {
    KVCache cache(*m, 1, 16, true);
    cache.storage().position = shift;  // nothing held yet: only the absolute positions move
    Tensor y({1, 45, m->output_dim()});
    std::int64_t t = 0;
    for (std::int64_t n : chunks) {
      place_tokens(m->forward(slice_tokens(x, t, n), cache, options_), t, y);
      t += n;
    }
    EXPECT_EQ(cache.position(), shift + 45);
    ASSERT_TRUE(bitwise_equal(expected.values(), y.values(),
                              "shift " + std::to_string(shift) + " on " + where()));
  }
}

std::vector<Path> all_paths() {
  std::vector<Path> out{{Backend::reference, Isa::sse2}};
  for (Isa isa : {Isa::sse2, Isa::avx2, Isa::avx512, Isa::neon})
    for (int threads : {1, 0}) out.push_back({Backend::fast, isa, threads});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Paths, KVCacheOnPath, ::testing::ValuesIn(all_paths()), path_name);

// ---- construction, queries and misuse (backend independent) ---------------------------------

::testing::AssertionResult throws_code(const std::function<void()>& f, ErrorCode code,
                                       const std::vector<std::string>& substrings = {}) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (e.code() != code)
      return ::testing::AssertionFailure() << "ErrorCode " << static_cast<int>(e.code()) << ": "
                                           << msg;
    for (const auto& s : substrings)
      if (msg.find(s) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << s << "\"";
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

TEST(KVCache, QueriesAfterConstruction) {
  MultiHeadAttention m(6, 8, 32, 0.0, 2);
  KVCache a(m, 3);
  EXPECT_EQ(a.capacity(), 32);  // 0: the module's context_length
  EXPECT_EQ(a.batch(), 3);
  EXPECT_EQ(a.length(), 0);
  EXPECT_EQ(a.position(), 0);
  EXPECT_FALSE(a.sliding_window());
  KVCache b(m, 1, 100, true);  // a capacity past context_length is the caller's choice
  EXPECT_EQ(b.capacity(), 100);
  EXPECT_TRUE(b.sliding_window());
  KVCache moved(std::move(b));
  EXPECT_EQ(moved.capacity(), 100);
  ForwardOptions ref;
  ref.backend = Backend::reference;
  m.forward(Tensor({1, 5, 6}), moved, ref);
  EXPECT_EQ(moved.length(), 5);
  EXPECT_EQ(moved.position(), 5);
  KVCache c(m, 2, 7);
  c = std::move(moved);
  EXPECT_EQ(c.length(), 5);
  EXPECT_EQ(c.batch(), 1);
}

TEST(KVCache, TruncateOutOfRangeIsAnErrorAndChangesNothing) {
  MultiHeadAttention m(6, 8, 16, 0.0, 2);
  KVCache cache(m, 1);
  ForwardOptions ref;
  ref.backend = Backend::reference;
  m.forward(Tensor({1, 4, 6}), cache, ref);
  EXPECT_TRUE(throws_code([&] { cache.truncate(5); }, ErrorCode::invalid_argument,
                          {"truncate", "5", "[0, 4]"}));
  EXPECT_TRUE(throws_code([&] { cache.truncate(-1); }, ErrorCode::invalid_argument,
                          {"truncate", "-1"}));
  EXPECT_EQ(cache.length(), 4);
  EXPECT_EQ(cache.position(), 4);
  cache.truncate(4);
  EXPECT_EQ(cache.length(), 0);
  EXPECT_EQ(cache.position(), 0);
  KVCache moved_to(std::move(cache));
  EXPECT_TRUE(throws_code([&] { cache.truncate(0); }, ErrorCode::invalid_argument,
                          {"moved from"}));
}

TEST(KVCache, ConstructionErrors) {
  MultiHeadAttention mha(6, 8, 32, 0.0, 2);
  EXPECT_TRUE(throws_code([&] { KVCache c(mha, 1, -1); }, ErrorCode::invalid_argument,
                          {"capacity", "-1"}));
  EXPECT_TRUE(throws_code([&] { KVCache c(mha, 0); }, ErrorCode::invalid_argument, {"batch"}));
  EXPECT_TRUE(throws_code([&] { KVCache c(mha, -2); }, ErrorCode::invalid_argument, {"batch"}));
  SelfAttentionV1 v1(4, 4);
  SelfAttentionV2 v2(4, 4, true);
  EXPECT_TRUE(throws_code([&] { KVCache c(v1, 1); }, ErrorCode::invalid_argument,
                          {"SelfAttentionV1", "not causal"}));
  EXPECT_TRUE(throws_code([&] { KVCache c(v2, 1, 8); }, ErrorCode::invalid_argument,
                          {"SelfAttentionV2", "not causal"}));
  EXPECT_TRUE(throws_code([&] { KVCache c(mha, std::int64_t{1} << 40, 1 << 20); },
                          ErrorCode::invalid_argument));
}

TEST(KVCache, ForwardMisuseIsAnErrorAndChangesNothing) {
  MultiHeadAttention m(6, 8, 16, 0.0, 2);
  MultiHeadAttention twin(6, 8, 16, 0.0, 2);  // same shape, different module
  CausalAttention other(6, 8, 16, 0.0);
  ForwardOptions ref;
  ref.backend = Backend::reference;
  KVCache cache(m, 2);
  m.forward(Tensor({2, 3, 6}), cache, ref);
  const auto unchanged = [&] { return cache.length() == 3 && cache.position() == 3; };
  EXPECT_TRUE(throws_code([&] { twin.forward(Tensor({2, 1, 6}), cache, ref); },
                          ErrorCode::invalid_argument, {"different module"}));
  EXPECT_TRUE(throws_code([&] { other.forward(Tensor({2, 1, 6}), cache, ref); },
                          ErrorCode::invalid_argument, {"different module"}));
  EXPECT_TRUE(throws_code([&] { m.forward(Tensor({3, 1, 6}), cache, ref); },
                          ErrorCode::invalid_argument, {"batch", "(3)", "(2)"}));
  EXPECT_TRUE(throws_code([&] { m.forward(Tensor({1, 6}), cache, ref); },
                          ErrorCode::invalid_argument, {"batch"}));  // rank 2 is batch 1
  EXPECT_TRUE(throws_code([&] { m.forward(Tensor({2, 1, 5}), cache, ref); },
                          ErrorCode::invalid_argument, {"d_in"}));
  EXPECT_TRUE(throws_code([&] { m.forward(Tensor({2, 0, 6}), cache, ref); },
                          ErrorCode::invalid_argument, {"T"}));
  EXPECT_TRUE(throws_code([&] { m.forward(Tensor({6}), cache, ref); },
                          ErrorCode::invalid_argument, {"rank"}));
  EXPECT_TRUE(throws_code([&] { m.forward(Tensor({1, 2, 1, 6}), cache, ref); },
                          ErrorCode::invalid_argument, {"rank"}));
  Tensor weights;
  ForwardOptions with_weights = ref;
  with_weights.attn_weights = &weights;
  EXPECT_TRUE(throws_code([&] { m.forward(Tensor({2, 1, 6}), cache, with_weights); },
                          ErrorCode::invalid_argument, {"attn_weights"}));
  EXPECT_TRUE(throws_code([&] { m.forward(Tensor({2, 14, 6}), cache, ref); }, ErrorCode::capacity,
                          {"capacity (16)"}));
  EXPECT_TRUE(unchanged());
}

TEST(KVCache, MovedFromCacheIsAnError) {
  MultiHeadAttention m(6, 8, 16, 0.0, 2);
  KVCache cache(m, 1);
  KVCache taken = std::move(cache);
  EXPECT_TRUE(throws_code([&] { m.forward(Tensor({1, 1, 6}), cache); },
                          ErrorCode::invalid_argument, {"moved from"}));
  EXPECT_TRUE(throws_code([&] { cache.truncate(0); }, ErrorCode::invalid_argument, {"moved from"}));
  EXPECT_EQ(cache.length(), 0);
  m.forward(Tensor({1, 1, 6}), taken);  // the new owner works
  EXPECT_EQ(taken.length(), 1);
  MultiHeadAttention gone(6, 8, 16, 0.0, 2);
  MultiHeadAttention thief = std::move(gone);
  EXPECT_TRUE(throws_code([&] { KVCache c(gone, 1); }, ErrorCode::invalid_argument,
                          {"moved from"}));
}

TEST(KVCache, ACacheOutlivingItsModuleIsRejectedByAnotherAtTheSameAddress) {
  // The owner check is by identity, not address: a module built where a destroyed one lived
  // (same storage, same shape) still gets an Error, never a write into the wrong cache.
  alignas(MultiHeadAttention) unsigned char slot[sizeof(MultiHeadAttention)];
  auto* first = new (slot) MultiHeadAttention(6, 8, 16, 0.0, 2);
  KVCache cache(*first, 1, 4);
  first->forward(Tensor({1, 3, 6}), cache);
  first->~MultiHeadAttention();
  auto* second = new (slot) MultiHeadAttention(6, 8, 64, 0.0, 2);
  EXPECT_TRUE(throws_code([&] { second->forward(Tensor({1, 3, 6}), cache); },
                          ErrorCode::invalid_argument, {"different module"}));
  EXPECT_EQ(cache.length(), 3);
  second->~MultiHeadAttention();
}

/// Reports what the parameterised suite covered (reference plus the usable fast ISAs).
TEST(KVCache, CoveredIsas) {
  std::string list;
  for (Isa isa : usable_isas()) list += std::string(list.empty() ? "" : ", ") + isa_name(isa);
  std::printf("[kv cache] fast ISAs usable here: %s\n", list.c_str());
}

}  // namespace
}  // namespace simdattn::test
