// tools/cli/cmd_difftest.cpp — `simdattn difftest`: random differential cases. Each case runs
// the fast path on every selected ISA and the reference, and both are held to difftest's own
// double-precision oracle with a bound per output element derived from the case's data
// (difftest_oracle.cpp); the fast path must also put NaN exactly where the reference does.
// Cases reach every feature: the six modules, KV-cache prefill and chunked steps (sliding
// windows included, NaN/Inf tokens included), training-mode dropout, and the public causal
// softmax on its own (rows entirely below zero, tails of every length).
//
// Every case is a pure function of its own 64-bit seed, so a failure is reproduced alone with
// --replay SEED whatever --cases, --seed or --module said when it was found.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <oneapi/tbb/parallel_for.h>

#include "cli.hpp"
#include "common.hpp"
#include "common/dropout.hpp"
#include "difftest_oracle.hpp"
#include "dispatch/kernel_table.hpp"
#include "modules/attention_core.hpp"
#include "simdattn/simdattn.hpp"

namespace simdattn::cli {
namespace {

/// splitmix64 stream: small, fast, and identical on every platform.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return detail::mix64(state_ += 0x9e3779b97f4a7c15ULL); }
  std::int64_t range(std::int64_t lo, std::int64_t hi) {  // inclusive
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  bool chance(double p) { return uniform() < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(range(0, static_cast<std::int64_t>(v.size()) - 1))];
  }

 private:
  std::uint64_t state_;
};

/// A size biased toward the tile and block edges the kernels care about, at most `max`.
std::int64_t edgy_size(Rng& rng, std::int64_t max) {
  static const std::vector<std::int64_t> edges = {1,  2,  3,  4,  5,  7,  8,  9,  15,  16, 17,
                                                  23, 24, 25, 31, 32, 33, 47, 48, 49, 63, 64,
                                                  65, 127, 128, 129};
  std::int64_t v = max;
  for (int tries = 0; tries < 8 && v >= max; ++tries) v = rng.chance(0.8) ? rng.pick(edges) : rng.range(1, max);
  return std::min(v, max);
}

struct Case {
  std::uint64_t seed = 0;
  ModuleConfig config;
  std::int64_t batch = 1, tokens = 1;
  double x_scale = 1.0, w_scale = 1.0;
  int inject = 0;  // 0 none, 1 NaN, 2 +Inf, 3 -Inf
  bool inject_weight = false;  // into one weight instead of x (NaN queries over finite keys)
  bool train = false;
  std::uint64_t dropout_seed = 0;
  std::int64_t prefill = -1;  // >= 0: run through a KV cache, split here
  std::int64_t chunk = 1;     // tokens per step after the prefill
  std::int64_t capacity = 0;  // > 0: a sliding-window cache of this capacity
  DType weight_type = DType::f32;  // how the module stores its weights (the oracle reads them)
  DType kv_type = DType::f32;      // how a cached case's KV cache stores K and V
  // The public causal softmax alone (no module): rows x cols scores at stride ld.
  bool softmax = false;
  std::int64_t rows = 0, cols = 0, ld = 0, offset = 0;
  bool causal = true;
  double scale = 1.0, shift = 0.0;
  std::int64_t minus_inf_row = -1;  // >= 0: that row is all -inf (but the injected value)
  // The kernels' exponential alone, on `cols` arguments in softmax's range: held to its
  // documented 2 ULP (a coefficient off by 2e-5 is ~10 ULP, yet hides under an attention bound).
  bool exp = false;

  std::vector<std::int64_t> chunks() const {
    std::vector<std::int64_t> out;
    for (std::int64_t t = 0; t < tokens;) {
      const std::int64_t n = t == 0 && prefill > 0 ? prefill : std::min(chunk, tokens - t);
      out.push_back(n);
      t += n;
    }
    return out;
  }

