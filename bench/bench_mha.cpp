// bench/bench_mha.cpp — MultiHeadAttention forward at GPT-2 small's attention shape (d = 768,
// 12 heads, qkv_bias) on the fast backend per usable ISA at 1 and all threads, and on the
// reference backend at T = 128 only (it is a double-precision triple loop: ~0.5 s at T = 128,
// minutes at T = 1024).
//
// FLOP/s counts causal-useful FLOPs only: 2 B T d 3d (QKV projection) + 4 B H hd T (T+1)/2
// (Q Kᵀ and P V over the keys each query may see) + 2 B T d d (out_proj); the masked half of
// the score matrix, exponentials and softmax bookkeeping are not counted.
//
// Memory: peak_rss_MiB is the process's resident high-water mark (VmHWM) over the timed loop,
// reset just before it through /proc/self/clear_refs, so it covers x, y, the module's packed
// weights and the library's reusable scratch; rss_growth_MiB is that peak minus the resident
// size before the loop (what one forward adds). Linux only (0 elsewhere).
#include <benchmark/benchmark.h>
#include <oneapi/tbb/info.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/runtime.hpp"
#include "simdattn/tensor.hpp"

namespace {

struct MhaShape {
  const char* name;
  std::int64_t batch, tokens, d_model, heads;
};

constexpr MhaShape kShapes[] = {
    {"gpt2_B8_T1024", 8, 1024, 768, 12}, {"gpt2_B1_T128", 1, 128, 768, 12},
    {"gpt2_B1_T512", 1, 512, 768, 12},   {"gpt2_B1_T2048", 1, 2048, 768, 12},
    {"gpt2_B1_T4096", 1, 4096, 768, 12}, {"gpt2_B1_T8192", 1, 8192, 768, 12},
};

double useful_flops(const MhaShape& s) {
  const double b = double(s.batch), t = double(s.tokens), d = double(s.d_model);
  const double hd = d / double(s.heads);
  return 2.0 * b * t * d * 3.0 * d + 4.0 * b * double(s.heads) * hd * t * (t + 1.0) / 2.0 +
         2.0 * b * t * d * d;
}

/// VmHWM or VmRSS of this process in MiB (0 if unavailable).
double status_mib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::string(key).size())) / 1024.0;
  return 0.0;
}

void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
}

void BM_Mha(benchmark::State& state, MhaShape s, simdattn::Isa isa, simdattn::Backend backend) {
  simdattn::set_isa(isa);
  simdattn::set_num_threads(static_cast<int>(state.range(0)));
  simdattn::MultiHeadAttention mha(s.d_model, s.d_model, s.tokens, 0.0, s.heads, true);
  mha.init_random(1);
  std::vector<float> xv(static_cast<std::size_t>(s.batch * s.tokens * s.d_model));
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : xv) v = dist(rng);
  const simdattn::Tensor x({s.batch, s.tokens, s.d_model}, std::move(xv));
  simdattn::ForwardOptions options;
  options.backend = backend;

  const double rss_before = status_mib("VmRSS:");
  reset_peak_rss();
  for (auto _ : state) {
    simdattn::Tensor y = mha.forward(x, options);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double peak = status_mib("VmHWM:");
  state.counters["FLOP/s"] = benchmark::Counter(useful_flops(s), benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.counters["peak_rss_MiB"] = peak;
  state.counters["rss_growth_MiB"] = peak - rss_before;
  state.SetLabel(std::string("backend=") + simdattn::backend_name(backend) +
                 " isa=" + simdattn::isa_name(simdattn::active_isa()) +
                 " threads=" + std::to_string(simdattn::num_threads()));
  simdattn::set_num_threads(0);
}

int register_all() {
  const int hw = tbb::info::default_concurrency();
  std::vector<int> thread_counts{1};
  if (hw > 1) thread_counts.push_back(hw);
  for (const MhaShape& s : kShapes) {
    const std::string base = std::string("Mha/") + s.name + "/";
    for (simdattn::Isa isa : simdattn::usable_isas()) {
      auto* b = benchmark::RegisterBenchmark((base + "fast_" + simdattn::isa_name(isa)).c_str(),
                                             BM_Mha, s, isa, simdattn::Backend::fast);
      b->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
      for (int t : thread_counts) b->Arg(t);
    }
    if (s.batch == 1 && s.tokens <= 128)  // the reference is single-threaded and slow
      benchmark::RegisterBenchmark((base + "reference").c_str(), BM_Mha, s,
                                   simdattn::usable_isas().front(), simdattn::Backend::reference)
          ->ArgName("threads")
          ->Arg(1)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->Iterations(2);
  }
  benchmark::AddCustomContext("mha_flops", "causal-useful: 2BTd3d + 4BH hd T(T+1)/2 + 2BTdd");
  return 0;
}
const int kRegistered = register_all();

}  // namespace
