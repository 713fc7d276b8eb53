// tests/unit/test_dropout.cpp — dropout on the attention weights (book §3.5.2) on the reference
// path: inverted dropout with the counter-based mask of src/common/dropout.hpp, indexed by
// (batch, head, query, key), deterministic per seed and absent in inference mode.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/dropout.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "support/compare.hpp"
#include "support/test_data.hpp"

namespace {

using simdattn::Backend;
using simdattn::ForwardOptions;
using simdattn::Tensor;


ForwardOptions options(bool train, std::uint64_t seed, Tensor* weights = nullptr) {
  ForwardOptions o;
  o.backend = Backend::reference;
  o.train = train;
  o.seed = seed;
  o.attn_weights = weights;
  return o;
}

constexpr std::int64_t kBatch = 2, kTokens = 48, kDin = 6, kDout = 4;

class CausalDropout : public ::testing::Test {
 protected:
  CausalDropout() : module_(kDin, kDout, kTokens, 0.5) { module_.init_random(2024); }
  Tensor weights(bool train, std::uint64_t seed, Tensor* y = nullptr) const {
    Tensor w;
    Tensor out = module_.forward(x_, options(train, seed, &w));
    if (y != nullptr) *y = out;
    return w;
  }
  simdattn::CausalAttention module_;
  Tensor x_ = simdattn::test::lcg_tensor({kBatch, kTokens, kDin}, 7);
};

TEST_F(CausalDropout, HalfTheWeightsDropAndKeptOnesDouble) {
  const Tensor plain = weights(false, 0);
  const Tensor dropped = weights(true, 42);
  const simdattn::detail::DropoutParams params{0.5, 42};
  std::int64_t n = 0, zeroed = 0;
  for (std::int64_t b = 0; b < kBatch; ++b)
    for (std::int64_t i = 0; i < kTokens; ++i)
      for (std::int64_t j = 0; j <= i; ++j) {  // above the diagonal both are 0 anyway
        const std::int64_t at = (b * kTokens + i) * kTokens + j;
        ++n;
        const bool keep = simdattn::detail::dropout_keep(params, b, 0, i, j);
        if (keep) {
          EXPECT_EQ(dropped[at], 2.0f * plain[at]) << "kept weight not scaled by 1/(1-p)";
        } else {
          EXPECT_EQ(dropped[at], 0.0f);
          ++zeroed;
        }
      }
  // Binomial(n, 1/2): mean n/2, sigma sqrt(n)/2; 5 sigma is never hit by a sound mask.
  const double sigma = std::sqrt(static_cast<double>(n)) / 2.0;
  EXPECT_LE(std::fabs(static_cast<double>(zeroed) - n / 2.0), 5.0 * sigma)
      << zeroed << " of " << n << " dropped";
}

TEST_F(CausalDropout, OutputIsDroppedWeightsTimesValues) {
  Tensor y;
  const Tensor w = weights(true, 5, &y);
  // V = x @ W_value.T, straight from the state_dict, then y = weights @ V.
  const Tensor wv = module_.state_dict().at("W_value.weight");
  for (std::int64_t b = 0; b < kBatch; ++b)
    for (std::int64_t i = 0; i < kTokens; ++i)
      for (std::int64_t c = 0; c < kDout; ++c) {
        double acc = 0.0;
        for (std::int64_t j = 0; j < kTokens; ++j) {
          double v = 0.0;
          for (std::int64_t k = 0; k < kDin; ++k)
            v += static_cast<double>(x_[(b * kTokens + j) * kDin + k]) * wv[c * kDin + k];
          acc += static_cast<double>(w[(b * kTokens + i) * kTokens + j]) * v;
        }
        EXPECT_NEAR(y[(b * kTokens + i) * kDout + c], acc, 1e-5);
      }
}

TEST_F(CausalDropout, SameSeedSameMaskOtherSeedOtherMask) {
  const Tensor a = weights(true, 11), b = weights(true, 11), c = weights(true, 12);
  EXPECT_TRUE(simdattn::test::bitwise_equal(a.values(), b.values(), "seed 11 twice"));
  std::int64_t differ = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) differ += (a[i] == 0.0f) != (c[i] == 0.0f);
  EXPECT_GT(differ, 100) << "seeds 11 and 12 give (nearly) the same mask";
}

