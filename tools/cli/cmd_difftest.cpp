// tools/cli/cmd_difftest.cpp — `simdattn difftest`: random differential cases, fast path on each
// selected ISA against the reference, with tolerances derived from each case's magnitudes.
//
// Every case is a pure function of its own 64-bit seed, so a failure is reproduced alone with
// --replay SEED whatever --cases, --seed or --module said when it was found.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
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
  bool train = false;
  std::uint64_t dropout_seed = 0;
  std::int64_t prefill = -1;  // >= 0: run the fast path through a KV cache, split here
  std::int64_t chunk = 1;     // tokens per decode step after the prefill

  std::string describe() const {
    std::ostringstream os;
    os << module_kind_name(config.kind) << " B=" << batch << " T=" << tokens
       << " d_in=" << config.d_in << " d_out=" << config.d_out << " heads=" << config.num_heads
       << " bias=" << config.qkv_bias << " x_scale=" << x_scale << " w_scale=" << w_scale;
    if (inject) os << " inject=" << (inject == 1 ? "nan" : inject == 2 ? "+inf" : "-inf");
    if (train) os << " dropout=" << config.dropout << " dropout_seed=" << dropout_seed;
    if (prefill >= 0) os << " prefill=" << prefill << " chunk=" << chunk;
    return os.str();
  }
};

Case draw_case(std::uint64_t seed, const std::vector<ModuleKind>& modules) {
  Rng rng(seed);
  Case c;
  c.seed = seed;
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
  m.context_length = is_causal(m.kind) ? c.tokens + rng.range(0, 8) : 0;
  // Magnitudes: mostly ordinary, sometimes tiny, sometimes large enough for logits ~1e4.
  c.x_scale = rng.pick(std::vector<double>{1.0, 1.0, 1.0, 1e-3, 0.1, 10.0, 30.0});
  c.w_scale = rng.pick(std::vector<double>{1.0, 1.0, 0.1, 3.0, 10.0});
  if (rng.chance(0.05)) c.inject = static_cast<int>(rng.range(1, 3));
  if (is_causal(m.kind) && !c.inject && rng.chance(0.25)) {
    c.train = true;
    m.dropout = rng.pick(std::vector<double>{0.1, 0.5, 0.9});
    c.dropout_seed = rng.next();
  }
  // KV-cache splits, but not with NaN/Inf injection: a full forward lets a non-finite value in
  // a later token reach earlier rows through 0 * NaN in weights·V (the book's semantics), which
  // an incremental forward cannot see, since those tokens have not arrived yet.
  if (is_causal(m.kind) && !c.inject && rng.chance(0.3)) {
    c.prefill = rng.range(0, c.tokens - 1);
    c.chunk = rng.chance(0.7) ? 1 : rng.range(2, 5);
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
  in.x = Tensor({c.batch, c.tokens, c.config.d_in});
  for (auto& v : in.x.values()) v = static_cast<float>((2.0 * rng.uniform() - 1.0) * c.x_scale);
  if (c.inject) {
    const float bad = c.inject == 1 ? std::numeric_limits<float>::quiet_NaN()
                      : c.inject == 2 ? std::numeric_limits<float>::infinity()
                                      : -std::numeric_limits<float>::infinity();
    in.x[rng.range(0, in.x.numel() - 1)] = bad;
  }
  if (module != nullptr)
    for (const ParamInfo& p : module->parameters()) {
      Tensor t(p.shape);
      const double bound = c.w_scale / std::sqrt(static_cast<double>(c.config.d_in));
      for (auto& v : t.values()) v = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
      in.weights.emplace(p.name, std::move(t));
    }
  return in;
}

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (float v : t.values())
    if (std::isfinite(v)) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}

double max_abs_prefix(const TensorMap& w, const std::string& needle) {
  double m = 0.0;
  for (const auto& [name, t] : w)
    if (name.find(needle) != std::string::npos) m = std::max(m, max_abs(t));
  return m;
}

