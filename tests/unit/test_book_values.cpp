// tests/unit/test_book_values.cpp — the numbers chapter 3 prints for its six-token example
// ("Your journey starts with one step"), reproduced by the reference path to 4 decimals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/reference.hpp"
#include "support/compare.hpp"

namespace {

using simdattn::Backend;
using simdattn::ForwardOptions;
using simdattn::SoftmaxKind;
using simdattn::Tensor;

const std::vector<float> kInputs = {0.43f, 0.15f, 0.89f,   // Your
                                    0.55f, 0.87f, 0.66f,   // journey
                                    0.57f, 0.85f, 0.64f,   // starts
                                    0.22f, 0.58f, 0.33f,   // with
                                    0.77f, 0.25f, 0.10f,   // one
                                    0.05f, 0.80f, 0.55f};  // step

// §3.3.1, attention scores of query 2 ("journey").
const std::vector<float> kScoresQuery2 = {0.9544f, 1.4950f, 1.4754f, 0.8434f, 0.7070f, 1.0865f};
// §3.3.2, attn_weights = torch.softmax(attn_scores, dim=-1); row 2 is §3.3.1's weights.
const std::vector<float> kWeights = {0.2098f, 0.2006f, 0.1981f, 0.1242f, 0.1220f, 0.1452f,  //
                                     0.1385f, 0.2379f, 0.2333f, 0.1240f, 0.1082f, 0.1581f,  //
                                     0.1390f, 0.2369f, 0.2326f, 0.1242f, 0.1108f, 0.1565f,  //
                                     0.1435f, 0.2074f, 0.2046f, 0.1462f, 0.1263f, 0.1720f,  //
                                     0.1526f, 0.1958f, 0.1975f, 0.1367f, 0.1879f, 0.1295f,  //
                                     0.1385f, 0.2184f, 0.2128f, 0.1420f, 0.0988f, 0.1896f};
// §3.3.2, all_context_vecs = attn_weights @ inputs; row 2 is §3.3.1's context vector z(2).
const std::vector<float> kContext = {0.4421f, 0.5931f, 0.5790f,  //
                                     0.4419f, 0.6515f, 0.5683f,  //
                                     0.4431f, 0.6496f, 0.5671f,  //
                                     0.4304f, 0.6298f, 0.5510f,  //
                                     0.4671f, 0.5910f, 0.5266f,  //
                                     0.4177f, 0.6503f, 0.5645f};

// The book rounds to 4 decimals: a printed value is within 0.5e-4 of the true one.
constexpr double kPrinted = 0.5e-4 + 1e-6;

std::vector<float> row(const std::vector<float>& m, std::int64_t r, std::int64_t cols) {
  return {m.begin() + r * cols, m.begin() + (r + 1) * cols};
}

class BookValues : public ::testing::TestWithParam<SoftmaxKind> {};

TEST_P(BookValues, SimpleAttentionReproducesSection33) {
  const Tensor x({6, 3}, kInputs);
  Tensor weights;
  ForwardOptions options;
  options.backend = Backend::reference;
  options.attn_weights = &weights;
  const Tensor context = simdattn::simple_attention(x, options, GetParam());

  ASSERT_EQ(context.shape(), (std::vector<std::int64_t>{6, 3}));
  ASSERT_EQ(weights.shape(), (std::vector<std::int64_t>{6, 6}));
  EXPECT_TRUE(simdattn::test::all_close(row(kWeights, 1, 6), row(weights.values(), 1, 6), kPrinted,
                                        0, "attention weights of query 2"));
  EXPECT_TRUE(simdattn::test::all_close(row(kContext, 1, 3), row(context.values(), 1, 3), kPrinted,
                                        0, "context vector z(2)"));
  EXPECT_TRUE(simdattn::test::all_close(kWeights, weights.values(), kPrinted, 0, "attn_weights"));
  EXPECT_TRUE(simdattn::test::all_close(kContext, context.values(), kPrinted, 0, "context"));

  // The scores are not an output, but softmax fixes them up to a constant per row:
  // log w_j - log w_0 = s_j - s_0. Tie them to the printed scores of query 2.
  for (int j = 1; j < 6; ++j) {
    const double from_weights = std::log(weights[6 + j]) - std::log(weights[6 + 0]);
    EXPECT_NEAR(from_weights, kScoresQuery2[j] - kScoresQuery2[0], 2 * kPrinted) << "key " << j;
  }
}

INSTANTIATE_TEST_SUITE_P(BothSoftmaxes, BookValues,
                         ::testing::Values(SoftmaxKind::naive, SoftmaxKind::stable),
                         [](const auto& info) {
                           return info.param == SoftmaxKind::naive ? "naive" : "stable";
                         });

// §3.3.1 normalises the scores of query 2 three ways; the two softmaxes must give its weights.
TEST(BookValues, ReferenceSoftmaxesOfQuery2Scores) {
  std::vector<float> naive = kScoresQuery2, stable = kScoresQuery2;
  simdattn::reference::softmax_naive_rows(naive.data(), 1, 6, 6);
  simdattn::reference::softmax_stable_rows(stable.data(), 1, 6, 6);
  // The printed scores are themselves rounded, which moves the weights by at most ~2.5e-5 more.
  EXPECT_TRUE(simdattn::test::all_close(row(kWeights, 1, 6), naive, kPrinted + 3e-5, 0, "naive"));
  EXPECT_TRUE(simdattn::test::all_close(row(kWeights, 1, 6), stable, kPrinted + 3e-5, 0, "stable"));
}

TEST(BookValues, BatchOfTwoCopiesGivesTheSameRows) {
  std::vector<float> two = kInputs;
  two.insert(two.end(), kInputs.begin(), kInputs.end());
  ForwardOptions options;
  options.backend = Backend::reference;
  const Tensor context = simdattn::simple_attention(Tensor({2, 6, 3}, two), options);
  ASSERT_EQ(context.shape(), (std::vector<std::int64_t>{2, 6, 3}));
  const std::vector<float> first(context.values().begin(), context.values().begin() + 18);
  const std::vector<float> second(context.values().begin() + 18, context.values().end());
  EXPECT_TRUE(simdattn::test::all_close(kContext, first, kPrinted, 0, "batch 0"));
  EXPECT_TRUE(simdattn::test::bitwise_equal(first, second, "batch 0 vs batch 1"));
}

}  // namespace
