// bench/bench_decode.cpp — one decode step (one new token) through GPT-2 small's 12 attention
// layers (d = 768, 12 heads) with 1024 tokens already cached, next to a streaming read of a
// 1 GiB buffer measured in the same run at the same thread count.
//
// Why the stream: a 1-token step is a GEMV against every layer's weights plus one pass over every
// layer's cached K and V. Nothing it reads fits in cache (≈189 MB against a 32 MB L3), so its
// floor is "bytes it must read / memory bandwidth". `x_of_stream_time` is the step's time over
// that floor: 1.0 would be a step that does nothing but read its bytes once at full bandwidth.
//
// Every timed step sees the same cache: prefill 1024 tokens once (outside timing), then after
// each step rewind every cache by the one token it appended (KVCache::truncate: two integer
// stores per layer, so it stays inside the timed region).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/runtime.hpp"
#include "stream_bandwidth.hpp"

namespace {

using simdattn::Tensor;
using simdattn::bench::stream_bandwidth;

constexpr std::int64_t kLayers = 12, kModel = 768, kHeads = 12;

/// Bytes one step must read at least once: every layer's packed QKV and out_proj weights
/// (4·d² floats) and the K and V of every cached key plus the new one.
double step_bytes(std::int64_t cached) {
  return double(kLayers) * (4.0 * kModel * kModel + 2.0 * double(cached + 1) * kModel) *
         sizeof(float);
}

// ---- the decode step ---------------------------------------------------------------------------

Tensor random_tensor(std::vector<std::int64_t> shape, std::uint64_t seed) {
  Tensor t(std::move(shape));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : t.values()) v = u(rng);
  return t;
}

/// Runs `prepare` once (the prefill), then times `step` once per iteration: seconds per step,
/// or a negative value after a library error (the benchmark is then skipped with its message).
template <class Prepare, class Step>
double timed_steps(benchmark::State& state, Prepare&& prepare, Step&& step) {
  try {
    prepare();
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) step();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
           static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  } catch (const simdattn::Error& e) {
    state.SkipWithError(e.what());
    simdattn::set_num_threads(0);
    return -1.0;
  }
}

/// Arguments: threads, cached tokens (1024 is the benchmark; 1 leaves only the weights, which
/// splits a step's time between weight and K/V streaming).
void BM_DecodeStep_Gpt2Small(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const std::int64_t cached = state.range(1);
  simdattn::set_num_threads(threads);
  std::vector<simdattn::MultiHeadAttention> layers;
  std::vector<simdattn::KVCache> caches;
  layers.reserve(kLayers);
  for (std::int64_t l = 0; l < kLayers; ++l) {
    layers.emplace_back(kModel, kModel, cached + 1, 0.0, kHeads, /*qkv_bias=*/true);
    layers.back().init_random(1000 + static_cast<std::uint64_t>(l));
  }
  for (const auto& layer : layers) caches.emplace_back(layer, 1, cached + 1);

  double step_s = 0.0;
  try {
    // Prefill: the prompt flows through the stack, each layer's output the next one's input.
    Tensor h = random_tensor({1, cached, kModel}, 7);
    for (std::int64_t l = 0; l < kLayers; ++l) h = layers[l].forward(h, caches[l]);
    const Tensor token = random_tensor({1, 1, kModel}, 8);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
      Tensor x = token;
      for (std::int64_t l = 0; l < kLayers; ++l) x = layers[l].forward(x, caches[l]);
      benchmark::DoNotOptimize(x.data());
      for (auto& c : caches) c.truncate(1);  // back to `cached` tokens for the next step
    }
    step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
             static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  } catch (const simdattn::Error& e) {
    state.SkipWithError(e.what());
    simdattn::set_num_threads(0);
    return;
  }

  const double bandwidth = stream_bandwidth(threads);
  const double bytes = step_bytes(cached);
  state.counters["bytes_per_step"] = bytes;
  state.counters["bytes/s"] = benchmark::Counter(
      bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1024);
  state.counters["stream_GBps"] = bandwidth / 1e9;
  // The step's time in units of its floor, bytes / streaming bandwidth (same threads, same run).
  state.counters["x_of_stream_time"] = step_s / (bytes / bandwidth);
  state.SetLabel(std::string("isa=") + simdattn::isa_name(simdattn::active_isa()) +
                 " threads=" + std::to_string(simdattn::num_threads()) +
                 " layers=12 d=768 heads=12 cached=" + std::to_string(cached));
  simdattn::set_num_threads(0);
}

