// tests/unit/test_c_api.cpp — the C API's storage-type calls (weights and KV caches in f16,
// bf16 and q8_0), LlamaAttention from a Hugging Face layer and the batched decode call, through
// simdattn.h, with the status codes a C program sees.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "simdattn/simdattn.h"

namespace {

const std::string kWeights = std::string(SIMDATTN_TEST_DATA_DIR) + "/consumer_mha_d8_h2.safetensors";
constexpr int kD = 8, kT = 5;

struct Mha {
  simdattn_mha* p = nullptr;
  Mha() { EXPECT_EQ(simdattn_mha_create(kWeights.c_str(), kD, kD, 16, 2, 1, &p), SIMDATTN_OK) << simdattn_last_error(); }
  ~Mha() { simdattn_mha_destroy(p); }
};

std::vector<float> decode(simdattn_mha* mha, const char* kv) {
  simdattn_kv_cache* cache = nullptr;
  EXPECT_EQ(simdattn_kv_cache_create_typed(mha, 1, 0, 0, kv, &cache), SIMDATTN_OK)
      << simdattn_last_error();
  std::vector<float> x(kT * kD), y(kT * kD);
  for (int i = 0; i < kT * kD; ++i) x[i] = static_cast<float>((i * 7) % 13 - 6) / 8.0f;
  for (int t = 0; t < kT; ++t)
    EXPECT_EQ(simdattn_mha_forward_cached(mha, cache, x.data() + t * kD, 1, 1, y.data() + t * kD),
              SIMDATTN_OK);
  simdattn_kv_cache_destroy(cache);
  return y;
}

TEST(CApi, WeightStorageTypesAndBytes) {
  Mha m;
  const int64_t f32 = simdattn_mha_weight_bytes(m.p);
  EXPECT_GT(f32, 0);
  const std::vector<float> y32 = decode(m.p, "f32");
  ASSERT_EQ(simdattn_mha_set_weight_storage(m.p, "f16"), SIMDATTN_OK) << simdattn_last_error();
  EXPECT_LT(simdattn_mha_weight_bytes(m.p), f32);
  const std::vector<float> y16 = decode(m.p, "f32");
  double worst = 0.0;
  for (int i = 0; i < kT * kD; ++i) worst = std::max(worst, std::fabs(double(y16[i]) - y32[i]));
  EXPECT_GT(worst, 0.0) << "f16 weights changed nothing";
  EXPECT_LT(worst, 1e-2) << "f16 weights are off by more than their rounding allows here";
  // q8_0 needs d_in a multiple of 32: unsupported, and the module keeps its f16 weights.
  EXPECT_EQ(simdattn_mha_set_weight_storage(m.p, "q8_0"), SIMDATTN_ERROR_UNSUPPORTED);
  EXPECT_NE(std::string(simdattn_last_error()).find("d_in (8)"), std::string::npos);
  EXPECT_EQ(decode(m.p, "f32"), y16);
  EXPECT_EQ(simdattn_mha_set_weight_storage(m.p, "q4_0"), SIMDATTN_ERROR_UNSUPPORTED);
  EXPECT_EQ(simdattn_mha_set_weight_storage(m.p, "q4_1"), SIMDATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(simdattn_mha_set_weight_storage(nullptr, "f16"), SIMDATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(simdattn_mha_weight_bytes(nullptr), 0);
}

TEST(CApi, TypedKvCaches) {
  Mha m;
  const std::vector<float> y32 = decode(m.p, "f32");
  const std::vector<float> y16 = decode(m.p, "f16");
  for (int i = 0; i < kT * kD; ++i) EXPECT_NEAR(y16[i], y32[i], 1e-2) << i;
  simdattn_kv_cache* c32 = nullptr;
  simdattn_kv_cache* c16 = nullptr;
  ASSERT_EQ(simdattn_kv_cache_create_typed(m.p, 2, 10, 0, "f32", &c32), SIMDATTN_OK);
  ASSERT_EQ(simdattn_kv_cache_create_typed(m.p, 2, 10, 0, "bf16", &c16), SIMDATTN_OK);
  EXPECT_EQ(simdattn_kv_cache_bytes(c32), 2 * simdattn_kv_cache_bytes(c16));
  simdattn_kv_cache_destroy(c32);
  simdattn_kv_cache_destroy(c16);
  simdattn_kv_cache* bad = reinterpret_cast<simdattn_kv_cache*>(1);
  EXPECT_EQ(simdattn_kv_cache_create_typed(m.p, 1, 0, 0, "q8_0", &bad), SIMDATTN_ERROR_UNSUPPORTED);
  EXPECT_EQ(bad, nullptr);
  bad = reinterpret_cast<simdattn_kv_cache*>(1);
  EXPECT_EQ(simdattn_kv_cache_create_typed(m.p, 1, 0, 0, "q4_0", &bad), SIMDATTN_ERROR_UNSUPPORTED);
  EXPECT_NE(std::string(simdattn_last_error()).find("weight type"), std::string::npos);
  EXPECT_EQ(bad, nullptr);
  EXPECT_EQ(simdattn_kv_cache_create_typed(m.p, 1, 0, 0, nullptr, &bad),
            SIMDATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(simdattn_kv_cache_bytes(nullptr), 0);
}

// A Hugging Face layer (tests/data/llama/llama_0: d_model 64, H 4, G 2, hd 16, q/k/v biases,
// layer 0) through simdattn_llama_create; two sequences decoded with one
// simdattn_mha_forward_batch per step give the bits of each decoded alone.
TEST(CApi, LlamaLayerAndBatchedDecode) {
  const std::string ckpt = std::string(SIMDATTN_TEST_DATA_DIR) + "/llama/llama_0.safetensors";
  simdattn_mha* m = nullptr;
  ASSERT_EQ(simdattn_llama_create(ckpt.c_str(), 0, 4, 2, 64, "halves", 10000.0, &m), SIMDATTN_OK)
      << simdattn_last_error();
  ASSERT_EQ(simdattn_mha_d_in(m), 64);
  ASSERT_EQ(simdattn_mha_d_out(m), 64);
  simdattn_kv_cache *a = nullptr, *b = nullptr, *a1 = nullptr, *b1 = nullptr;
  for (simdattn_kv_cache** c : {&a, &b, &a1, &b1})
    ASSERT_EQ(simdattn_kv_cache_create(m, 1, 0, 0, c), SIMDATTN_OK) << simdattn_last_error();
  std::vector<float> x(9 * 64), y(9 * 64), ya(6 * 64), yb(3 * 64);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  // Step 1: a ragged prefill (6 and 3 tokens); step 2: one token each.
  simdattn_kv_cache* both[] = {a, b};
  const int64_t prompt[] = {6, 3}, one[] = {1, 1};
  ASSERT_EQ(simdattn_mha_forward_batch(m, both, prompt, 2, x.data(), y.data()), SIMDATTN_OK)
      << simdattn_last_error();
  ASSERT_EQ(simdattn_mha_forward_cached(m, a1, x.data(), 1, 6, ya.data()), SIMDATTN_OK);
  ASSERT_EQ(simdattn_mha_forward_cached(m, b1, x.data() + 6 * 64, 1, 3, yb.data()), SIMDATTN_OK);
  EXPECT_EQ(std::memcmp(y.data(), ya.data(), ya.size() * 4), 0);
  EXPECT_EQ(std::memcmp(y.data() + 6 * 64, yb.data(), yb.size() * 4), 0);
  ASSERT_EQ(simdattn_mha_forward_batch(m, both, one, 2, x.data(), y.data()), SIMDATTN_OK);
  ASSERT_EQ(simdattn_mha_forward_cached(m, a1, x.data(), 1, 1, ya.data()), SIMDATTN_OK);
  ASSERT_EQ(simdattn_mha_forward_cached(m, b1, x.data() + 64, 1, 1, yb.data()), SIMDATTN_OK);
  EXPECT_EQ(std::memcmp(y.data(), ya.data(), 64 * 4), 0);
  EXPECT_EQ(std::memcmp(y.data() + 64, yb.data(), 64 * 4), 0);
  EXPECT_EQ(simdattn_kv_cache_length(a), 7);
  // Errors: the same cache twice, a null cache, a layer that is not there, G not dividing H.
  simdattn_kv_cache* twice[] = {a, a};
  EXPECT_EQ(simdattn_mha_forward_batch(m, twice, one, 2, x.data(), y.data()),
            SIMDATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(simdattn_kv_cache_length(a), 7);  // unchanged
  simdattn_kv_cache* none[] = {nullptr};
  EXPECT_EQ(simdattn_mha_forward_batch(m, none, one, 1, x.data(), y.data()),
            SIMDATTN_ERROR_INVALID_ARGUMENT);
  simdattn_mha* bad = nullptr;
  EXPECT_EQ(simdattn_llama_create(ckpt.c_str(), 9, 4, 2, 64, "halves", 10000.0, &bad),
            SIMDATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(simdattn_last_error()).find("model.layers.9.self_attn."), std::string::npos);
  EXPECT_EQ(simdattn_llama_create(ckpt.c_str(), 0, 4, 3, 64, "halves", 10000.0, &bad),
            SIMDATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(simdattn_llama_create(ckpt.c_str(), 0, 4, 2, 64, "spiral", 10000.0, &bad),
            SIMDATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(bad, nullptr);
  for (simdattn_kv_cache* c : {a, b, a1, b1}) simdattn_kv_cache_destroy(c);
  simdattn_mha_destroy(m);
}

}  // namespace