TEST_F(CausalDropout, InferenceModeLeavesWeightsUnchanged) {
  const Tensor a = weights(false, 1), b = weights(false, 999);
  EXPECT_TRUE(simdattn::test::bitwise_equal(a.values(), b.values(), "seed ignored"));
  for (std::int64_t r = 0; r < kBatch * kTokens; ++r) {
    double sum = 0.0;
    for (std::int64_t j = 0; j < kTokens; ++j) sum += a[r * kTokens + j];
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
}

TEST(Dropout, ZeroProbabilityIsTheIdentity) {
  simdattn::CausalAttention ca(kDin, kDout, 8, 0.0);
  ca.init_random(1);
  const Tensor x = simdattn::test::lcg_tensor({8, kDin}, 3);
  Tensor w_train, w_infer;
  const Tensor y_train = ca.forward(x, options(true, 77, &w_train));
  const Tensor y_infer = ca.forward(x, options(false, 0, &w_infer));
  EXPECT_TRUE(simdattn::test::bitwise_equal(y_train.values(), y_infer.values(), "y"));
  EXPECT_TRUE(simdattn::test::bitwise_equal(w_train.values(), w_infer.values(), "weights"));
}

TEST(Dropout, SelfAttentionV1AndV2HaveNone) {
  simdattn::SelfAttentionV1 v1(kDin, kDout);
  simdattn::SelfAttentionV2 v2(kDin, kDout, true);
  v1.init_random(1);
  v2.init_random(2);
  const Tensor x = simdattn::test::lcg_tensor({2, 5, kDin}, 3);
  for (const simdattn::AttentionModule* m :
       std::vector<const simdattn::AttentionModule*>{&v1, &v2}) {
    EXPECT_EQ(m->dropout(), 0.0);
    EXPECT_TRUE(simdattn::test::bitwise_equal(m->forward(x, options(true, 9)).values(),
                                              m->forward(x, options(false, 0)).values(),
                                              m->name()));
  }
}

TEST(Dropout, WrapperHeadsUseTheirOwnHeadIndex) {
  // Two identical heads: head 0 must equal a CausalAttention (head index 0) with the same seed,
  // and head 1 draws another mask (head index 1), so its output differs.
  const std::int64_t tokens = 16;
  simdattn::CausalAttention ca(kDin, kDout, tokens, 0.5);
  ca.init_random(4);
  simdattn::TensorMap both;
  for (const auto& [k, t] : ca.state_dict()) {
    both["heads.0." + k] = t;
    both["heads.1." + k] = t;
  }
  simdattn::MultiHeadAttentionWrapper wrapper(kDin, kDout, tokens, 0.5, 2);
  wrapper.load_state_dict(both);
  const Tensor x = simdattn::test::lcg_tensor({2, tokens, kDin}, 5);
  const Tensor yc = ca.forward(x, options(true, 31));
  const Tensor yw = wrapper.forward(x, options(true, 31));
  std::int64_t head1_differs = 0;
  for (std::int64_t r = 0; r < 2 * tokens; ++r)
    for (std::int64_t c = 0; c < kDout; ++c) {
      EXPECT_EQ(yw[r * 2 * kDout + c], yc[r * kDout + c]) << "head 0, row " << r;
      head1_differs += yw[r * 2 * kDout + kDout + c] != yc[r * kDout + c];
    }
  EXPECT_GT(head1_differs, 0);
  // Without training both heads are the same function.
  const Tensor yi = wrapper.forward(x, options(false, 31));
  for (std::int64_t r = 0; r < 2 * tokens; ++r)
    for (std::int64_t c = 0; c < kDout; ++c)
      EXPECT_EQ(yi[r * 2 * kDout + c], yi[r * 2 * kDout + kDout + c]);
}

TEST(Dropout, MultiHeadAttentionDropsOnlyInTraining) {
  simdattn::MultiHeadAttention mha(kDin, 4, 10, 0.3, 2, true);
  mha.init_random(6);
  const Tensor x = simdattn::test::lcg_tensor({2, 10, kDin}, 8);
  const Tensor a = mha.forward(x, options(true, 1));
  const Tensor b = mha.forward(x, options(true, 1));
  const Tensor c = mha.forward(x, options(false, 1));
  EXPECT_TRUE(simdattn::test::bitwise_equal(a.values(), b.values(), "deterministic"));
  EXPECT_FALSE(simdattn::test::bitwise_equal(a.values(), c.values(), "train vs inference"));
}

void expect_bad_dropout(double p) {
  const auto check = [p](const auto& make) {
    try {
      make();
      ADD_FAILURE() << "dropout " << p << " accepted";
    } catch (const simdattn::Error& e) {
      EXPECT_EQ(e.code(), simdattn::ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("dropout"), std::string::npos) << e.what();
    }
  };
  check([p] { simdattn::CausalAttention(3, 2, 4, p); });
  check([p] { simdattn::MultiHeadAttentionWrapper(3, 2, 4, p, 2); });
  check([p] { simdattn::MultiHeadAttention(3, 2, 4, p, 2); });
}

TEST(Dropout, ProbabilityOutsideZeroOneThrows) {
  expect_bad_dropout(1.0);
  expect_bad_dropout(-0.1);
  expect_bad_dropout(1.5);
  expect_bad_dropout(std::numeric_limits<double>::quiet_NaN());
  expect_bad_dropout(std::numeric_limits<double>::infinity());
  EXPECT_NO_THROW(simdattn::CausalAttention(3, 2, 4, 0.999));
}

}  // namespace