  std::string describe() const {
    std::ostringstream os;
    if (exp) return "exp n=" + std::to_string(cols);
    if (softmax) {
      os << "causal_softmax rows=" << rows << " cols=" << cols << " ld=" << ld << " offset="
         << offset << " causal=" << causal << " scale=" << scale << " x_scale=" << x_scale
         << " shift=" << shift;
      if (inject) os << " inject=" << (inject == 1 ? "nan" : inject == 2 ? "+inf" : "-inf");
      if (minus_inf_row >= 0) os << " minus_inf_row=" << minus_inf_row;
      return os.str();
    }
    os << module_kind_name(config.kind) << " B=" << batch << " T=" << tokens
       << " d_in=" << config.d_in << " d_out=" << config.d_out << " heads=" << config.num_heads
       << " bias=" << config.qkv_bias << " x_scale=" << x_scale << " w_scale=" << w_scale;
    if (config.kind == ModuleKind::llama)
      os << " kv_heads=" << config.num_kv_heads << " head_dim=" << config.head_dim
         << " rope=" << rope_name(config.rope) << " theta=" << config.rope_theta
         << " o_bias=" << config.o_bias;
    if (inject) os << " inject=" << (inject == 1 ? "nan" : inject == 2 ? "+inf" : "-inf")
                   << (inject_weight ? " into a weight" : "");
    if (train) os << " dropout=" << config.dropout << " dropout_seed=" << dropout_seed;
    if (prefill >= 0) os << " prefill=" << prefill << " chunk=" << chunk;
    if (capacity > 0) os << " sliding_capacity=" << capacity;
    if (weight_type != DType::f32) os << " weights=" << dtype_name(weight_type);
    if (kv_type != DType::f32) os << " kv=" << dtype_name(kv_type);
    return os.str();
  }
};

/// A public causal_softmax case: widths around every vector length and tail, offsets, scales,
/// rows entirely below zero (where a stray padding lane in the row maximum would show).
Case draw_softmax_case(Rng& rng, Case c) {
  c.softmax = true;
  c.rows = rng.range(1, 9);
  c.cols = edgy_size(rng, 129);
  c.ld = c.cols + (rng.chance(0.5) ? 0 : rng.range(1, 9));
  c.causal = rng.chance(0.7);
  c.offset = rng.range(0, c.cols);
  c.scale = rng.pick(std::vector<double>{1.0, 1.0, 0.125, 0.3535533905932738, 3.0});
  c.x_scale = rng.pick(std::vector<double>{1.0, 4.0, 10.0, 30.0, 1e-3});
  c.shift = rng.pick(std::vector<double>{0.0, 0.0, -50.0, -120.0, -400.0});
  // A row of -inf with one NaN or inf in its visible part: a NaN among nothing to attend to
  // is still a NaN row.
  if (rng.chance(0.25)) c.minus_inf_row = rng.range(0, c.rows - 1);
  if (rng.chance(c.minus_inf_row >= 0 ? 0.5 : 0.05)) c.inject = static_cast<int>(rng.range(1, 3));
  return c;
}

Case draw_case(std::uint64_t seed, const std::vector<ModuleKind>& modules, bool softmax_cases) {
  Rng rng(seed);
  Case c;
  c.seed = seed;
  if (softmax_cases && rng.chance(0.03)) {
    c.softmax = c.exp = true;
    c.rows = 1;
    c.cols = c.ld = edgy_size(rng, 129);
    return c;
  }
  if (softmax_cases && (modules.empty() || rng.chance(0.12))) return draw_softmax_case(rng, c);
  ModuleConfig& m = c.config;
  m.kind = rng.pick(modules);
  // Size tiers keep a million cases to minutes: most cases are small (every kernel edge up to
  // 33 is still hit), some reach the 64/128 block edges, a few are long sequences.
  const double tier = rng.uniform();
  const std::int64_t max_t = tier < 0.9 ? 34 : tier < 0.998 ? 130 : 300;
  const std::int64_t max_d = tier < 0.9 ? 34 : 130;
  c.batch = rng.range(1, 3);
  c.tokens = max_t == 300 ? rng.range(130, 300) : edgy_size(rng, max_t);
  m.num_heads = (m.kind == ModuleKind::mha || m.kind == ModuleKind::mha_wrapper)
                    ? rng.pick(std::vector<std::int64_t>{1, 2, 3, 4, 12})
                    : 1;
  const std::int64_t head_dim = edgy_size(rng, m.num_heads >= 4 ? std::min<std::int64_t>(max_d, 34) : max_d);
  m.d_in = m.kind == ModuleKind::simple ? head_dim : edgy_size(rng, max_d);
  m.d_out = m.kind == ModuleKind::mha ? head_dim * m.num_heads
            : m.kind == ModuleKind::simple ? m.d_in
                                           : head_dim;
  m.qkv_bias = m.kind != ModuleKind::simple && m.kind != ModuleKind::self_attention_v1 &&
               rng.chance(0.5);
  if (m.kind == ModuleKind::llama) {
    // Grouped-query attention (G dividing H, MQA and MHA included) and a rotary embedding;
    // head_dim even for the rotation (odd ones with none).
    m.num_heads = rng.pick(std::vector<std::int64_t>{1, 2, 4, 6, 8});
    std::vector<std::int64_t> divisors;
    for (std::int64_t g = 1; g <= m.num_heads; ++g)
      if (m.num_heads % g == 0) divisors.push_back(g);
    m.num_kv_heads = rng.pick(divisors);
    m.rope = rng.pick(std::vector<Rope>{Rope::halves, Rope::halves, Rope::interleaved, Rope::none});
    m.head_dim = edgy_size(rng, m.num_heads >= 4 ? std::min<std::int64_t>(max_d, 34) : max_d);
    if (m.rope != Rope::none && m.head_dim % 2 == 1) ++m.head_dim;
    m.rope_theta = rng.pick(std::vector<double>{10000.0, 500000.0, 1000000.0});
    m.o_bias = rng.chance(0.3);
    m.d_out = m.d_in;  // o_proj maps back to d_model
  }
  m.context_length = is_causal(m.kind) ? c.tokens + rng.range(0, 8) : 0;
  // Magnitudes: mostly ordinary, sometimes tiny, sometimes large enough for logits ~1e4.
  c.x_scale = rng.pick(std::vector<double>{1.0, 1.0, 1.0, 1e-3, 0.1, 10.0, 30.0});
  c.w_scale = rng.pick(std::vector<double>{1.0, 1.0, 0.1, 3.0, 10.0});
  if (rng.chance(0.05)) c.inject = static_cast<int>(rng.range(1, 3));
  if (c.inject && m.kind != ModuleKind::simple && rng.chance(0.4)) c.inject_weight = true;
  if (is_causal(m.kind) && m.kind != ModuleKind::llama && !c.inject && rng.chance(0.25)) {
    c.train = true;
    m.dropout = rng.pick(std::vector<double>{0.1, 0.5, 0.9});
    c.dropout_seed = rng.next();
  }
  // KV-cache splits, NaN/Inf tokens included: through a cache a token reaches only the rows
  // that see it, whatever the split. Some caches slide, with a window shorter than the case.
  if (is_causal(m.kind) && rng.chance(0.35)) {
    c.prefill = rng.range(0, c.tokens - 1);
    c.chunk = rng.chance(0.6) ? 1 : rng.range(2, 9);
    const std::int64_t need = std::max<std::int64_t>({c.prefill, c.chunk, 1});
    if (c.tokens > need + 1 && rng.chance(0.3)) c.capacity = rng.range(need, c.tokens - 1);
  }
  // Stored weights (drawn last, so the draws above are those of the f32 cases): the module
  // packs them in that type and both backends and the oracle read the stored values.
  if (m.kind != ModuleKind::simple && rng.chance(0.2)) {
    const bool blocks = m.d_in % 32 == 0 && (m.kind != ModuleKind::mha || m.d_out % 32 == 0) &&
                        (m.kind != ModuleKind::llama || (m.num_heads * m.head_dim) % 32 == 0);
    c.weight_type = rng.pick(blocks ? std::vector<DType>{DType::f16, DType::bf16, DType::q8_0,
                                                         DType::q4_0}
                                    : std::vector<DType>{DType::f16, DType::bf16});
  }
  // Stored KV caches for a third of the cached cases with moderate logits (q8_0 where head_dim
  // is whole blocks): a key's storage step moves its score by up to |q| |k| 2^-8 (bf16) or
  // amax / 254 (q8_0) per value, which at logits ~1e3 reorders the softmax, and values far
  // below f16's normal range keep only a few bits; those cases would test the formats' range,
  // not the kernels. The oracle adds the storage steps to K and V (difftest_oracle.cpp).
  const bool moderate = c.x_scale >= 0.1 && c.x_scale <= 1.0 && c.w_scale <= 1.0 && !c.inject;
  if (c.prefill >= 0 && moderate && rng.chance(0.33)) {
    c.kv_type = rng.pick(std::vector<DType>{DType::f16, DType::bf16, DType::q8_0});
    const std::int64_t heads = m.kind == ModuleKind::mha ? m.num_heads : 1;
    if (c.kv_type == DType::q8_0 && m.kind == ModuleKind::llama && m.head_dim % 32 != 0) {
      m.head_dim = rng.pick(std::vector<std::int64_t>{32, 64});
      if (dtype_block(c.weight_type) != 1 && (m.num_heads * m.head_dim) % 32 != 0)
        c.weight_type = DType::f16;
    } else if (c.kv_type == DType::q8_0 && m.kind != ModuleKind::llama &&
               (m.d_out / heads) % 32 != 0) {
      // q8_0 stores whole blocks of 32 along head_dim: give the case one or two blocks.
      m.d_out = rng.pick(std::vector<std::int64_t>{32, 64}) * heads;
      if (dtype_block(c.weight_type) != 1 && m.kind == ModuleKind::mha && m.d_out % 32 != 0)
        c.weight_type = DType::f16;
    }
  }
  return c;
}

struct Inputs {
  Tensor x;
  TensorMap weights;
};

Inputs make_inputs(const Case& c, const AttentionModule* module) {
  Rng rng(c.seed ^ 0x5bd1e9955bd1e995ULL);
  Inputs in;
  in.x = c.softmax ? Tensor({c.rows, c.ld}) : Tensor({c.batch, c.tokens, c.config.d_in});
  if (c.exp) {  // softmax's range: scale s - max <= 0 down to where the result flushes
    for (auto& v : in.x.values())
      v = static_cast<float>(rng.chance(0.5) ? -87.0 * rng.uniform() : -2.0 * rng.uniform());
    return in;
  }
  for (auto& v : in.x.values())
    v = static_cast<float>((2.0 * rng.uniform() - 1.0) * c.x_scale + c.shift);
  if (c.softmax && c.minus_inf_row >= 0)
    for (std::int64_t j = 0; j < c.cols; ++j)
      in.x[c.minus_inf_row * c.ld + j] = -std::numeric_limits<float>::infinity();
  if (c.inject && !c.inject_weight) {
    const float bad = c.inject == 1 ? std::numeric_limits<float>::quiet_NaN()
                      : c.inject == 2 ? std::numeric_limits<float>::infinity()
                                      : -std::numeric_limits<float>::infinity();
    std::int64_t at = rng.range(0, in.x.numel() - 1);
    if (c.softmax && c.minus_inf_row >= 0) {
      const std::int64_t visible =
          c.causal ? std::min(c.cols, c.offset + c.minus_inf_row + 1) : c.cols;
      at = c.minus_inf_row * c.ld + rng.range(0, visible - 1);
    }
    in.x[at] = bad;
  }
  if (module != nullptr)
    for (const ParamInfo& p : module->parameters()) {
      Tensor t(p.shape);
      const double bound = c.w_scale / std::sqrt(static_cast<double>(c.config.d_in));
      for (auto& v : t.values()) v = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
      in.weights.emplace(p.name, std::move(t));
    }
  if (module != nullptr && c.inject_weight) {
    auto it = in.weights.begin();
    std::advance(it, rng.range(0, static_cast<std::int64_t>(in.weights.size()) - 1));
    Tensor& t = it->second;
    t[rng.range(0, t.numel() - 1)] = c.inject == 1 ? std::numeric_limits<float>::quiet_NaN()
                                     : c.inject == 2 ? std::numeric_limits<float>::infinity()
                                                     : -std::numeric_limits<float>::infinity();
  }
  return in;
}

struct Compare {
  bool ok = true;
  double max_abs = 0.0, max_rel = 0.0, max_ulp = 0.0;  ///< fast against the reference
  double worst_ratio = 0.0;                            ///< max |actual - oracle| / bound
  /// Elements NaN on one path and +-inf on the other where the oracle flags an infinite value
  /// under a weight that may underflow in float (OracleResult::underflow): accepted, counted.
  std::int64_t underflow_nan = 0;
  std::int64_t first_bad = -1;
  float actual = 0.0f;
  double oracle = 0.0, bound = 0.0;
  std::string what;
};

double ulp_distance(float a, float b) {
  if (a == b) return 0.0;
  std::int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if (ia < 0) ia = std::numeric_limits<std::int32_t>::min() - ia;
  if (ib < 0) ib = std::numeric_limits<std::int32_t>::min() - ib;
  return std::fabs(static_cast<double>(ia) - static_cast<double>(ib));
}

/// `actual` against the oracle, element by element: within the bound where the oracle is
/// finite, non-finite where it is not (written so that a NaN difference fails). With a
/// reference output too (the fast path's check): NaN exactly where the reference has it.
Compare compare(const OracleResult& oracle, const std::vector<float>& actual,
                const std::vector<float>* reference) {
  Compare r;
  if (actual.size() != oracle.y.size()) {
    r.ok = false;
    r.what = "shape";
    return r;
  }
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const float a = actual[i];
    const double e = oracle.y[i], bound = oracle.bound[i];
    bool good;
    const char* what = "outside the bound";
    if (!std::isfinite(e)) {
      good = !std::isfinite(a);
      what = "finite where the oracle is not";
    } else {
      const double d = std::fabs(static_cast<double>(a) - e);
      good = d <= bound;
      if (good && bound > 0.0) r.worst_ratio = std::max(r.worst_ratio, d / bound);
      if (good && bound == 0.0) good = d == 0.0;
    }
    if (good && reference != nullptr) {
      const float ref = (*reference)[i];
      const bool underflow = !oracle.underflow.empty() && oracle.underflow[i] != 0;
      if (std::isnan(ref) != std::isnan(a) && underflow && std::isinf(e) &&
          !std::isfinite(ref) && !std::isfinite(a)) {
        ++r.underflow_nan;  // 0 * inf in float, tiny * inf in double: both are right
      } else if (std::isnan(ref) != std::isnan(a)) {
        good = false;
        what = "NaN where the reference is not, or the reverse";
      } else if (std::isfinite(ref) && std::isfinite(a)) {
        const double d = std::fabs(static_cast<double>(a) - static_cast<double>(ref));
        r.max_abs = std::max(r.max_abs, d);
        if (ref != 0.0f) r.max_rel = std::max(r.max_rel, d / std::fabs(static_cast<double>(ref)));
        r.max_ulp = std::max(r.max_ulp, ulp_distance(ref, a));
      }
    }
    if (!good && r.ok) {
      r.ok = false;
      r.first_bad = static_cast<std::int64_t>(i);
      r.actual = a;
      r.oracle = e;
      r.bound = bound;
      r.what = what;
    }
  }
  return r;
}