BENCHMARK(BM_DecodeStep_Gpt2Small)
    ->ArgNames({"threads", "cached"})
    ->Args({1, 1024})
    ->Args({2, 1024})
    ->Args({1, 1})
    ->Args({2, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

/// The same step with weights and K/V stored in other types (simdattn/dtype.hpp), 1024 cached
/// tokens. Its floor is its own bytes: every layer's weight_bytes() (packed matrices and
/// biases) plus the K/V rows it reads in the cache's type, over the streaming bandwidth
/// measured right after. Arguments: threads, weight type, KV type (DType's enumerators).
void BM_DecodeStep_Stored(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto wtype = static_cast<simdattn::DType>(state.range(1));
  const auto kvtype = static_cast<simdattn::DType>(state.range(2));
  constexpr std::int64_t kCached = 1024;
  simdattn::set_num_threads(threads);
  std::vector<simdattn::MultiHeadAttention> layers;
  std::vector<simdattn::KVCache> caches;
  layers.reserve(kLayers);
  double weight_bytes = 0.0, kv_bytes = 0.0;
  for (std::int64_t l = 0; l < kLayers; ++l) {
    layers.emplace_back(kModel, kModel, kCached + 1, 0.0, kHeads, /*qkv_bias=*/true);
    layers.back().set_weight_storage(wtype);
    layers.back().init_random(1000 + static_cast<std::uint64_t>(l));
    weight_bytes += static_cast<double>(layers.back().weight_bytes());
  }
  for (const auto& layer : layers) {
    caches.emplace_back(layer, 1, kCached + 1, false, kvtype);
    kv_bytes += static_cast<double>(caches.back().bytes());  // capacity = the keys read
  }
  double step_s = 0.0;
  try {
    Tensor h = random_tensor({1, kCached, kModel}, 7);
    for (std::int64_t l = 0; l < kLayers; ++l) h = layers[l].forward(h, caches[l]);
    const Tensor token = random_tensor({1, 1, kModel}, 8);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
      Tensor x = token;
      for (std::int64_t l = 0; l < kLayers; ++l) x = layers[l].forward(x, caches[l]);
      benchmark::DoNotOptimize(x.data());
      for (auto& c : caches) c.truncate(1);
    }
    step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
             static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  } catch (const simdattn::Error& e) {
    state.SkipWithError(e.what());
    simdattn::set_num_threads(0);
    return;
  }
  const double bandwidth = stream_bandwidth(threads);
  const double bytes = weight_bytes + kv_bytes;
  state.counters["bytes_per_step"] = bytes;
  state.counters["weight_bytes"] = weight_bytes;
  state.counters["kv_bytes"] = kv_bytes;
  state.counters["stream_GBps"] = bandwidth / 1e9;
  state.counters["x_of_stream_time"] = step_s / (bytes / bandwidth);
  state.SetLabel(std::string("isa=") + simdattn::isa_name(simdattn::active_isa()) +
                 " threads=" + std::to_string(simdattn::num_threads()) + " weights=" +
                 simdattn::dtype_name(wtype) + " kv=" + simdattn::dtype_name(kvtype) +
                 " layers=12 d=768 heads=12 cached=1024");
  simdattn::set_num_threads(0);
}

int register_stored_decode() {
  using simdattn::DType;
  const std::pair<DType, DType> combos[] = {
      {DType::f32, DType::f32},   {DType::f16, DType::f16},  {DType::bf16, DType::bf16},
      {DType::q8_0, DType::q8_0}, {DType::q8_0, DType::f16}, {DType::f16, DType::f32},
      {DType::f32, DType::f16},   {DType::q4_0, DType::q8_0}};
  for (int threads : {1, 2})
    for (const auto& [w, kv] : combos) {
      const std::string name = std::string("BM_DecodeStep_Stored/threads:") +
                               std::to_string(threads) + "/weights:" + simdattn::dtype_name(w) +
                               "/kv:" + simdattn::dtype_name(kv);
      benchmark::RegisterBenchmark(name.c_str(), BM_DecodeStep_Stored)
          ->Args({threads, static_cast<int>(w), static_cast<int>(kv)})
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
    }
  return 0;
}
const int kStoredDecodeRegistered = register_stored_decode();

/// A step through a sliding-window cache that is full (every step evicts its oldest token; the
/// cache is a ring, so that costs two integer updates, where moving the kept tokens down cost
/// ~3 MiB of copies per layer) next to a step through a sliding cache with room to spare, both
/// attending to 1024 cached tokens. Argument: full (1) or not (0). Same bits of work otherwise:
/// compare the two times in one run.
void BM_DecodeStep_SlidingWindow(benchmark::State& state) {
  const bool full = state.range(0) != 0;
  constexpr std::int64_t kCached = 1024;
  simdattn::set_num_threads(1);
  std::vector<simdattn::MultiHeadAttention> layers;
  std::vector<simdattn::KVCache> caches;
  layers.reserve(kLayers);
  for (std::int64_t l = 0; l < kLayers; ++l) {
    layers.emplace_back(kModel, kModel, 2 * kCached + 1, 0.0, kHeads, /*qkv_bias=*/true);
    layers.back().init_random(1000 + static_cast<std::uint64_t>(l));
  }
  // Full: capacity = the window = 1024, so each step slides. Not full: room for 2048.
  for (const auto& layer : layers)
    caches.emplace_back(layer, 1, full ? kCached : 2 * kCached, /*sliding_window=*/true);
  try {
    Tensor h = random_tensor({1, kCached, kModel}, 7);
    for (std::int64_t l = 0; l < kLayers; ++l) h = layers[l].forward(h, caches[l]);
    if (full) {  // one more step so the ring has wrapped before timing
      Tensor x = random_tensor({1, 1, kModel}, 9);
      for (std::int64_t l = 0; l < kLayers; ++l) x = layers[l].forward(x, caches[l]);
    }
    const Tensor token = random_tensor({1, 1, kModel}, 8);
    for (auto _ : state) {
      Tensor x = token;
      for (std::int64_t l = 0; l < kLayers; ++l) x = layers[l].forward(x, caches[l]);
      benchmark::DoNotOptimize(x.data());
      if (!full)
        for (auto& c : caches) c.truncate(1);  // back to 1024 held tokens
    }
  } catch (const simdattn::Error& e) {
    state.SkipWithError(e.what());
    simdattn::set_num_threads(0);
    return;
  }
  state.SetLabel(std::string("isa=") + simdattn::isa_name(simdattn::active_isa()) +
                 " threads=1 layers=12 d=768 heads=12 attended=" +
                 std::to_string(full ? kCached : kCached + 1) +
                 (full ? " sliding cache full (evicts every step)" : " sliding cache not full"));
  simdattn::set_num_threads(0);
}

BENCHMARK(BM_DecodeStep_SlidingWindow)
    ->ArgNames({"full"})
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

}  // namespace

