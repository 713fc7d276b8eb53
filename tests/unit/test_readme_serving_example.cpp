// tests/unit/test_readme_serving_example.cpp — the README's continuous-batching example,
// compiled and run: the program between the BEGIN/END markers is the README's text verbatim
// (tests/cli/readme_examples.py checks that). Its headers are included first, so the snippet's
// own #includes are no-ops inside the namespace, and its main() is renamed.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/kv_cache.hpp"

namespace readme_serving_example {
#define main example_main
// ---- BEGIN README serving example -------------------------------------------------------------
// serve.cpp — a continuous-batching decode loop: sequences join and leave, every active one
// advances by one token per step, and each layer runs one forward_batch per step.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/kv_cache.hpp"

using simdattn::AttentionModule;
using simdattn::KVCache;
using simdattn::LlamaAttention;
using simdattn::Tensor;

constexpr std::int64_t kDModel = 64, kHeads = 8, kKvHeads = 2, kHeadDim = 8, kLayers = 2;
constexpr std::int64_t kContext = 128, kSlots = 4;

struct Sequence {
  int id = -1;                 // -1: the slot is free
  std::int64_t remaining = 0;  // tokens still to generate
  std::vector<KVCache> caches; // one per layer, batch 1, reused by the next sequence
};

int main() {
  std::vector<LlamaAttention> layers;
  for (std::int64_t l = 0; l < kLayers; ++l) {
    layers.emplace_back(kDModel, kHeads, kKvHeads, kHeadDim, kContext, simdattn::Rope::halves,
                        10000.0);
    layers.back().init_random(100 + static_cast<std::uint64_t>(l));  // or load_state_dict(
  }                                          // hf_attention_state_dict(checkpoint, l))
  std::vector<Sequence> slots(kSlots);
  for (Sequence& s : slots)
    for (const auto& layer : layers) s.caches.emplace_back(layer, 1);  // allocated once

  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto random_rows = [&](std::int64_t rows) {
    Tensor x({rows, kDModel});
    for (float& v : x.values()) v = u(gen);
    return x;
  };

  int next_id = 0, finished = 0;
  std::vector<Tensor> y(kLayers);
  for (int step = 0; finished < 6; ++step) {
    // Admission: a free slot takes a new request; its prompt is prefilled in its own call
    // (a ragged prefill of several new prompts would be one forward_batch as well).
    for (Sequence& s : slots) {
      if (s.id >= 0 || next_id >= 6) continue;
      s.id = next_id++;
      s.remaining = 3 + 2 * s.id;
      const std::int64_t prompt = 5 + 3 * s.id;
      Tensor h = random_rows(prompt);
      for (std::int64_t l = 0; l < kLayers; ++l) {
        KVCache& cache = s.caches[static_cast<std::size_t>(l)];
        cache.reset();
        Tensor out;
        layers[static_cast<std::size_t>(l)].forward_batch(h, {{&cache, prompt}}, out);
        h = out;
      }
      std::printf("step %d: sequence %d joins with %lld prompt tokens\n", step, s.id,
                  static_cast<long long>(prompt));
    }
    // One decode step for every active sequence: their new tokens are the rows of x.
    std::vector<Sequence*> active;
    for (Sequence& s : slots)
      if (s.id >= 0) active.push_back(&s);
    if (active.empty()) break;
    Tensor x = random_rows(static_cast<std::int64_t>(active.size()));  // stand-in embeddings
    for (std::int64_t l = 0; l < kLayers; ++l) {
      std::vector<AttentionModule::SequenceStep> batch;
      for (Sequence* s : active) batch.push_back({&s->caches[static_cast<std::size_t>(l)], 1});
      layers[static_cast<std::size_t>(l)].forward_batch(x, batch, y[static_cast<std::size_t>(l)]);
      x = y[static_cast<std::size_t>(l)];
    }
    // Leaving: a sequence that is done frees its slot (its caches serve the next request).
    for (Sequence* s : active)
      if (--s->remaining == 0) {
        std::printf("step %d: sequence %d leaves after %lld tokens\n", step, s->id,
                    static_cast<long long>(s->caches[0].position()));
        s->id = -1;
        ++finished;
      }
  }
  return finished == 6 ? 0 : 1;
}
// ---- END README serving example ---------------------------------------------------------------
#undef main
}  // namespace readme_serving_example

namespace {

TEST(ReadmeServingExample, SequencesJoinDecodeAndLeave) {
  EXPECT_EQ(readme_serving_example::example_main(), 0);
}

}  // namespace
