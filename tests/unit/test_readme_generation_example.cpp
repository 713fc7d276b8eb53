// tests/unit/test_readme_generation_example.cpp — the README's generation example, compiled and
// run: the program between the BEGIN/END markers is the README's text verbatim. Its headers are
// included first, so the snippet's own #includes are no-ops inside the namespace that keeps its
// names out of the test binary's global scope, and its main() is renamed so gtest's can run it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "simdattn/gpt2.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/safetensors.hpp"

namespace readme_generation_example {
#define main example_main
// ---- BEGIN README generation example ----------------------------------------------------------
// generate.cpp — greedy generation through a stack of attention layers with KV caches.
// One MultiHeadAttention per layer, built once and shared; one KVCache per layer per sequence.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/gpt2.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/safetensors.hpp"

using simdattn::MultiHeadAttention;
using simdattn::Tensor;

constexpr std::int64_t kVocab = 50, kPrompt = 5, kNew = 7;

// A toy token embedding [kVocab, d], tied as the output head the way GPT-2 ties wte. (A real
// model also has position embeddings, layer norms and MLPs between the attention layers.)
struct Embedding {
  std::int64_t d;
  std::vector<float> table;
  explicit Embedding(std::int64_t d_model) : d(d_model), table(kVocab * d_model) {
    std::mt19937 gen(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : table) v = normal(gen);
  }
  Tensor embed(const std::vector<int>& tokens) const {  // [1, T, d]
    Tensor x({1, static_cast<std::int64_t>(tokens.size()), d});
    for (std::size_t t = 0; t < tokens.size(); ++t)
      std::copy_n(table.data() + tokens[t] * d, d, x.data() + t * d);
    return x;
  }
  int greedy_next(const Tensor& h) const {  // argmax of the tied logits at h's last position
    const float* last = h.data() + (h.dim(1) - 1) * d;
    int best = 0;
    float best_logit = -std::numeric_limits<float>::infinity();
    for (int v = 0; v < kVocab; ++v) {
      float logit = 0.0f;
      for (std::int64_t c = 0; c < d; ++c) logit += last[c] * table[v * d + c];
      if (logit > best_logit) best = v, best_logit = logit;
    }
    return best;
  }
};

// One sequence: its own caches, the shared layers. The prompt is one forward per layer; then
// each new token is one forward per layer of a single token, attending to everything cached.
std::vector<int> generate(const std::vector<MultiHeadAttention>& layers, const Embedding& emb,
                          std::vector<int> tokens, int new_tokens) {
  std::vector<simdattn::KVCache> caches;  // capacity: each layer's context_length
  for (const MultiHeadAttention& layer : layers) caches.emplace_back(layer, /*batch=*/1);
  Tensor h = emb.embed(tokens);
  for (std::size_t l = 0; l < layers.size(); ++l) h = layers[l].forward(h, caches[l]);
  for (int i = 0; i < new_tokens; ++i) {
    tokens.push_back(emb.greedy_next(h));
    if (i + 1 == new_tokens) break;
    h = emb.embed({tokens.back()});
    for (std::size_t l = 0; l < layers.size(); ++l) h = layers[l].forward(h, caches[l]);
  }
  return tokens;
}

// The same without a cache: every step recomputes the whole sequence (quadratic work).
std::vector<int> generate_uncached(const std::vector<MultiHeadAttention>& layers,
                                   const Embedding& emb, std::vector<int> tokens, int new_tokens) {
  for (int i = 0; i < new_tokens; ++i) {
    Tensor h = emb.embed(tokens);
    for (const MultiHeadAttention& layer : layers) h = layer.forward(h);
    tokens.push_back(emb.greedy_next(h));
  }
  return tokens;
}

int main(int argc, char** argv) {
  // The layers: every block's attention of a GPT-2 checkpoint (argv[1], with its head count in
  // argv[2]: 12 for GPT-2 small), or three random ones.
  std::int64_t layer_count = 3, d = 64, heads = 4;
  simdattn::TensorMap checkpoint;
  if (argc > 2) {
    checkpoint = simdattn::load_safetensors(argv[1]);
    layer_count = simdattn::gpt2_num_layers(checkpoint);
    d = simdattn::gpt2_model_dim(checkpoint, 0);
    heads = std::stoll(argv[2]);
  }
  std::vector<MultiHeadAttention> layers;
  for (std::int64_t l = 0; l < layer_count; ++l) {
    layers.emplace_back(d, d, /*context_length=*/kPrompt + kNew, /*dropout=*/0.0, heads,
                        /*qkv_bias=*/true);
    if (argc > 2)
      layers.back().load_state_dict(simdattn::gpt2_attention_state_dict(checkpoint, l));
    else
      layers.back().init_random(static_cast<std::uint64_t>(l));
  }
  const Embedding emb(d);

  // Two sequences at once, one thread each: forward() is const, so the layers are shared; each
  // sequence has its own caches.
  const std::vector<std::vector<int>> prompts = {{1, 2, 3, 4, 5}, {9, 8, 7, 6, 5}};
  std::vector<std::vector<int>> outputs(prompts.size());
  std::vector<std::thread> threads;
  for (std::size_t s = 0; s < prompts.size(); ++s)
    threads.emplace_back([&, s] { outputs[s] = generate(layers, emb, prompts[s], kNew); });
  for (std::thread& t : threads) t.join();

  int status = 0;
  for (std::size_t s = 0; s < prompts.size(); ++s) {
    std::printf("sequence %zu:", s);
    for (int token : outputs[s]) std::printf(" %d", token);
    const bool same = outputs[s] == generate_uncached(layers, emb, prompts[s], kNew);
    std::printf("  (%s the uncached generation)\n", same ? "same as" : "DIFFERENT from");
    if (!same) status = 1;
  }
  return status;
}
// ---- END README generation example ------------------------------------------------------------
#undef main
}  // namespace readme_generation_example

namespace {

int run_example(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return readme_generation_example::example_main(static_cast<int>(args.size()), argv.data());
}

TEST(ReadmeGenerationExample, RandomLayersGenerateLikeTheUncachedLoop) {
  EXPECT_EQ(run_example({"generate"}), 0);
}

TEST(ReadmeGenerationExample, Gpt2CheckpointLayersGenerateLikeTheUncachedLoop) {
  EXPECT_EQ(run_example({"generate", std::string(SIMDATTN_TEST_DATA_DIR) +
                                         "/gpt2/gpt2_tiny_f32.safetensors", "4"}),
            0);
  EXPECT_EQ(run_example({"generate", std::string(SIMDATTN_TEST_DATA_DIR) +
                                         "/gpt2/gpt2_tiny_half.safetensors", "4"}),
            0);
}

}  // namespace