/// The oracle for a module case (the window of a sliding cache included).
OracleResult oracle_for(const Case& c, const Inputs& in, const AttentionModule* module) {
  OracleProblem p;
  p.batch = c.batch;
  p.tokens = c.tokens;
  p.d_in = c.config.d_in;
  p.x = in.x.data();
  if (module == nullptr) {  // book §3.3: q = k = v = x, unscaled, unmasked
    p.head_dim = c.config.d_in;
    return attention_oracle(p);
  }
  const detail::AttentionSpec& spec = module->core().spec();
  const detail::AttentionWeights& w = module->core().weights();
  p.heads = spec.num_heads;
  p.head_dim = spec.head_dim;
  p.causal = spec.causal;
  p.scale = 1.0 / std::sqrt(static_cast<double>(spec.head_dim));
  p.wq = w.wq.data();
  p.wk = w.wk.data();
  p.wv = w.wv.data();
  if (spec.qkv_bias) {
    p.bq = w.bq.data();
    p.bk = w.bk.data();
    p.bv = w.bv.data();
  }
  if (spec.out_proj) {
    p.wo = w.wo.data();
    p.bo = w.bo.empty() ? nullptr : w.bo.data();
    p.out_dim = spec.output_dim();
  }
  p.kv_heads = spec.kv_heads();
  p.rope = spec.rope;
  p.rope_theta = spec.rope_theta;
  p.book_masking = c.prefill < 0;
  p.kv_type = c.kv_type;
  if (c.capacity > 0) p.window_lo = sliding_window_lo(c.chunks(), c.capacity);
  if (c.train) p.dropout = detail::DropoutParams{c.config.dropout, c.dropout_seed};
  return attention_oracle(p);
}

