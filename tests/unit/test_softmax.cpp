// tests/unit/test_softmax.cpp — simdattn::causal_softmax (the fused kernel behind the public
// API) against reference::causal_softmax, on every usable ISA and thread count: every column
// count from 1 to past twice the vector width at several row strides and misalignments, causal
// offsets, scales, logits up to 1e4, -inf rows, NaN and inf propagation, argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "dispatch/kernel_table.hpp"
#include "simdattn/error.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/softmax.hpp"
#include "support/compare.hpp"
#include "test_attention_fast_support.hpp"

namespace simdattn::test {
namespace {

::testing::Environment* const kCoverage = ::testing::AddGlobalTestEnvironment(new CoverageReport);

/// Builder for one softmax problem: rows x cols at row stride ld, starting `misalign` floats
/// into the buffer, scores uniform in [-range, range).
class SoftmaxTester {
 public:
  SoftmaxTester& rows(std::int64_t v) { rows_ = v; return *this; }
  SoftmaxTester& cols(std::int64_t v) { cols_ = v; return *this; }
  SoftmaxTester& ld(std::int64_t v) { ld_ = v; return *this; }
  SoftmaxTester& misalign(std::int64_t v) { misalign_ = v; return *this; }
  SoftmaxTester& scale(float v) { scale_ = v; return *this; }
  SoftmaxTester& offset(std::int64_t v) { offset_ = v; return *this; }
  SoftmaxTester& causal(bool v) { causal_ = v; return *this; }
  SoftmaxTester& range(float v) { range_ = v; return *this; }
  /// Added to every score: rows entirely below zero (where a stray 0 padding lane in the row
  /// maximum would make every exponential underflow).
  SoftmaxTester& shift(float v) { shift_ = v; return *this; }
  SoftmaxTester& seed(std::uint32_t v) { seed_ = v; return *this; }
  /// Sets score (row, col) to a special value after the random fill.
  SoftmaxTester& poke(std::int64_t r, std::int64_t c, float v) {
    pokes_.push_back({r, c, v});
    return *this;
  }

  /// Runs both and compares. Tolerance (why): the kernel computes scale*s - max with one
  /// rounding (FMA; two without it), so each exponent is off by <= 2 eps |scale s|max; exp adds
  /// <= 2 ulp; the sum of up to cols terms and the normalisation add (cols + 4) eps. Relative to
  /// each weight, plus an absolute FLT_MIN for results the kernel flushes below the normal range.
  ::testing::AssertionResult test() const {
    const std::int64_t ld = ld_ ? ld_ : cols_;
    std::vector<float> buf = random_values(static_cast<std::size_t>(misalign_ + rows_ * ld + 8),
                                           seed_, shift_ - range_, shift_ + range_);
    for (const auto& p : pokes_) buf[static_cast<std::size_t>(misalign_ + p.r * ld + p.c)] = p.v;
    std::vector<float> fast = buf, ref = buf;
    causal_softmax(fast.data() + misalign_, rows_, cols_, ld, scale_, offset_, causal_);
    reference::causal_softmax(ref.data() + misalign_, rows_, cols_, ld, scale_, offset_, causal_);
    double smax = 0.0;
    for (float x : buf)
      if (std::isfinite(x)) smax = std::max(smax, std::fabs(double(x) * scale_));
    const double rel = 2.0 * (2.0 * kEps * (1.0 + smax) + 2.0 * kEps + (cols_ + 4) * kEps);
    std::ostringstream what;
    what << "causal_softmax rows " << rows_ << " cols " << cols_ << " ld " << ld << " misalign "
         << misalign_ << " scale " << scale_ << " offset " << offset_ << " causal " << causal_
         << " isa " << isa_name(active_isa());
    for (std::size_t i = 0; i < buf.size(); ++i) {
      const std::int64_t pos = static_cast<std::int64_t>(i) - misalign_;
      const bool inside = pos >= 0 && pos < rows_ * ld && pos % ld < cols_;
      if (!inside) {
        if (std::memcmp(&fast[i], &buf[i], sizeof(float)) == 0) continue;
        return ::testing::AssertionFailure() << what.str() << ": wrote outside the matrix at " << pos;
      }
    }
    for (std::int64_t r = 0; r < rows_; ++r) {
      const std::size_t o = static_cast<std::size_t>(misalign_ + r * ld);
      std::vector<float> e(ref.begin() + o, ref.begin() + o + cols_);
      std::vector<float> a(fast.begin() + o, fast.begin() + o + cols_);
      for (std::int64_t c = 0; c < cols_; ++c) {
        const double ev = e[c], av = a[c];
        if (std::isnan(ev) && std::isnan(av)) continue;
        const double tol = rel * std::fabs(ev) + 2.0 * 1.17549435e-38;
        if (!(std::fabs(av - ev) <= tol))
          return ::testing::AssertionFailure()
                 << what.str() << ": row " << r << " col " << c << ": expected " << ev
                 << " actual " << av << " tol " << tol;
      }
    }
    return ::testing::AssertionSuccess();
  }

