// tests/unit/test_reference_softmax.cpp — the oracle's softmaxes (simdattn/reference.hpp)
// checked against hand-computed values and against their defining properties: rows sum to 1,
// masked entries are exactly 0, the two causal forms of §3.5.1 agree, -inf rows give zeros,
// and the naive form overflows above ~88 where the stable one does not.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "simdattn/error.hpp"
#include "simdattn/reference.hpp"
#include "support/compare.hpp"

namespace {

namespace ref = simdattn::reference;
constexpr float kInf = std::numeric_limits<float>::infinity();

/// Deterministic scores in [-4, 4) (a 32-bit LCG; the values only need to be varied).
std::vector<float> make_scores(std::size_t n, std::uint32_t seed) {
  std::vector<float> v(n);
  for (float& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / 16777216.0f * 8.0f - 4.0f;
  }
  return v;
}

::testing::AssertionResult throws_invalid(const std::function<void()>& f,
                                          const std::string& needle) {
  try {
    f();
  } catch (const simdattn::Error& e) {
    if (e.code() != simdattn::ErrorCode::invalid_argument)
      return ::testing::AssertionFailure() << "wrong code for: " << e.what();
    if (std::string(e.what()).find(needle) == std::string::npos)
      return ::testing::AssertionFailure()
             << "message \"" << e.what() << "\" lacks \"" << needle << "\"";
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no simdattn::Error thrown (wanted \"" << needle << "\")";
}

TEST(ReferenceSoftmax, HandComputedValues) {
  // softmax([1, 2, 3]) = e^k / (e + e^2 + e^3); softmax([0, 0]) = 1/2 each.
  std::vector<float> x = {1, 2, 3, 0, 0, 99};  // second row has 2 columns, ld 3
  ref::softmax_stable_rows(x.data(), 1, 3, 3);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(x[0], std::exp(1.0) / z, 1e-7);
  EXPECT_NEAR(x[1], std::exp(2.0) / z, 1e-7);
  EXPECT_NEAR(x[2], std::exp(3.0) / z, 1e-7);
  EXPECT_NEAR(x[0], 0.0900306, 1e-7);  // the same, as printed by torch
  ref::softmax_naive_rows(x.data() + 3, 1, 2, 3);
  EXPECT_EQ(x[3], 0.5f);
  EXPECT_EQ(x[4], 0.5f);
  EXPECT_EQ(x[5], 99.0f) << "columns past cols must not be touched";
}

TEST(ReferenceSoftmax, RowsSumToOneAndPaddingIsUntouched) {
  for (std::int64_t cols : {1, 2, 7, 33}) {
    const std::int64_t rows = 5, ld = cols + 3;
    std::vector<float> stable = make_scores(static_cast<std::size_t>(rows * ld), 7u + cols);
    std::vector<float> naive = stable;
    const std::vector<float> original = stable;
    ref::softmax_stable_rows(stable.data(), rows, cols, ld);
    ref::softmax_naive_rows(naive.data(), rows, cols, ld);
    for (std::int64_t i = 0; i < rows; ++i) {
      double sum = 0.0;
      for (std::int64_t j = 0; j < cols; ++j) {
        const float w = stable[i * ld + j];
        EXPECT_GT(w, 0.0f);
        sum += w;
        // Scores in [-4, 4): the naive form is fine there and must agree.
        EXPECT_NEAR(naive[i * ld + j], w, 1e-6) << "row " << i << " col " << j;
      }
      EXPECT_NEAR(sum, 1.0, 1e-6) << "cols " << cols << " row " << i;
      for (std::int64_t j = cols; j < ld; ++j) EXPECT_EQ(stable[i * ld + j], original[i * ld + j]);
    }
  }
}

TEST(ReferenceSoftmax, NaiveOverflowsAbove88StableDoesNot) {
  // exp(100) overflows float: the book's softmax_naive returns nan for that entry.
  std::vector<float> naive = {1.0f, 100.0f, 2.0f};
  std::vector<float> stable = naive;
  ref::softmax_naive_rows(naive.data(), 1, 3, 3);
  ref::softmax_stable_rows(stable.data(), 1, 3, 3);
  EXPECT_TRUE(std::isnan(naive[1]) || std::isinf(naive[1])) << naive[1];
  for (float w : stable) EXPECT_TRUE(std::isfinite(w));
  EXPECT_NEAR(stable[1], 1.0, 1e-6);
  // Just below the threshold both still work.
  std::vector<float> edge = {88.0f, 87.0f};
  ref::softmax_naive_rows(edge.data(), 1, 2, 2);
  EXPECT_NEAR(edge[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
}

TEST(ReferenceSoftmax, AllNegativeInfinityRowGivesZerosNotNaN) {
  std::vector<float> x = {-kInf, -kInf, -kInf, 0.0f, -kInf, 1.0f};
  ref::softmax_stable_rows(x.data(), 2, 3, 3);
  for (int j = 0; j < 3; ++j) EXPECT_EQ(x[j], 0.0f);
  EXPECT_EQ(x[4], 0.0f) << "a -inf score among finite ones gets weight exactly 0";
  EXPECT_NEAR(x[3] + x[5], 1.0, 1e-7);

  std::vector<float> c = {-kInf, -kInf, -kInf, -kInf};
  ref::causal_softmax(c.data(), 2, 2, 2, 0.5f, 0);
  for (float w : c) EXPECT_EQ(w, 0.0f);
  std::vector<float> r = {-kInf, -kInf, -kInf, -kInf};
  ref::causal_softmax_renormalized(r.data(), 2, 2, 2, 0.5f, 0);
  for (float w : r) EXPECT_EQ(w, 0.0f);
}

TEST(ReferenceSoftmax, NaNMakesTheRowNaN) {
  std::vector<float> x = {0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f, 0.0f, 1.0f, 2.0f};
  ref::softmax_stable_rows(x.data(), 2, 3, 3);
  for (int j = 0; j < 3; ++j) EXPECT_TRUE(std::isnan(x[j]));
  for (int j = 3; j < 6; ++j) EXPECT_TRUE(std::isfinite(x[j])) << "other rows are unaffected";
}

TEST(ReferenceCausalSoftmax, HandComputedValues) {
  // scale 0.5: row 0 keeps only key 0 (weight 1); row 1 is softmax([1.5, 2.5]).
  std::vector<float> s = {1.0f, 2.0f, 3.0f, 5.0f};
  ref::causal_softmax(s.data(), 2, 2, 2, 0.5f, 0);
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(s[1], 0.0f);
  EXPECT_NEAR(s[2], 1.0 / (1.0 + std::exp(1.0)), 1e-7);
  EXPECT_NEAR(s[3], 1.0 / (1.0 + std::exp(-1.0)), 1e-7);
}

TEST(ReferenceCausalSoftmax, MaskedEntriesAreExactlyZeroAndRowsSumToOne) {
  for (std::int64_t offset : {0, 1, 3}) {
    const std::int64_t rows = 6, cols = 9, ld = 10;
    std::vector<float> s = make_scores(static_cast<std::size_t>(rows * ld), 11u + offset);
    ref::causal_softmax(s.data(), rows, cols, ld, 0.3f, offset);
    for (std::int64_t i = 0; i < rows; ++i) {
      double sum = 0.0;
      for (std::int64_t j = 0; j < cols; ++j) {
        const float w = s[i * ld + j];
        if (j > offset + i) {
          EXPECT_EQ(w, 0.0f) << "offset " << offset << " (" << i << ", " << j << ")";
        } else {
          EXPECT_GT(w, 0.0f);
        }
        sum += w;
      }
      EXPECT_NEAR(sum, 1.0, 1e-6);
    }
  }
}

TEST(ReferenceCausalSoftmax, MaskAndRenormalisedFormsAgree) {
  for (std::int64_t offset : {0, 2, 5}) {
    const std::int64_t rows = 7, cols = 12, ld = 12;
    std::vector<float> a = make_scores(static_cast<std::size_t>(rows * ld), 99u + offset);
    std::vector<float> b = a;
    ref::causal_softmax(a.data(), rows, cols, ld, 0.7f, offset);
    ref::causal_softmax_renormalized(b.data(), rows, cols, ld, 0.7f, offset);
    EXPECT_TRUE(simdattn::test::all_close(a, b, 1e-7, 1e-6, "offset " + std::to_string(offset)));
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = offset + i + 1; j < cols; ++j) EXPECT_EQ(b[i * ld + j], 0.0f);
  }
}

TEST(ReferenceCausalSoftmax, UnmaskedEqualsStableSoftmaxOfScaledScores) {
  std::vector<float> a = make_scores(4 * 5, 5u);
  std::vector<float> b = a;
  for (float& v : b) v *= 0.25f;  // exact: a power of two
  ref::causal_softmax(a.data(), 4, 5, 5, 0.25f, 0, /*causal=*/false);
  ref::softmax_stable_rows(b.data(), 4, 5, 5);
  EXPECT_TRUE(simdattn::test::bitwise_equal(a, b, "causal=false"));
}

TEST(ReferenceSoftmax, InvalidArgumentsThrow) {
  std::vector<float> x(16, 0.0f);
  float* p = x.data();
  EXPECT_TRUE(throws_invalid([] { ref::softmax_stable_rows(nullptr, 1, 1, 1); }, "scores"));
  EXPECT_TRUE(throws_invalid([&] { ref::softmax_naive_rows(p, 0, 1, 1); }, "rows (0)"));
  EXPECT_TRUE(throws_invalid([&] { ref::softmax_stable_rows(p, 1, 0, 1); }, "cols (0)"));
  EXPECT_TRUE(throws_invalid([&] { ref::softmax_stable_rows(p, 2, 4, 3); }, "ld (3)"));
  EXPECT_TRUE(throws_invalid([&] { ref::causal_softmax(p, 2, 2, 2, 1.0f, -1); }, "offset (-1)"));
  EXPECT_TRUE(throws_invalid([&] { ref::causal_softmax(p, -1, 2, 2, 1.0f, 0); }, "rows (-1)"));
  EXPECT_TRUE(
      throws_invalid([&] { ref::causal_softmax_renormalized(p, 2, 2, 1, 1.0f, 0); }, "ld (1)"));
  EXPECT_TRUE(throws_invalid([&] { ref::causal_softmax_renormalized(nullptr, 2, 2, 2, 1.0f, 0); },
                             "scores"));
}

}  // namespace