// The suite's main, weak so that a bench/ file that defines its own main takes precedence.
__attribute__((weak)) int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

/// Many sequences decoding together (continuous batching), against one alone, in one run:
/// GPT-2 small's 12 layers shared by a single sequence (1024 cached tokens) and by 16 sequences
/// whose caches hold 64 + (1024 - 64) i / 15 tokens, each with its own KVCache per layer, one
/// forward_batch per layer per step. Every iteration runs a 512 MiB streaming read, the
/// single sequence's step and the 16 sequences' step, so the two steps and their floor see the
/// same state of a shared machine (and the read leaves neither step anything in L3: a host whose
/// L3 holds the single sequence's 190 MB would otherwise serve part of it from cache).
/// Counters, medians over the iterations: tokens/s of each, `gain` (16-sequence tokens/s over
/// one's), each step's bytes (weights once, plus every sequence's K/V) and its time over those
/// bytes at the read's bandwidth (`x_of_floor_*`).
void BM_DecodeStep_Ragged(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto kv_type = static_cast<simdattn::DType>(state.range(1));
  constexpr std::int64_t kPrompt = 1024, kMany = 16;
  simdattn::set_num_threads(threads);
  std::vector<simdattn::MultiHeadAttention> layers;
  layers.reserve(kLayers);
  double weight_bytes = 0.0;
  for (std::int64_t l = 0; l < kLayers; ++l) {
    layers.emplace_back(kModel, kModel, kPrompt + 1, 0.0, kHeads, /*qkv_bias=*/true);
    layers.back().init_random(1000 + static_cast<std::uint64_t>(l));
    weight_bytes += static_cast<double>(layers.back().weight_bytes());
  }
  // One batch of sequences: its caches, the prefill and decode steps, the step's bytes.
  struct Batch {
    std::vector<std::int64_t> prompts;
    std::vector<std::vector<simdattn::KVCache>> caches;
    std::vector<std::vector<simdattn::AttentionModule::SequenceStep>> prefill, decode;
    std::vector<Tensor> outs;
    Tensor token;
    double bytes = 0.0;
  };
  auto make_batch = [&](std::int64_t n) {
    Batch b;
    for (std::int64_t i = 0; i < n; ++i)
      b.prompts.push_back(n == 1 ? kPrompt : 64 + (kPrompt - 64) * i / (n - 1));
    b.caches.resize(kLayers);
    b.prefill.resize(kLayers);
    b.decode.resize(kLayers);
    b.outs.resize(kLayers);
    b.bytes = weight_bytes;
    for (std::int64_t l = 0; l < kLayers; ++l) {
      b.caches[l].reserve(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) {
        b.caches[l].emplace_back(layers[l], 1, kPrompt + 1, false, kv_type);
        const std::int64_t prompt = b.prompts[static_cast<std::size_t>(i)];
        b.prefill[l].push_back({&b.caches[l].back(), prompt});
        b.decode[l].push_back({&b.caches[l].back(), 1});
        // The rows a step reads: the held tokens and the new one, K and V, in the cache's type.
        const double token_bytes =
            static_cast<double>(b.caches[l].back().bytes()) / double(kPrompt + 1);
        b.bytes += double(prompt + 1) * token_bytes;
      }
    }
    b.token = random_tensor({n, kModel}, 8);
    return b;
  };
  auto prefill = [&](Batch& b) {
    std::int64_t rows = 0;
    for (std::int64_t p : b.prompts) rows += p;
    Tensor h = random_tensor({rows, kModel}, 7);
    for (std::int64_t l = 0; l < kLayers; ++l) {
      Tensor next;
      layers[l].forward_batch(h, b.prefill[l], next);
      h = std::move(next);
    }
  };
  auto step = [&](Batch& b) {
    const auto t0 = std::chrono::steady_clock::now();
    const Tensor* x = &b.token;
    for (std::int64_t l = 0; l < kLayers; ++l) {
      layers[l].forward_batch(*x, b.decode[l], b.outs[l]);
      x = &b.outs[l];
    }
    benchmark::DoNotOptimize(b.outs.back().data());
    for (auto& layer_caches : b.caches)
      for (auto& c : layer_caches) c.truncate(1);  // back to the prompts for the next step
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  constexpr double kReadBytes = 512.0 * 1024 * 1024;
  std::vector<double> one_s, many_s, read_s;
  try {
    Batch one = make_batch(1), many = make_batch(kMany);
    prefill(one);
    prefill(many);
    for (auto _ : state) {
      read_s.push_back(simdattn::bench::stream_read_seconds(threads, kReadBytes));
      one_s.push_back(step(one));
      many_s.push_back(step(many));
      state.SetIterationTime(one_s.back() + many_s.back());
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const double t1 = median(one_s), tn = median(many_s);
    const double bandwidth = kReadBytes / median(read_s);
    state.counters["tokens_per_s_1"] = 1.0 / t1;
    state.counters["tokens_per_s_16"] = double(kMany) / tn;
    state.counters["gain"] = (double(kMany) / tn) / (1.0 / t1);
    state.counters["bytes_1"] = one.bytes;
    state.counters["bytes_16"] = many.bytes;
    state.counters["stream_GBps"] = bandwidth / 1e9;
    state.counters["x_of_floor_1"] = t1 / (one.bytes / bandwidth);
    state.counters["x_of_floor_16"] = tn / (many.bytes / bandwidth);
  } catch (const simdattn::Error& e) {
    state.SkipWithError(e.what());
  }
  state.SetLabel(std::string("isa=") + simdattn::isa_name(simdattn::active_isa()) +
                 " threads=" + std::to_string(simdattn::num_threads()) + " kv=" +
                 simdattn::dtype_name(kv_type) + " layers=12 d=768 heads=12 1 x 1024 vs 16 x 64..1024");
  simdattn::set_num_threads(0);
}

BENCHMARK(BM_DecodeStep_Ragged)
    ->ArgNames({"threads", "kv"})
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({1, 1})  // f16 caches
    ->Args({1, 3})  // q8_0 caches
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0);

/// Grouped-query attention at decode: one LlamaAttention layer (d = 4096, 32 query heads of
/// 128, G K/V heads, rotary embedding) with `cached` tokens. The K/V a step reads is G/32 of
/// multi-head attention's; the weights differ too (k_proj and v_proj are G/32 as large), so the
/// K/V cost is read off as the step at 1024 cached minus the step at 1 cached, per G.
void BM_DecodeStep_Gqa(benchmark::State& state) {
  const std::int64_t g = state.range(0), cached = state.range(1);
  constexpr std::int64_t kD = 4096, kH = 32, kHd = 128;
  simdattn::set_num_threads(1);
  simdattn::LlamaAttention layer(kD, kH, g, kHd, cached + 1);
  layer.init_random(77);
  simdattn::KVCache cache(layer, 1, cached + 1);
  const Tensor token = random_tensor({1, 1, kD}, 8);
  Tensor y;
  const double step_s = timed_steps(
      state, [&] { (void)layer.forward(random_tensor({1, cached, kD}, 7), cache); },
      [&] {
        layer.forward_into(token, cache, y);
        benchmark::DoNotOptimize(y.data());
        cache.truncate(1);
      });
  if (step_s < 0.0) return;
  state.counters["kv_bytes_read"] = 2.0 * double(cached + 1) * double(g * kHd) * sizeof(float);
  state.counters["weight_bytes"] = static_cast<double>(layer.weight_bytes());
  state.counters["step_ms"] = 1e3 * step_s;
  state.SetLabel("isa=" + std::string(simdattn::isa_name(simdattn::active_isa())) +
                 " threads=1 d=4096 heads=32 kv_heads=" + std::to_string(g) + " hd=128 cached=" +
                 std::to_string(cached));
  simdattn::set_num_threads(0);
}

BENCHMARK(BM_DecodeStep_Gqa)
    ->ArgNames({"kv_heads", "cached"})
    ->Args({8, 1})
    ->Args({8, 1024})
    ->Args({32, 1})
    ->Args({32, 1024})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);