/// Absolute error bound for the output of a case, from float rounding analysis (u = 2^-24,
/// gamma(n) = n*u/(1-n*u), with a safety factor c):
///   projections   |dq| <= gamma(d_in) * d_in * |x|max * |W|max          (likewise k, v)
///   scores        |ds| <= scale * (hd*(|q|max*|dk| + |k|max*|dq|) + gamma(hd)*hd*|q|max*|k|max)
///                        + u * |s|max (the rounding of the score itself, which dominates at
///                        large logits)
///   softmax       |dp_ij| <= p_ij * (2*|ds| + 4u)  (exp to 2 ulp, max shift exact)
///   context       |dc| <= (2*|ds| + 4u + gamma(T)) * |v|max / (1-p) + |dv|
///   out_proj      |dy| <= gamma(inner) * inner * |c|max * |Wo|max + inner * |Wo|max * |dc|
double derived_tolerance(const Case& c, const Inputs& in, const AttentionModule* module) {
  const double u = std::ldexp(1.0, -24), safety = 8.0;
  auto gamma = [&](double n) { return safety * n * u; };
  const double x = max_abs(in.x);
  const auto& m = c.config;
  const double d_in = static_cast<double>(m.d_in);
  const double T = static_cast<double>(c.tokens);
  if (module == nullptr) {  // simple: q = k = v = x, unscaled scores
    const double s = d_in * x * x;
    const double ds = gamma(d_in) * s + u * s;
    return (2.0 * ds + 4.0 * u + gamma(T)) * x + 1e-30;
  }
  const double hd = static_cast<double>(module->head_dim());
  const double inner = static_cast<double>(module->num_heads() * module->head_dim());
  const double scale = 1.0 / std::sqrt(hd);
  const double wq = max_abs_prefix(in.weights, "W_query"), wk = max_abs_prefix(in.weights, "W_key"),
               wv = max_abs_prefix(in.weights, "W_value");
  const double bias = c.config.qkv_bias ? max_abs_prefix(in.weights, ".bias") : 0.0;
  const double q = d_in * x * wq + bias, k = d_in * x * wk + bias, v = d_in * x * wv + bias;
  const double dq = gamma(d_in) * q, dk = gamma(d_in) * k, dv = gamma(d_in) * v;
  const double s = scale * hd * q * k;
  const double ds = scale * (hd * (q * dk + k * dq) + gamma(hd) * hd * q * k) + u * s;
  const double keep = c.train ? 1.0 / (1.0 - m.dropout) : 1.0;
  const double dctx = (2.0 * ds + 4.0 * u + gamma(T)) * v * keep + dv * keep;
  if (m.kind != ModuleKind::mha) return dctx + 1e-30;
  const double wo = max_abs_prefix(in.weights, "out_proj");
  return gamma(inner) * inner * v * keep * wo + inner * wo * dctx + u * wo + 1e-30;
}

