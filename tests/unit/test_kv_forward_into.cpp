// tests/unit/test_kv_forward_into.cpp — forward_into through a KV cache reuses the caller's
// output storage (no allocation per decode step) and gives the same bits as forward().
#include <gtest/gtest.h>

#include <cmath>

#include "simdattn/simdattn.hpp"
#include "support/compare.hpp"

namespace {

TEST(KVCacheForwardInto, ReusesTheOutputStorageAndMatchesForward) {
  const std::int64_t d = 48, heads = 4, tokens = 9;
  simdattn::MultiHeadAttention mha(d, d, 16, 0.0, heads, true);
  mha.init_random(3);
  simdattn::KVCache a(mha, 2), b(mha, 2);
  simdattn::Tensor y;
  const float* storage = nullptr;
  for (std::int64_t t = 0; t < tokens; ++t) {
    simdattn::Tensor x({2, 1, d});
    for (std::int64_t i = 0; i < x.numel(); ++i)
      x[i] = static_cast<float>(std::cos(0.1 * static_cast<double>(i + t * 7)));
    mha.forward_into(x, a, y);
    if (t == 0) storage = y.data();
    EXPECT_EQ(y.data(), storage) << "step " << t << " reallocated the output";
    const simdattn::Tensor expected = mha.forward(x, b);
    EXPECT_TRUE(simdattn::test::bitwise_equal(expected.values(), y.values(),
                                              "step " + std::to_string(t)));
  }
  EXPECT_EQ(a.length(), tokens);
  simdattn::Tensor x({2, 1, d});
  EXPECT_THROW(mha.forward_into(x, a, x), simdattn::Error);  // y aliasing x is refused
  EXPECT_EQ(a.length(), tokens) << "a refused call must not touch the cache";
}

}  // namespace
