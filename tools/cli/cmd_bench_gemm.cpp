// tools/cli/cmd_bench_gemm.cpp — `simdattn bench gemm`: times C = A · Wᵀ for an nn.Linear-style
// weight W [N, K] prepacked once (as the modules do), on the chosen ISA and thread count: one
// warm-up, then the median of R timed runs.
//
// For small M (the decode case, M <= 16) one weight would stay in the last-level cache between runs and
// flatter the result, so the weight is rotated through enough prepacked copies (>= 96 MiB in
// all) that every run streams its weight from memory; --rotate overrides the count.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "common.hpp"
#include "cli.hpp"
#include "simdattn/gemm.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn::cli {
namespace {

int bench_gemm_command(Args& args) {
  const std::int64_t m = args.take_int("m", 0, 1);
  const std::int64_t n = args.take_int("n", 0, 1);
  const std::int64_t k = args.take_int("k", 0, 1);
  if (m < 1 || n < 1 || k < 1) throw UsageError{"--m, --n and --k are required (each >= 1)"};
  const std::int64_t repeats = args.take_int("repeats", 10, 1, 1000000);
  const auto rotate_flag = args.take_optional_int("rotate", 1, 4096);
  const bool unpacked = args.take_flag("unpacked");
  const bool json = args.take_flag("json");
  const DType weight_type = resolve_weight_dtype(take_weight_dtype(args, "f32"), nullptr);
  apply_runtime_flags(args);
  args.finish();
  if (unpacked && weight_type != DType::f32)
    throw UsageError{"--unpacked multiplies f32 weights; drop --weight-dtype or --unpacked"};

  // The bytes one product reads of its weight, in its storage type (as packed: 16-column panels).
  double weight_bytes = double(n) * double(k) * sizeof(float);
  if (weight_type != DType::f32) {
    std::vector<float> probe(static_cast<std::size_t>(n * k), 0.0f);
    weight_bytes = static_cast<double>(
        PackedMatrix(probe.data(), k, Transpose::yes, k, n, weight_type).resident_bytes());
  }
  const std::int64_t rotate =
      rotate_flag ? *rotate_flag
                  : (m <= 16 ? std::max<std::int64_t>(
                                  1, static_cast<std::int64_t>(std::ceil(96.0 * (1 << 20) / weight_bytes)))
                            : 1);

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(static_cast<std::size_t>(m * k));
  for (float& x : a) x = dist(rng);
  std::vector<float> c(static_cast<std::size_t>(m * n), 0.0f);
  std::vector<std::vector<float>> weights(static_cast<std::size_t>(rotate));
  std::vector<PackedMatrix> packed;
  for (auto& w : weights) {
    w.resize(static_cast<std::size_t>(n * k));
    for (float& x : w) x = dist(rng);
    if (!unpacked) packed.emplace_back(w.data(), k, Transpose::yes, k, n, weight_type);
  }

  std::size_t r = 0;
  const auto run_once = [&] {
    if (unpacked)
      sgemm(Transpose::yes, m, n, k, 1.0f, a.data(), k, weights[r].data(), k, 0.0f, c.data(), n);
    else
      sgemm_packed(m, 1.0f, a.data(), k, packed[r], 0.0f, c.data(), n);
    r = (r + 1) % weights.size();
  };
  for (std::int64_t i = 0; i < std::max<std::int64_t>(1, rotate); ++i) run_once();  // warm-up
  const std::optional<double> peak_before = measure_fma_peak_gflops();
  std::vector<double> wall, cpu;
  for (std::int64_t i = 0; i < repeats; ++i) {
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    run_once();
    const auto t1 = std::chrono::steady_clock::now();
    cpu.push_back(process_cpu_seconds() - c0);
    wall.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  const std::optional<double> peak_after = measure_fma_peak_gflops();
  const double med = median(wall), med_cpu = median(cpu);
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const int threads = num_threads();
  const PeakReport fma = peak_report(peak_before, peak_after, flops / med * 1e-9, threads);
  const GemmBlockingInfo blk = gemm_blocking(active_isa());
  const CacheInfo caches = cache_info();
  if (json) {
    nlohmann::json j;
    j["m"] = m;
    j["n"] = n;
    j["k"] = k;
    j["isa"] = isa_name(active_isa());
    j["threads"] = threads;
    j["repeats"] = repeats;
    j["prepacked"] = !unpacked;
    j["weight_dtype"] = dtype_name(weight_type);
    j["weight_bytes"] = weight_bytes;
    j["weights_rotated"] = rotate;
    j["median_s"] = med;
    j["min_s"] = *std::min_element(wall.begin(), wall.end());
    j["gflops"] = flops / med * 1e-9;
    j["median_process_cpu_s"] = med_cpu;
    j["weight_gbytes_per_s"] = weight_bytes / med * 1e-9;
    add_peak_fields(j, fma);
    j["gemm_blocking"] = {{"mr", blk.mr}, {"nr", blk.nr}, {"mc", blk.mc}, {"kc", blk.kc},
                          {"nc", blk.nc}};
    j["caches"] = {{"l1d_bytes", caches.l1d_bytes}, {"l2_bytes", caches.l2_bytes},
                   {"l3_bytes", caches.l3_bytes}, {"source", caches.source}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf("sgemm%s m=%lld n=%lld k=%lld isa=%s threads=%d weights=%s (rotated: %lld)\n",
                unpacked ? "" : "_packed", static_cast<long long>(m), static_cast<long long>(n),
                static_cast<long long>(k), isa_name(active_isa()), threads,
                dtype_name(weight_type), static_cast<long long>(rotate));
    std::printf("blocking: %dx%d tile, mc=%lld kc=%lld nc=%lld (L2 %lld KiB, from %s)\n", blk.mr,
                blk.nr, blk.mc, blk.kc, blk.nc, caches.l2_bytes / 1024, caches.source);
    std::printf("median %.6f s over %lld runs (min %.6f s): %.2f GFLOP/s%s, weight %.2f GB/s; "
                "process CPU %.6f s\n",
                med, static_cast<long long>(repeats), *std::min_element(wall.begin(), wall.end()),
                flops / med * 1e-9, peak_text(fma, threads).c_str(), weight_bytes / med * 1e-9,
                med_cpu);
  }
  return 0;
}

const bool registered = register_command(
    {"bench gemm",
     "bench gemm --m M --n N --k K [--weight-dtype f32|f16|bf16|q8_0|q4_0] [--isa I] [--threads N] "
     "[--repeats R] [--rotate W] [--unpacked] [--json]",
     bench_gemm_command});

}  // namespace
}  // namespace simdattn::cli