struct Compare {
  bool ok = true;
  double max_abs = 0.0, max_rel = 0.0, max_ulp = 0.0;
  std::int64_t first_bad = -1;
  float expected = 0.0f, actual = 0.0f;
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

Compare compare(const Tensor& expected, const Tensor& actual, double tol) {
  Compare r;
  if (expected.shape() != actual.shape()) {
    r.ok = false;
    return r;
  }
  for (std::int64_t i = 0; i < expected.numel(); ++i) {
    const float e = expected[i], a = actual[i];
    bool good;
    if (std::isnan(e) || std::isnan(a)) {
      good = std::isnan(e) && std::isnan(a);  // NaN must propagate, and only where it does
    } else if (std::isinf(e) || std::isinf(a)) {
      good = e == a;
    } else {
      const double d = std::fabs(static_cast<double>(a) - static_cast<double>(e));
      r.max_abs = std::max(r.max_abs, d);
      if (e != 0.0f) r.max_rel = std::max(r.max_rel, d / std::fabs(static_cast<double>(e)));
      r.max_ulp = std::max(r.max_ulp, ulp_distance(e, a));
      good = d <= tol;
    }
    if (!good && r.ok) {
      r.ok = false;
      r.first_bad = i;
      r.expected = e;
      r.actual = a;
    }
  }
  return r;
}

/// The fast path's output for a case: one forward, or a prefill then decode steps through a
/// KV cache.
Tensor run_fast(const Case& c, const AttentionModule* module, const Tensor& x,
                const ForwardOptions& options) {
  if (c.prefill < 0) return forward_module(c.config, module, x, options);
  KVCache cache(*module, c.batch);
  const std::int64_t d_in = c.config.d_in, out = module->output_dim();
  Tensor y({c.batch, c.tokens, out});
  auto slice = [&](std::int64_t t0, std::int64_t n) {
    Tensor part({c.batch, n, d_in});
    for (std::int64_t b = 0; b < c.batch; ++b)
      std::copy_n(x.data() + (b * c.tokens + t0) * d_in, n * d_in, part.data() + b * n * d_in);
    return part;
  };
  std::int64_t t = 0;
  while (t < c.tokens) {
    const std::int64_t n = t == 0 && c.prefill > 0 ? c.prefill : std::min(c.chunk, c.tokens - t);
    const Tensor part = module->forward(slice(t, n), cache, options);
    for (std::int64_t b = 0; b < c.batch; ++b)
      std::copy_n(part.data() + b * n * out, n * out, y.data() + (b * c.tokens + t) * out);
    t += n;
  }
  return y;
}

struct Stats {
  std::int64_t cases = 0, failures = 0;
  double max_abs = 0.0, max_rel = 0.0, max_ulp = 0.0;
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
  if (module_flag == "all") {
    modules = {ModuleKind::simple,           ModuleKind::self_attention_v1,
               ModuleKind::self_attention_v2, ModuleKind::causal_attention,
               ModuleKind::mha_wrapper,      ModuleKind::mha};
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

  // Cases run in chunks: the reference outputs of a chunk are computed in parallel, then for
  // each ISA (switched only between chunks, never while a forward runs) the fast outputs are
  // computed in parallel and compared. Forward is thread-safe and each case is independent, so
  // the results do not depend on the scheduling.
  struct Run {
    Case c;
    std::unique_ptr<AttentionModule> module;
    Inputs in;
    Tensor expected;
    double tol = 0.0;
    std::vector<Compare> results;  // per ISA
    std::vector<std::string> errors;
  };
  const std::size_t chunk = 1024;
  for (std::size_t first = 0; first < seeds.size(); first += chunk) {
    const std::size_t count = std::min(chunk, seeds.size() - first);
    std::vector<Run> runs(count);
    tbb::parallel_for(std::size_t{0}, count, [&](std::size_t i) {
      Run& r = runs[i];
      r.c = draw_case(seeds[first + i], modules);
      r.results.resize(isas.size());
      r.errors.resize(isas.size());
      if (r.c.config.kind != ModuleKind::simple) r.module = make_module(r.c.config);
      r.in = make_inputs(r.c, r.module.get());
      if (r.module) r.module->load_state_dict(r.in.weights);
      ForwardOptions opt;
      opt.backend = Backend::reference;
      opt.train = r.c.train;
      opt.seed = r.c.dropout_seed;
      r.expected = forward_module(r.c.config, r.module.get(), r.in.x, opt);
      r.tol = derived_tolerance(r.c, r.in, r.module.get());
    });
    for (std::size_t s = 0; s < isas.size(); ++s) {
      set_isa(isas[s]);
      tbb::parallel_for(std::size_t{0}, count, [&](std::size_t i) {
        Run& r = runs[i];
        if (verbose) std::cerr << "case " << r.c.seed << ": " << r.c.describe() << "\n";
        ForwardOptions opt;
        opt.backend = Backend::fast;
        opt.train = r.c.train;
        opt.seed = r.c.dropout_seed;
        try {
          r.results[s] = compare(r.expected, run_fast(r.c, r.module.get(), r.in.x, opt), r.tol);
        } catch (const std::exception& e) {
          r.results[s].ok = false;
          r.errors[s] = e.what();
        }
      });
    }
    for (Run& r : runs) {
      bool case_failed = false;
      for (std::size_t s = 0; s < isas.size(); ++s) {
        const Compare& cmp = r.results[s];
        Stats& st = table[{module_kind_name(r.c.config.kind), isa_name(isas[s])}];
        ++st.cases;
        st.max_abs = std::max(st.max_abs, cmp.max_abs);
        st.max_rel = std::max(st.max_rel, cmp.max_rel);
        st.max_ulp = std::max(st.max_ulp, cmp.max_ulp);
        if (cmp.ok) continue;
        ++st.failures;
        case_failed = true;
        nlohmann::json f = {{"seed", r.c.seed},     {"isa", isa_name(isas[s])},
                            {"case", r.c.describe()}, {"index", cmp.first_bad},
                            {"expected", cmp.expected}, {"actual", cmp.actual},
                            {"tolerance", r.tol}};
        if (!r.errors[s].empty()) f["error"] = r.errors[s];
        if (!json) {
          std::cerr << (stderr_is_terminal() ? "\n" : "") << "MISMATCH isa=" << isa_name(isas[s])
                    << " " << r.c.describe() << ": ";
          if (!r.errors[s].empty())
            std::cerr << "error: " << r.errors[s];
          else
            std::cerr << "index " << cmp.first_bad << " expected " << cmp.expected << " actual "
                      << cmp.actual << " (tol " << r.tol << ")";
          std::cerr << "; replay: simdattn difftest --replay " << r.c.seed << "\n";
        }
        failures.push_back(std::move(f));
      }
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
      out["summary"].push_back({{"module", key.first}, {"isa", key.second}, {"cases", s.cases},
                                {"failures", s.failures}, {"max_abs_err", s.max_abs},
                                {"max_rel_err", s.max_rel}, {"max_ulp", s.max_ulp}});
    out["failures"] = failures;
    std::cout << out.dump() << "\n";
  } else {
    std::printf("%-18s %-7s %9s %9s %12s %12s %12s\n", "module", "isa", "cases", "failures",
                "max_abs_err", "max_rel_err", "max_ulp");
    for (const auto& [key, s] : table)
      std::printf("%-18s %-7s %9lld %9lld %12.3g %12.3g %12.0f\n", key.first.c_str(),
                  key.second.c_str(), static_cast<long long>(s.cases),
                  static_cast<long long>(s.failures), s.max_abs, s.max_rel, s.max_ulp);
    std::printf("%zu cases on %d thread(s) in %.1f s: %lld failed\n", seeds.size(), num_threads(),
                seconds, static_cast<long long>(failed_cases));
  }
  return failed_cases == 0 ? 0 : 1;
}

const bool registered = register_command(
    {"difftest",
     "difftest [--cases N] [--seed S] [--isa all|I] [--threads N] [--module all|M] [--json] "
     "[--replay SEED] [--verbose]   fast path vs reference on random cases",
     run_difftest});

}  // namespace
}  // namespace simdattn::cli