/// A backend's output for a case: one forward, or a prefill then steps through a KV cache (a
/// sliding one when the case says so); for a softmax case, causal_softmax on the scores.
std::vector<float> run_case(const Case& c, const AttentionModule* module, const Tensor& x,
                            const ForwardOptions& options) {
  if (c.exp) {
    std::vector<float> out(static_cast<std::size_t>(c.cols));
    if (options.backend == Backend::reference)
      for (std::int64_t i = 0; i < c.cols; ++i)
        out[static_cast<std::size_t>(i)] = static_cast<float>(std::exp(double(x[i])));
    else
      detail::kernels().softmax.exp(x.data(), out.data(), c.cols);
    return out;
  }
  if (c.softmax) {
    std::vector<float> buf = x.values();
    if (options.backend == Backend::reference)
      reference::causal_softmax(buf.data(), c.rows, c.cols, c.ld, static_cast<float>(c.scale),
                                c.offset, c.causal);
    else
      causal_softmax(buf.data(), c.rows, c.cols, c.ld, static_cast<float>(c.scale), c.offset,
                     c.causal);
    std::vector<float> out(static_cast<std::size_t>(c.rows * c.cols));
    for (std::int64_t i = 0; i < c.rows; ++i)
      std::copy_n(buf.data() + i * c.ld, c.cols, out.data() + i * c.cols);
    return out;
  }
  if (c.prefill < 0) return forward_module(c.config, module, x, options).values();
  KVCache cache(*module, c.batch, c.capacity, c.capacity > 0, c.kv_type);
  const std::int64_t d_in = c.config.d_in, out = module->output_dim();
  Tensor y({c.batch, c.tokens, out});
  auto slice = [&](std::int64_t t0, std::int64_t n) {
    Tensor part({c.batch, n, d_in});
    for (std::int64_t b = 0; b < c.batch; ++b)
      std::copy_n(x.data() + (b * c.tokens + t0) * d_in, n * d_in, part.data() + b * n * d_in);
    return part;
  };
  std::int64_t t = 0;
  for (std::int64_t n : c.chunks()) {
    const Tensor part = module->forward(slice(t, n), cache, options);
    for (std::int64_t b = 0; b < c.batch; ++b)
      std::copy_n(part.data() + b * n * out, n * out, y.data() + (b * c.tokens + t) * out);
    t += n;
  }
  return y.values();
}