 private:
  struct Poke {
    std::int64_t r, c;
    float v;
  };
  std::int64_t rows_ = 1, cols_ = 1, ld_ = 0, misalign_ = 0, offset_ = 0;
  float scale_ = 1.0f, range_ = 4.0f, shift_ = 0.0f;
  bool causal_ = true;
  std::uint32_t seed_ = 1;
  std::vector<Poke> pokes_;
};

using FastSoftmax = IsaThreadsTest;

TEST_P(FastSoftmax, EveryWidthStrideAndMisalignment) {
  const std::int64_t w = 16;  // >= any vector width: sweep past 2x the widest
  std::uint32_t seed = 1;
  for (std::int64_t cols = 1; cols <= 2 * w + 3; ++cols)
    for (std::int64_t extra : {0, 3})
      for (std::int64_t mis : {0, 1, 5}) {
        const bool causal = (cols + mis) % 2 == 0;
        ASSERT_TRUE(SoftmaxTester().rows(5).cols(cols).ld(cols + extra).misalign(mis)
                        .causal(causal).offset(cols % 3).scale(0.37f).seed(seed++).test());
      }
}

TEST_P(FastSoftmax, OffsetsAndScales) {
  std::uint32_t seed = 100;
  for (std::int64_t offset : {0, 1, 7, 40, 200})
    for (float scale : {1.0f, 0.125f, 3.0f, -0.5f})
      ASSERT_TRUE(SoftmaxTester().rows(37).cols(41).ld(45).offset(offset).scale(scale)
                      .seed(seed++).test());
  ASSERT_TRUE(SoftmaxTester().rows(64).cols(300).causal(false).seed(7).test());
  ASSERT_TRUE(SoftmaxTester().rows(300).cols(300).seed(8).test());  // several row chunks
}

TEST_P(FastSoftmax, LargeLogitsNeitherOverflowNorLoseTheMaximum) {
  for (float range : {88.0f, 1e3f, 1e4f})
    ASSERT_TRUE(SoftmaxTester().rows(9).cols(33).range(range).seed(11).test());
  ASSERT_TRUE(SoftmaxTester().rows(9).cols(33).range(1e4f).scale(0.125f).causal(false).test());
}

TEST_P(FastSoftmax, InfinityAndNanRows) {
  // An all -inf row (every visible key -inf) is zeros; a -inf entry is weight 0; a NaN in the
  // visible part makes the row NaN while a NaN in the masked part is ignored; +inf gives NaN
  // (inf - inf), as the reference.
  SoftmaxTester t;
  t.rows(6).cols(19).ld(20).offset(2).seed(3);
  for (std::int64_t c = 0; c < 19; ++c) t.poke(0, c, -kInfF);
  t.poke(1, 0, -kInfF).poke(1, 1, -kInfF).poke(1, 2, -kInfF);  // row 1 sees 0..3
  t.poke(2, 1, -kInfF);
  t.poke(3, 2, kNanF);   // visible
  t.poke(4, 15, kNanF);  // masked (row 4 sees 0..6)
  t.poke(5, 3, kInfF);
  ASSERT_TRUE(t.test());
  ASSERT_TRUE(SoftmaxTester().rows(3).cols(40).causal(false).poke(1, 39, kNanF).poke(2, 17, kInfF).test());

  std::vector<float> row(20, -kInfF);
  causal_softmax(row.data(), 1, 20, 20, 1.0f, 0, false);
  for (float x : row) EXPECT_EQ(x, 0.0f);
}

TEST_P(FastSoftmax, RowsEntirelyBelowZeroAtEveryTailLength) {
  for (std::int64_t cols = 1; cols <= 40; ++cols)
    for (float shift : {-30.0f, -150.0f, -500.0f})
      ASSERT_TRUE(SoftmaxTester().rows(3).cols(cols).causal(false).shift(shift).range(2.0f)
                      .seed(static_cast<std::uint32_t>(cols)).test());
}

TEST_P(FastSoftmax, ANanBesideOnlyMinusInfinityIsStillANanRow) {
  // [NaN] and [NaN, -inf, ...]: the row maximum is -inf (no comparison takes a NaN), which
  // must not make it an "all -inf, nothing to attend to" row of zeros. Every width around the
  // vector lengths, the NaN in the full part and in the tail, causal and not. Expected values
  // are written here, not taken from the reference (which must agree too).
  for (std::int64_t cols : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33})
    for (std::int64_t at : {std::int64_t{0}, cols / 2, cols - 1})
      for (bool causal : {false, true}) {
        std::vector<float> row(static_cast<std::size_t>(cols), -kInfF);
        row[static_cast<std::size_t>(at)] = kNanF;
        std::vector<float> ref = row;
        // causal with offset cols - 1: the single row sees every column.
        causal_softmax(row.data(), 1, cols, cols, 1.0f, cols - 1, causal);
        reference::causal_softmax(ref.data(), 1, cols, cols, 1.0f, cols - 1, causal);
        for (std::int64_t c = 0; c < cols; ++c) {
          ASSERT_TRUE(std::isnan(row[static_cast<std::size_t>(c)]))
              << "cols " << cols << " NaN at " << at << " col " << c << " isa "
              << isa_name(active_isa());
          ASSERT_TRUE(std::isnan(ref[static_cast<std::size_t>(c)])) << "reference, cols " << cols;
        }
      }
}

TEST_P(FastSoftmax, RowsSumToOneAndMaskedAreZero) {
  std::vector<float> s = random_values(50 * 64, 5, -6.0f, 6.0f);
  causal_softmax(s.data(), 50, 64, 64, 0.5f, 3, true);
  for (std::int64_t i = 0; i < 50; ++i) {
    double sum = 0.0;
    for (std::int64_t j = 0; j < 64; ++j) {
      const float w = s[static_cast<std::size_t>(i * 64 + j)];
      if (j > 3 + i) {
        EXPECT_EQ(w, 0.0f) << i << "," << j;
      }
      sum += w;
    }
    EXPECT_NEAR(sum, 1.0, 70 * kEps) << "row " << i;
  }
}

TEST_P(FastSoftmax, SameBitsForAnyThreadCount) {
  std::vector<float> a = random_values(700 * 333, 9, -5.0f, 5.0f), b = a;
  set_num_threads(1);
  causal_softmax(a.data(), 700, 333, 333, 0.3f, 0, true);
  set_num_threads(0);
  causal_softmax(b.data(), 700, 333, 333, 0.3f, 0, true);
  EXPECT_TRUE(bitwise_equal(a, b, "causal_softmax 1 vs N threads"));
}

INSTANTIATE_TEST_SUITE_P(Isas, FastSoftmax, ::testing::ValuesIn(all_isa_threads()),
                         isa_threads_name);

TEST(FastSoftmaxApi, RejectsBadArguments) {
  std::vector<float> s(16, 0.0f);
  auto expect_invalid = [](auto&& f, const char* needle) {
    try {
      f();
      ADD_FAILURE() << "no throw for " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_invalid([&] { causal_softmax(nullptr, 1, 1, 1, 1.0f, 0); }, "scores");
  expect_invalid([&] { causal_softmax(s.data(), 0, 4, 4, 1.0f, 0); }, "rows (0)");
  expect_invalid([&] { causal_softmax(s.data(), 1, 0, 4, 1.0f, 0); }, "cols (0)");
  expect_invalid([&] { causal_softmax(s.data(), 2, 4, 3, 1.0f, 0); }, "ld (3)");
  expect_invalid([&] { causal_softmax(s.data(), 2, 4, 4, 1.0f, -1); }, "offset (-1)");
}

}  // namespace
}  // namespace simdattn::test
