// tools/cli/bench_support.hpp — what the timing commands (`bench gemm`, `bench mha`, `decode`)
// share: clocks, quantiles, and the machine's FMA peak measured in the same process, so a result
// can be read as a fraction of what this core could do at that moment (a shared machine's clock
// drifts between runs).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace simdattn::cli {

double process_cpu_seconds();
/// Sorted-sample quantile by linear interpolation between closest ranks; 0 for no samples.
double quantile(std::vector<double> v, double q);
double median(std::vector<double> v);  ///< quantile(v, 0.5)

/// One core's FMA peak in GFLOP/s at the active ISA's vector width (avx2: 12 independent ymm
/// FMA chains; avx512: 16 independent zmm chains), measured now: the median of `samples` runs
/// of ~20 ms. nullopt where the build is not x86-64 or the active ISA is neither.
std::optional<double> measure_fma_peak_gflops(int samples = 5);

/// Peak samples taken before and after the timed runs; adds to `j` (and returns for printing)
/// peak_gflops_per_core (their mean) and fraction_of_peak = gflops / (peak x threads), or
/// null for both when no peak could be measured.
struct PeakReport {
  std::optional<double> per_core_gflops, fraction;
};
PeakReport peak_report(const std::optional<double>& before, const std::optional<double>& after,
                       double gflops, int threads);
void add_peak_fields(nlohmann::json& j, const PeakReport& p);
/// " = 78.1% of the FMA peak (97.9 GFLOP/s per core x 1 thread, measured in this run)", or ""
/// when no peak was measured.
std::string peak_text(const PeakReport& p, int threads);

}  // namespace simdattn::cli
