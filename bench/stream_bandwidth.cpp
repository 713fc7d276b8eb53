// bench/stream_bandwidth.cpp — the streaming-read bandwidth the decode floors are measured
// against (bench/bench_decode.cpp and `simdattn decode`).
#include "stream_bandwidth.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <thread>
#include <vector>

namespace simdattn::bench {
namespace {

volatile float sink;  // keeps the sums (and so the reads) alive

using Vec8 = float __attribute__((vector_size(32)));  // explicit vectors: no -ffast-math needed

/// Sums n floats with eight independent vector accumulators (so the adds never limit the rate).
/// Built twice: for the baseline and, through the target attribute, for AVX2 — one core of the
/// baseline build issues too few loads per cycle to reach the memory bandwidth an AVX2 GEMV
/// reaches, which would make the floor look lower than it is.
#define SIMDATTN_BENCH_SUM_BODY                                                 \
  Vec8 a[8] = {};                                                               \
  std::size_t i = 0;                                                            \
  for (; i + 64 <= n; i += 64)                                                  \
    for (int j = 0; j < 8; ++j) {                                               \
      Vec8 v;                                                                   \
      std::memcpy(&v, p + i + 8 * j, sizeof v);                                 \
      a[j] += v;                                                                \
    }                                                                           \
  Vec8 t = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));   \
  float s = 0.0f;                                                               \
  for (int j = 0; j < 8; ++j) s += t[j];                                        \
  for (; i < n; ++i) s += p[i];                                                 \
  return s;

__attribute__((noinline)) float sum_range_baseline(const float* p, std::size_t n) {
  SIMDATTN_BENCH_SUM_BODY
}
#if defined(__x86_64__)
__attribute__((noinline, target("avx2"))) float sum_range_avx2(const float* p, std::size_t n) {
  SIMDATTN_BENCH_SUM_BODY
}
#endif
#undef SIMDATTN_BENCH_SUM_BODY

float sum_range(const float* p, std::size_t n) {
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return sum_range_avx2(p, n);
#endif
  return sum_range_baseline(p, n);
}

constexpr std::size_t kBufferFloats = (std::size_t{1} << 30) / sizeof(float);

/// One parallel read of the buffer's first `floats` floats: seconds.
double read_pass(int threads, std::size_t floats) {
  static std::vector<float> buffer(kBufferFloats, 1.0f);  // written once: pages really mapped
  std::vector<float> sums(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      const std::size_t lo = floats * static_cast<std::size_t>(t) / threads;
      const std::size_t hi = floats * static_cast<std::size_t>(t + 1) / threads;
      sums[static_cast<std::size_t>(t)] = sum_range(buffer.data() + lo, hi - lo);
    });
  for (auto& th : pool) th.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float total = 0.0f;
  for (float v : sums) total += v;
  sink = total;
  return s;
}

}  // namespace

double stream_bandwidth(int threads) {
  std::vector<double> rates;
  for (int pass = 0; pass < 4; ++pass) {
    const double s = read_pass(threads, kBufferFloats);
    if (pass > 0) rates.push_back(double(kBufferFloats * sizeof(float)) / s);  // 0 warms up
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

double stream_read_seconds(int threads, double bytes) {
  const auto floats = static_cast<std::size_t>(bytes / sizeof(float));
  return read_pass(threads, floats < kBufferFloats ? floats : kBufferFloats);
}

}  // namespace simdattn::bench
