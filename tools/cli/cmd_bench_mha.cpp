// tools/cli/cmd_bench_mha.cpp — `simdattn bench mha`: times MultiHeadAttention's forward
// (qkv_bias, no dropout, random nn.Linear-initialised weights and uniform [-1, 1) input) on
// the chosen backend, ISA and thread count: one warm-up forward, then the median of R timed
// ones. GFLOP/s counts causal-useful FLOPs (see bench/bench_mha.cpp); peak_rss_mib is the
// process's resident high-water mark over the timed forwards (VmHWM, reset before them on
// Linux), so it includes x, y, the packed weights and the library's scratch.
// With --kv-dtype, every forward is a prefill through a KV cache of that type (reset before
// each one): the keys and values are encoded into the cache and the attention reads them as
// stored, so the timing includes the cache's encode and, for a stored type, its dequantizing.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "cli.hpp"
#include "common.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/runtime.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::cli {
namespace {

/// A "Key:   123 kB" line of /proc/self/status in MiB (0 when unavailable).
double status_mib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) / 1024.0;
  return 0.0;
}

int bench_mha_command(Args& args) {
  const std::int64_t batch = args.take_int("batch", 1, 1, 1 << 20);
  const std::int64_t tokens = args.take_int("tokens", 1024, 1, 1 << 24);
  const std::int64_t d_model = args.take_int("d-model", 768, 1, 1 << 20);
  const std::int64_t heads = args.take_int("heads", 12, 1, 1 << 20);
  const Backend backend = parse_backend_flag(args.take_string("backend", "fast"));
  const std::int64_t repeats = args.take_int("repeats", 5, 1, 1000000);
  const bool json = args.take_flag("json");
  const DType weight_type = resolve_weight_dtype(take_weight_dtype(args, "f32"), nullptr);
  const std::optional<std::string> kv_flag = args.take_optional_string("kv-dtype");
  const DType kv_type = kv_flag ? parse_kv_dtype(*kv_flag) : DType::f32;
  apply_runtime_flags(args);
  args.finish();
  if (d_model % heads != 0)
    throw UsageError{"--d-model (" + std::to_string(d_model) + ") must be divisible by --heads (" +
                     std::to_string(heads) + ")"};

  MultiHeadAttention mha(d_model, d_model, tokens, 0.0, heads, true);
  mha.set_weight_storage(weight_type);
  mha.init_random(1);
  std::vector<float> xv(static_cast<std::size_t>(batch * tokens * d_model));
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : xv) v = dist(rng);
  const Tensor x({batch, tokens, d_model}, std::move(xv));
  ForwardOptions options;
  options.backend = backend;
  std::optional<KVCache> cache;
  if (kv_flag) cache.emplace(mha, batch, tokens, false, kv_type);
  auto forward = [&]() {
    if (!cache) return mha.forward(x, options);
    cache->reset();
    return mha.forward(x, *cache, options);
  };

  { Tensor warm = forward(); }
  const std::optional<double> peak_before = measure_fma_peak_gflops();
  const double rss_before = status_mib("VmRSS:");
  {
    std::ofstream clear("/proc/self/clear_refs");  // reset VmHWM to the current RSS
    if (clear) clear << "5";
  }
  std::vector<double> wall, cpu;
  for (std::int64_t i = 0; i < repeats; ++i) {
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    Tensor y = forward();
    const auto t1 = std::chrono::steady_clock::now();
    cpu.push_back(process_cpu_seconds() - c0);
    wall.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  const double peak = status_mib("VmHWM:");
  const std::optional<double> peak_after = measure_fma_peak_gflops();
  const double b = double(batch), t = double(tokens), d = double(d_model);
  const double flops = 2.0 * b * t * d * 3.0 * d +
                       4.0 * b * double(heads) * (d / double(heads)) * t * (t + 1.0) / 2.0 +
                       2.0 * b * t * d * d;
  const double med = median(wall);
  const PeakReport fma = peak_report(peak_before, peak_after, flops / med * 1e-9, num_threads());
  if (json) {
    nlohmann::json j;
    j["batch"] = batch;
    j["tokens"] = tokens;
    j["d_model"] = d_model;
    j["heads"] = heads;
    j["backend"] = backend_name(backend);
    j["isa"] = isa_name(active_isa());
    j["threads"] = num_threads();
    j["weight_dtype"] = dtype_name(weight_type);
    j["weight_bytes"] = mha.weight_bytes();
    j["kv_dtype"] = cache ? nlohmann::json(dtype_name(cache->kv_type())) : nlohmann::json(nullptr);
    j["kv_bytes"] = cache ? nlohmann::json(cache->bytes()) : nlohmann::json(nullptr);
    j["repeats"] = repeats;
    j["median_s"] = med;
    j["min_s"] = *std::min_element(wall.begin(), wall.end());
    j["gflops"] = flops / med * 1e-9;
    j["median_process_cpu_s"] = median(cpu);
    j["peak_rss_mib"] = peak;
    j["rss_growth_mib"] = peak - rss_before;
    add_peak_fields(j, fma);
    std::cout << j.dump() << "\n";
  } else {
    const std::string through =
        cache ? std::string(" through a ") + dtype_name(cache->kv_type()) + " KV cache (" +
                    std::to_string(cache->bytes()) + " bytes)"
              : std::string();
    std::printf("MultiHeadAttention forward B=%lld T=%lld d=%lld heads=%lld backend=%s isa=%s "
                "threads=%d weights=%s (%.1f MB)%s\n",
                static_cast<long long>(batch), static_cast<long long>(tokens),
                static_cast<long long>(d_model), static_cast<long long>(heads),
                backend_name(backend), isa_name(active_isa()), num_threads(),
                dtype_name(weight_type), 1e-6 * static_cast<double>(mha.weight_bytes()),
                through.c_str());
    std::printf("median %.6f s over %lld runs (min %.6f s): %.2f GFLOP/s (causal-useful)%s; "
                "process CPU %.6f s; peak RSS %.1f MiB\n",
                med, static_cast<long long>(repeats), *std::min_element(wall.begin(), wall.end()),
                flops / med * 1e-9, peak_text(fma, num_threads()).c_str(), median(cpu), peak);
  }
  return 0;
}

const bool registered = register_command(
    {"bench mha",
     "bench mha --batch B --tokens T --d-model D --heads H [--weight-dtype f32|f16|bf16|q8_0|q4_0] "
     "[--kv-dtype f32|f16|bf16|q8_0 (each forward a prefill through a KV cache of that type)] "
     "[--isa I] [--threads N] "
     "[--backend fast|reference] [--repeats R] [--json]",
     bench_mha_command});

}  // namespace
}  // namespace simdattn::cli
