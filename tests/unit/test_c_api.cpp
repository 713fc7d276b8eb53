// tests/unit/test_c_api.cpp — the C API's storage-type calls: weights and KV caches in f16,
// bf16 and q8_0 through simdattn.h, with the status codes a C program sees.
#include <gtest/gtest.h>

#include <cmath>
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
  EXPECT_EQ(simdattn_kv_cache_create_typed(m.p, 1, 0, 0, nullptr, &bad),
            SIMDATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(simdattn_kv_cache_bytes(nullptr), 0);
}

}  // namespace