struct Stats {
  std::int64_t cases = 0, failures = 0, capped = 0, underflow_nan = 0;
  double max_abs = 0.0, max_rel = 0.0, max_ulp = 0.0, worst_ratio = 0.0;
};

int run_difftest(Args& args) {
  const std::int64_t cases = args.take_int("cases", 1000, 1);
  const std::uint64_t seed = static_cast<std::uint64_t>(args.take_int("seed", 1, 0));
  const std::string isa_flag = args.take_string("isa", "all");
  const auto threads = args.take_optional_int("threads", 1, 4096);
  const std::string module_flag = args.take_string("module", "all");
  const bool json = args.take_flag("json");
  const bool verbose = args.take_flag("verbose");
  const auto replay = args.take_optional_string("replay");
  args.finish();

  std::vector<ModuleKind> modules;
  bool softmax_cases = false;
  if (module_flag == "all") {
    modules = {ModuleKind::simple,           ModuleKind::self_attention_v1,
               ModuleKind::self_attention_v2, ModuleKind::causal_attention,
               ModuleKind::mha_wrapper,      ModuleKind::mha};
    // LlamaAttention has its own run (--module llama), so that `all` keeps drawing the same
    // chapter-3 cases for a given seed as it always has.
    softmax_cases = true;
  } else if (module_flag == "causal_softmax") {
    softmax_cases = true;
  } else {
    modules = {parse_module_kind(module_flag)};
  }
  std::vector<Isa> isas;
  if (isa_flag == "all") {
    isas = usable_isas();
  } else {
    const Isa isa = parse_isa(isa_flag);
    set_isa(isa);  // throws Error(unsupported) if it is not usable here
    isas = {isa};
  }
  if (threads) set_num_threads(static_cast<int>(*threads));

  std::vector<std::uint64_t> seeds;
  if (replay) {
    std::uint64_t s = 0;
    std::istringstream is(*replay);
    if (!(is >> s) || !is.eof()) throw UsageError{"--replay expects a case seed, got '" + *replay + "'"};
    seeds.push_back(s);
  } else {
    for (std::int64_t i = 0; i < cases; ++i)
      seeds.push_back(detail::mix64(seed * 0x2545f4914f6cdd1dULL + static_cast<std::uint64_t>(i)));
  }

  std::map<std::pair<std::string, std::string>, Stats> table;
  nlohmann::json failures = nlohmann::json::array();
  Progress progress("difftest", static_cast<std::int64_t>(seeds.size()));
  const auto start = std::chrono::steady_clock::now();
  std::int64_t done = 0, failed_cases = 0;

  // Cases run in chunks: the oracle and the reference outputs of a chunk are computed in
  // parallel, then for each ISA (switched only between chunks, never while a forward runs) the
  // fast outputs are computed in parallel and compared. Forward is thread-safe and each case is
  // independent, so the results do not depend on the scheduling.
  struct Run {
    Case c;
    std::unique_ptr<AttentionModule> module;
    Inputs in;
    OracleResult oracle;
    std::vector<float> reference;
    Compare reference_check;
    std::string reference_error;
    std::vector<Compare> results;  // per ISA
    std::vector<std::string> errors;
  };
  auto options_for = [](const Case& c, Backend backend) {
    ForwardOptions opt;
    opt.backend = backend;
    opt.train = c.train;
    opt.seed = c.dropout_seed;
    return opt;
  };
  const auto kind_name = [](const Case& c) {
    return std::string(c.exp ? "exp" : c.softmax ? "causal_softmax" : module_kind_name(c.config.kind));
  };
  const std::size_t chunk = 1024;
  for (std::size_t first = 0; first < seeds.size(); first += chunk) {
    const std::size_t count = std::min(chunk, seeds.size() - first);
    std::vector<Run> runs(count);
    tbb::parallel_for(std::size_t{0}, count, [&](std::size_t i) {
      Run& r = runs[i];
      r.c = draw_case(seeds[first + i], modules, softmax_cases);
      r.results.resize(isas.size());
      r.errors.resize(isas.size());
      if (!r.c.softmax && r.c.config.kind != ModuleKind::simple) r.module = make_module(r.c.config);
      r.in = make_inputs(r.c, r.module.get());
      if (r.module) {
        r.module->load_state_dict(r.in.weights);
        if (r.c.weight_type != DType::f32) r.module->set_weight_storage(r.c.weight_type);
      }
      r.oracle = r.c.exp       ? exp_oracle(r.in.x.data(), r.c.cols)
                 : r.c.softmax ? softmax_oracle(r.in.x.data(), r.c.rows, r.c.cols, r.c.ld,
                                              static_cast<float>(r.c.scale), r.c.offset,
                                              r.c.causal)
                             : oracle_for(r.c, r.in, r.module.get());
      try {
        r.reference = run_case(r.c, r.module.get(), r.in.x, options_for(r.c, Backend::reference));
        r.reference_check = compare(r.oracle, r.reference, nullptr);
      } catch (const std::exception& e) {
        r.reference_check.ok = false;
        r.reference_error = e.what();
      }
    });
    for (std::size_t s = 0; s < isas.size(); ++s) {
      set_isa(isas[s]);
      tbb::parallel_for(std::size_t{0}, count, [&](std::size_t i) {
        Run& r = runs[i];
        if (verbose) std::cerr << "case " << r.c.seed << ": " << r.c.describe() << "\n";
        try {
          r.results[s] = compare(r.oracle,
                                 run_case(r.c, r.module.get(), r.in.x, options_for(r.c, Backend::fast)),
                                 r.reference.empty() ? nullptr : &r.reference);
        } catch (const std::exception& e) {
          r.results[s].ok = false;
          r.errors[s] = e.what();
        }
      });
    }
    for (Run& r : runs) {
      bool case_failed = false;
      auto record = [&](const std::string& path, const Compare& cmp, const std::string& error) {
        Stats& st = table[{kind_name(r.c), path}];
        ++st.cases;
        st.capped += r.oracle.capped;
        st.underflow_nan += cmp.underflow_nan;
        st.max_abs = std::max(st.max_abs, cmp.max_abs);
        st.max_rel = std::max(st.max_rel, cmp.max_rel);
        st.max_ulp = std::max(st.max_ulp, cmp.max_ulp);
        st.worst_ratio = std::max(st.worst_ratio, cmp.worst_ratio);
        if (cmp.ok) return;
        ++st.failures;
        case_failed = true;
        nlohmann::json f = {{"seed", r.c.seed},       {"path", path},
                            {"case", r.c.describe()}, {"index", cmp.first_bad},
                            {"actual", cmp.actual},   {"oracle", cmp.oracle},
                            {"bound", cmp.bound},     {"reason", cmp.what}};
        if (!error.empty()) f["error"] = error;
        if (!json) {
          std::cerr << (stderr_is_terminal() ? "\n" : "") << "MISMATCH " << path << " "
                    << r.c.describe() << ": ";
          if (!error.empty())
            std::cerr << "error: " << error;
          else
            std::cerr << "index " << cmp.first_bad << " actual " << cmp.actual << " oracle "
                      << cmp.oracle << " bound " << cmp.bound << " (" << cmp.what << ")";
          std::cerr << "; replay: simdattn difftest --replay " << r.c.seed << "\n";
        }
        failures.push_back(std::move(f));
      };
      record("reference", r.reference_check, r.reference_error);
      for (std::size_t s = 0; s < isas.size(); ++s) record(isa_name(isas[s]), r.results[s], r.errors[s]);
      if (case_failed) ++failed_cases;
      progress.update(++done);
    }
  }
  progress.finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (json) {
    nlohmann::json out;
    out["cases"] = seeds.size();
    out["failed_cases"] = failed_cases;
    out["seconds"] = seconds;
    out["threads"] = num_threads();
    out["summary"] = nlohmann::json::array();
    for (const auto& [key, s] : table)
      out["summary"].push_back({{"module", key.first}, {"path", key.second}, {"cases", s.cases},
                                {"failures", s.failures}, {"max_abs_err", s.max_abs},
                                {"max_rel_err", s.max_rel}, {"max_ulp", s.max_ulp},
                                {"worst_error_over_bound", s.worst_ratio},
                                {"capped_bounds", s.capped},
                                {"underflow_nan", s.underflow_nan}});
    out["failures"] = failures;
    std::cout << out.dump() << "\n";
  } else {
    std::printf("%-18s %-9s %8s %8s %11s %11s %9s %11s %8s %9s\n", "module", "path", "cases",
                "failures", "max_abs_err", "max_rel_err", "max_ulp", "err/bound", "capped",
                "underflow");
    for (const auto& [key, s] : table)
      std::printf("%-18s %-9s %8lld %8lld %11.3g %11.3g %9.0f %11.3g %8lld %9lld\n",
                  key.first.c_str(), key.second.c_str(), static_cast<long long>(s.cases),
                  static_cast<long long>(s.failures), s.max_abs, s.max_rel, s.max_ulp,
                  s.worst_ratio, static_cast<long long>(s.capped),
                  static_cast<long long>(s.underflow_nan));
    std::printf("(max_*: fast against the reference; err/bound: the largest error against the "
                "oracle, as a fraction of its bound; underflow: elements NaN on the fast path and "
                "+-inf on the reference, or the reverse, where an infinite value meets a softmax "
                "weight that underflows in float)\n");
    std::printf("%zu cases on %d thread(s) in %.1f s: %lld failed\n", seeds.size(), num_threads(),
                seconds, static_cast<long long>(failed_cases));
  }
  return failed_cases == 0 ? 0 : 1;
}

const bool registered = register_command(
    {"difftest",
     "difftest [--cases N] [--seed S] [--isa all|I] [--threads N] "
     "[--module all|causal_softmax|M] [--json] [--replay SEED] [--verbose]   fast path and "
     "reference vs an oracle in double, with a bound per element derived from each case",
     run_difftest});

}  // namespace
}  // namespace simdattn::cli
