// tools/cli/bench_support.cpp — see bench_support.hpp.
#include "bench_support.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>
#include <utility>

#include "simdattn/runtime.hpp"

#if defined(SIMDATTN_CLI_PEAK_AVX2)
// bench/peak_fma_avx2.cpp and bench/peak_fma_avx512.cpp, compiled with -mavx2 -mfma and
// -mavx512f into this tool (tools/CMakeLists.txt): `iterations` x 12 independent ymm / 16
// independent zmm FMAs. Each is called only when the CPU runs that ISA.
float simdattn_bench_peak_fma_avx2(long long iterations);
float simdattn_bench_peak_fma_avx512(long long iterations);
#endif

namespace simdattn::cli {

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

double median(std::vector<double> v) { return quantile(std::move(v), 0.5); }

std::optional<double> measure_fma_peak_gflops(int samples) {
#if defined(SIMDATTN_CLI_PEAK_AVX2)
  // The peak of the ISA the kernels run on: its vector width is the GEMM's ceiling.
  const Isa isa = active_isa();
  float (*loop)(long long) = nullptr;
  double flops_per_iter = 0.0;
  if (isa == Isa::avx512) {
    loop = &simdattn_bench_peak_fma_avx512;
    flops_per_iter = 16.0 * 16.0 * 2.0;
  } else if (isa == Isa::avx2) {  // usable avx2 means AVX2 and FMA
    loop = &simdattn_bench_peak_fma_avx2;
    flops_per_iter = 12.0 * 8.0 * 2.0;
  } else {
    return std::nullopt;
  }
  constexpr long long kIters = 1 << 20;  // ~2 ms per call at 100 GFLOP/s
  std::vector<double> rates;
  volatile float sink = 0.0f;
  for (int s = 0; s < samples; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < 10; ++r) sink = sink + loop(kIters);
    const double dt =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(10.0 * double(kIters) * flops_per_iter / dt * 1e-9);
  }
  return median(rates);
#else
  (void)samples;
  return std::nullopt;
#endif
}

PeakReport peak_report(const std::optional<double>& before, const std::optional<double>& after,
                       double gflops, int threads) {
  PeakReport p;
  std::vector<double> v;
  if (before) v.push_back(*before);
  if (after) v.push_back(*after);
  if (v.empty()) return p;
  p.per_core_gflops = median(v);
  p.fraction = gflops / (*p.per_core_gflops * double(std::max(1, threads)));
  return p;
}

void add_peak_fields(nlohmann::json& j, const PeakReport& p) {
  j["peak_gflops_per_core"] = p.per_core_gflops ? nlohmann::json(*p.per_core_gflops) : nullptr;
  j["fraction_of_peak"] = p.fraction ? nlohmann::json(*p.fraction) : nullptr;
}

std::string peak_text(const PeakReport& p, int threads) {
  if (!p.per_core_gflops) return "";
  char buf[160];
  std::snprintf(buf, sizeof buf,
                " = %.1f%% of the FMA peak (%.1f GFLOP/s per core x %d thread%s, measured in "
                "this run)",
                100.0 * *p.fraction, *p.per_core_gflops, threads, threads == 1 ? "" : "s");
  return buf;
}

}  // namespace simdattn::cli
