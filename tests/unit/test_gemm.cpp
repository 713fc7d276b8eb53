// tests/unit/test_gemm.cpp — SGEMM: every usable ISA and the generic odd-tile kernels against
// reference::sgemm (shapes below, at and above the tiles, both transpositions, the fused
// epilogue, strides, misalignment, prepacked B and the small-M path), bitwise determinism
// across thread counts and task splits, and argument validation.
#include <gtest/gtest.h>
#include <oneapi/tbb/info.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dispatch/kernel_table.hpp"
#include "drivers/gemm.hpp"
#include "kernels/gemm_generic.hpp"
#include "simdattn/error.hpp"
#include "simdattn/gemm.hpp"
#include "simdattn/runtime.hpp"
#include "support/compare.hpp"
#include "support/gemm_tester.hpp"
#include "support/required_isas.hpp"

namespace simdattn {
namespace {

using test::GemmTester;

// Sizes from the issue: all of 1..33, then around 48, 64, 128, 256 and 1000.
std::vector<std::int64_t> interesting_sizes() {
  std::vector<std::int64_t> s;
  for (std::int64_t i = 1; i <= 33; ++i) s.push_back(i);
  for (std::int64_t i : {47, 48, 49, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000}) s.push_back(i);
  return s;
}

constexpr Isa kAllIsas[] = {Isa::sse2, Isa::avx2, Isa::avx512, Isa::neon};

// Prints at exit which ISAs the SIMD tests covered and which were skipped.
class IsaCoverage : public ::testing::Environment {
 public:
  static std::set<std::string>& ran() {
    static std::set<std::string> s;
    return s;
  }
  void TearDown() override {
    std::string ran_list, skipped;
    for (Isa isa : kAllIsas)
      (ran().count(isa_name(isa)) ? ran_list : skipped) += std::string(isa_name(isa)) + " ";
    std::printf("[ COVERAGE ] gemm ISAs tested: %s| not usable here (skipped): %s\n",
                ran_list.c_str(), skipped.empty() ? "none " : skipped.c_str());
  }
};
const auto* const kCoverage = ::testing::AddGlobalTestEnvironment(new IsaCoverage);

// Runs each test once per ISA with that ISA forced; ISAs not usable here are skipped with a
// message. Restores the ISA and thread count afterwards.
class GemmIsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    SIMDATTN_SKIP_UNLESS_USABLE(GetParam());
    before_ = active_isa();
    set_isa(GetParam());
    IsaCoverage::ran().insert(isa_name(GetParam()));
  }
  void TearDown() override {
    if (isa_usable(GetParam())) set_isa(before_);
    set_num_threads(0);
  }
  Isa before_ = Isa::sse2;
};

std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) {
  return isa_name(info.param);
}

// --- Shapes -------------------------------------------------------------------------------

// Each dimension swept over all interesting sizes with the others fixed (odd and tile-crossing),
// for both transpositions; epilogue settings rotate so every combination appears.
TEST_P(GemmIsaTest, SgemmSweepsEachDimension) {
  const auto sizes = interesting_sizes();
  const float alphas[] = {1.0f, -0.75f, 2.0f};
  const float betas[] = {0.0f, 1.0f, -0.5f};
  int v = 0;
  for (Transpose t : {Transpose::no, Transpose::yes}) {
    for (std::int64_t s : sizes) {
      for (int dim = 0; dim < 3; ++dim, ++v) {
        GemmTester g;
        g.m(dim == 0 ? s : 13).n(dim == 1 ? s : 37).k(dim == 2 ? s : 29).trans(t);
        g.alpha(alphas[v % 3]).beta(betas[(v / 3) % 3]).bias(v % 2 == 0).seed(v);
        ASSERT_TRUE(g.test_sgemm());
      }
    }
  }
}

// Random triples from the interesting sizes (fixed seed), capped in volume so the suite stays
// fast; includes 1000 in each position at least once.
TEST_P(GemmIsaTest, SgemmRandomShapes) {
  const auto sizes = interesting_sizes();
  std::mt19937 rng(1234);
  std::uniform_int_distribution<std::size_t> pick(0, sizes.size() - 1);
  int done = 0;
  for (int attempt = 0; done < 40 && attempt < 1000; ++attempt) {
    const std::int64_t m = sizes[pick(rng)], n = sizes[pick(rng)], k = sizes[pick(rng)];
    if (m * n * k > 4'000'000) continue;
    GemmTester g;
    g.m(m).n(n).k(k).trans(done % 2 ? Transpose::yes : Transpose::no);
    g.alpha(done % 3 == 0 ? 1.0f : 0.5f).beta(done % 4 == 0 ? 0.0f : 1.5f).bias(done % 5 < 2);
    ASSERT_TRUE(g.seed(done).test_sgemm());
    ++done;
  }
  EXPECT_EQ(done, 40);
  ASSERT_TRUE(GemmTester().m(1000).n(33).k(65).bias(true).test_sgemm());
  ASSERT_TRUE(GemmTester().m(17).n(1000).k(129).trans(Transpose::yes).beta(1).test_sgemm());
  ASSERT_TRUE(GemmTester().m(31).n(47).k(1000).beta(-1).test_sgemm());
  // Several kc slices and row blocks of this machine's blocking (read from the caches at run
  // time), with odd m and n edges.
  const detail::GemmMicrokernel& uk = detail::kernels_for(GetParam()).gemm;
  ASSERT_TRUE(GemmTester().m(129).n(257).k(uk.kc + uk.kc / 3 + 1).alpha(-1.25f).beta(0.5f)
                  .bias(true).test_sgemm());
  ASSERT_TRUE(GemmTester().m(uk.mc + uk.mr + 1).n(65).k(2 * uk.kc + 3).beta(1).test_sgemm());
}

// --- Epilogue -----------------------------------------------------------------------------

TEST_P(GemmIsaTest, EpilogueCombinations) {
  // beta == 0 starts C as NaN (the tester does that): the NaN must not reach the result.
  for (float alpha : {1.0f, -0.5f, 3.0f, 0.0f})
    for (float beta : {0.0f, 1.0f, -1.5f})
      for (bool bias : {false, true})
        for (std::int64_t m : {1, 7, 13})  // small-M and blocked paths
          ASSERT_TRUE(GemmTester().m(m).n(37).k(300).alpha(alpha).beta(beta).bias(bias).test_packed());
  for (float alpha : {1.0f, -0.5f})
    for (float beta : {0.0f, 2.0f})
      for (bool bias : {false, true})
        ASSERT_TRUE(GemmTester().m(50).n(33).k(65).alpha(alpha).beta(beta).bias(bias).test_sgemm());
}

// --- Strides and alignment ----------------------------------------------------------------

TEST_P(GemmIsaTest, LeadingDimensionsLargerThanWidthAndMisalignedPointers) {
  for (std::int64_t mis : {0, 1, 3})
    for (Transpose t : {Transpose::no, Transpose::yes})
      for (std::int64_t m : {1, 5, 9, 30}) {
        GemmTester g;
        g.m(m).n(35).k(41).trans(t).misalign(mis).beta(m % 2 ? 0.0f : 1.0f).bias(true);
        g.lda(41 + 3).ldb((t == Transpose::no ? 35 : 41) + 5).ldc(35 + 7);
        ASSERT_TRUE(g.test_sgemm());
        ASSERT_TRUE(g.test_packed());
      }
}

// --- Prepacked B and the small-M (decode) path --------------------------------------------

TEST_P(GemmIsaTest, PackedMatrixSmallAndLargeM) {
  for (std::int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 33})
    for (std::int64_t n : {1, 15, 16, 17, 33, 100, 257})
      for (std::int64_t k : {1, 7, 64, 257}) {
        GemmTester g;
        g.m(m).n(n).k(k).trans((m + n) % 2 ? Transpose::yes : Transpose::no);
        g.beta(k % 2 ? 0.0f : 0.5f).bias(n % 2 == 1).seed(static_cast<std::uint32_t>(m * n + k));
        ASSERT_TRUE(g.test_packed());
      }
  // The decode shape itself.
  ASSERT_TRUE(GemmTester().m(1).n(2304).k(768).trans(Transpose::yes).bias(true).test_packed());
}

TEST_P(GemmIsaTest, PackedMatrixStaysValidWhenTheIsaChanges) {
  // Packed under this ISA, multiplied under every usable one: the layout is ISA-independent.
  for (std::int64_t m : {1, 8, 29})
    ASSERT_TRUE(GemmTester().m(m).n(45).k(70).bias(true).test_packed_across(usable_isas()));
}

// --- Every instantiated microkernel of the ISA through the driver -------------------------

TEST_P(GemmIsaTest, EveryMicrokernelVariantWithSmallBlocking) {
  for (detail::GemmMicrokernel uk : detail::gemm_ukernel_variants(GetParam())) {
    SCOPED_TRACE(uk.name);
    // Default blocking, then blocks of a couple of tiles and a short kc so several kc slices,
    // several row blocks and several column blocks all occur on small problems.
    ASSERT_TRUE(GemmTester().m(67).n(99).k(77).beta(1).bias(true).test_blocked(
        uk, detail::kGemmPanelWidth, detail::kGemmMaxPanelsPerTile));
    uk.mc = 2 * uk.mr;
    uk.kc = 9;
    uk.nc = 2 * uk.nr;
    for (Transpose t : {Transpose::no, Transpose::yes})
      for (std::int64_t m : {1, uk.mr - 1 > 0 ? uk.mr - 1 : 1, uk.mr + 1, 3 * uk.mr + 2})
        for (std::int64_t n : {1, 16, 17, 33, 65}) {
          GemmTester g;
          g.m(m).n(n).k(31).trans(t).beta(n % 2 ? 0.0f : -1.0f).bias(true).misalign(1);
          ASSERT_TRUE(g.test_blocked(uk, detail::kGemmPanelWidth, detail::kGemmMaxPanelsPerTile));
        }
  }
  const detail::GemmSmallMKernel& sk = detail::kernels_for(GetParam()).gemm_small_m;
  for (std::int64_t m = 1; m <= sk.max_m; ++m)
    for (std::int64_t ppt : {0, 1, 3})
      ASSERT_TRUE(GemmTester().m(m).n(150).k(33).beta(1).bias(true).test_small_m(
          sk, detail::kGemmPanelWidth, ppt));
}

// --- Determinism across thread counts and task splits -------------------------------------

TEST_P(GemmIsaTest, BitwiseIdenticalForAnyThreadCount) {
  const int hw = tbb::info::default_concurrency();
  if (hw < 4)
    std::printf("[   INFO   ] %d hardware thread(s): requests for 2 and 4 threads run on %d and %d\n",
                hw, std::min(hw, 2), std::min(hw, 4));
  const std::int64_t above_small_m = detail::kernels_for(GetParam()).gemm_small_m.max_m + 1;
  for (const GemmTester& g :
       {GemmTester().m(200).n(300).k(2100).beta(1).bias(true),  // blocked, several kc slices
        GemmTester().m(3).n(1000).k(200).bias(true),             // small-M
        GemmTester().m(above_small_m).n(65).k(33).trans(Transpose::yes)}) {  // just above it
    for (bool packed : {false, true}) {
      set_num_threads(1);
      const std::vector<float> one = g.output_sgemm(packed);
      for (int threads : {2, 4}) {
        set_num_threads(threads);
        EXPECT_TRUE(test::bitwise_equal(one, g.output_sgemm(packed),
                                        g.describe() + " threads " + std::to_string(threads)));
      }
    }
  }
  // Explicit task splits through the driver: every split gives the automatic grid's bits.
  set_num_threads(0);
  const detail::KernelTable& t = detail::kernels_for(GetParam());
  const GemmTester g = GemmTester().m(100).n(150).k(300).beta(0.5f).bias(true);
  const std::vector<float> automatic = g.output_blocked(t.gemm, {});
  for (detail::GemmSplit split : {detail::GemmSplit{1, 1}, detail::GemmSplit{t.gemm.mr, 1000},
                                  detail::GemmSplit{1000, t.gemm.nr}, detail::GemmSplit{50, 70}}) {
    EXPECT_TRUE(test::bitwise_equal(automatic, g.output_blocked(t.gemm, split),
                                    "split " + std::to_string(split.m_block) + "x" +
                                        std::to_string(split.n_block)));
  }
  const GemmTester s = GemmTester().m(5).n(300).k(100).bias(true);
  const std::vector<float> whole = s.output_small_m(t.gemm_small_m, 1000);
  for (std::int64_t ppt : {1, 2, 5})
    EXPECT_TRUE(test::bitwise_equal(whole, s.output_small_m(t.gemm_small_m, ppt),
                                    "small-M panels/task " + std::to_string(ppt)));
}

// Column groups (the attention's head-major QKV output): the same bits as plain row-major C,
// on both paths, with beta and bias, and nothing written between the groups.
TEST_P(GemmIsaTest, ColumnGroupsGiveTheRowMajorBits) {
  const detail::KernelTable& t = detail::kernels_for(GetParam());
  for (const std::int64_t group : {std::int64_t{t.gemm.nr}, std::int64_t{4 * t.gemm.nr}})
    for (const std::int64_t m : {std::int64_t{1}, std::int64_t{5}, std::int64_t{t.gemm.mr + 1}, std::int64_t{97}})
      for (const float beta : {0.0f, 0.5f}) {
        const GemmTester g = GemmTester().m(m).n(3 * group).k(70).beta(beta).bias(true);
        const std::vector<float> plain = m <= t.gemm_small_m.max_m
                                             ? g.output_small_m(t.gemm_small_m, 0)
                                             : g.output_blocked(t.gemm, {});
        EXPECT_TRUE(test::bitwise_equal(plain, g.output_grouped(t, group, 3),
                                        g.describe() + " group " + std::to_string(group)));
      }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, GemmIsaTest, ::testing::ValuesIn(kAllIsas), isa_param_name);

// --- Generic odd-tile kernels: packing and edges apart from SIMD --------------------------

template <int MR, int NR, int PW>
detail::GemmMicrokernel generic_tile(std::int64_t mc, std::int64_t kc, std::int64_t nc) {
  static const std::string name =
      "f32_gemm_" + std::to_string(MR) + "x" + std::to_string(NR) + "__generic_pw" + std::to_string(PW);
  return {name.c_str(), &detail::gemm_ukernel_generic<MR, NR, PW>, MR, NR, mc, kc, nc};
}

template <int MR, int NR, int PW>
void run_generic_tile() {
  // Blocking of a few tiles and a short kc, so blocks, slices and edges all occur; then one
  // large blocking (single block, single slice).
  const detail::GemmMicrokernel blockings[] = {generic_tile<MR, NR, PW>(2 * MR, 5, 3 * NR),
                                               generic_tile<MR, NR, PW>(4 * MR, 16, 5 * NR),
                                               generic_tile<MR, NR, PW>(64 * MR, 512, 64 * NR)};
  const std::int64_t sizes[] = {1, 2, MR, MR + 1, 2 * MR + 1, NR, NR + 1, 3 * NR - 1, 33, 48, 65};
  int v = 0;
  for (const auto& uk : blockings)
    for (std::int64_t m : sizes)
      for (std::int64_t n : sizes) {
        ++v;
        GemmTester g;
        g.m(m).n(n).k(v % 3 == 0 ? 1 : (v % 3 == 1 ? 17 : 40));
        g.trans(v % 2 ? Transpose::yes : Transpose::no).beta(v % 4 == 0 ? 0.0f : 1.25f);
        g.bias(v % 3 != 0).alpha(v % 5 == 0 ? -2.0f : 1.0f).misalign(v % 2).seed(v);
        if (v % 7 == 0) g.lda(g.lda_eff() + 2).ldc(n + 3);
        ASSERT_TRUE(g.test_blocked(uk, PW, NR / PW));
        ASSERT_TRUE(g.test_blocked(uk, PW, NR / PW, detail::GemmSplit{MR, NR}));
      }
}

TEST(GemmGeneric, OddTilesThroughTheBlockedDriver) {
  run_generic_tile<3, 5, 5>();
  run_generic_tile<1, 1, 1>();
  run_generic_tile<4, 7, 7>();
  run_generic_tile<2, 6, 3>();  // two panels per tile, like the AVX-512 14x32 kernel
  run_generic_tile<5, 8, 4>();
}

TEST(GemmGeneric, SmallMWithOddPanelWidth) {
  const detail::GemmSmallMKernel k5{"f32_gemm_smallm__generic_pw5",
                                    &detail::gemm_small_m_generic<8, 5>, 8};
  const detail::GemmSmallMKernel k16{"f32_gemm_smallm__generic_pw16",
                                     &detail::gemm_small_m_generic<8, 16>, 8};
  for (std::int64_t m = 1; m <= 8; ++m)
    for (std::int64_t n : {1, 4, 5, 6, 11, 33})
      for (std::int64_t ppt : {0, 1, 2}) {
        GemmTester g;
        g.m(m).n(n).k(m + n).beta(ppt == 1 ? 0.0f : 1.0f).bias(n % 2 == 1).misalign(m % 2);
        g.trans(n % 3 ? Transpose::no : Transpose::yes);
        ASSERT_TRUE(g.test_small_m(k5, 5, ppt));
        ASSERT_TRUE(g.test_small_m(k16, 16, ppt));
      }
}

// --- Packing layout -----------------------------------------------------------------------

TEST(GemmPacking, PanelsAreFullDepthZeroPaddedAndTransposeAgnostic) {
  const std::int64_t k = 5, n = 19, pw = 16;
  std::vector<float> b(k * n), bt(n * k);
  for (std::int64_t kk = 0; kk < k; ++kk)
    for (std::int64_t j = 0; j < n; ++j) b[kk * n + j] = bt[j * k + kk] = float(kk * 100 + j);
  detail::AlignedFloats s1, s2;
  const detail::PackedB p1 = detail::pack_b(b.data(), n, Transpose::no, k, n, pw, 2, s1);
  const detail::PackedB p2 = detail::pack_b(bt.data(), k, Transpose::yes, k, n, pw, 2, s2);
  ASSERT_EQ(p1.panels, 3);  // ceil(19 / 16) + 1 padding panel for two-panel tiles
  ASSERT_EQ(p1.panel_stride, k * pw);
  for (std::int64_t p = 0; p < p1.panels; ++p)
    for (std::int64_t kk = 0; kk < k; ++kk)
      for (std::int64_t j = 0; j < pw; ++j) {
        const std::int64_t col = p * pw + j;
        const float want = col < n ? float(kk * 100 + col) : 0.0f;
        const std::int64_t at = p * p1.panel_stride + kk * pw + j;
        ASSERT_EQ(p1.data[at], want) << "panel " << p << " depth " << kk << " lane " << j;
        ASSERT_EQ(p2.data[at], want) << "transposed, panel " << p;
      }
  const detail::PackedB view = p1.columns(16, 3);
  EXPECT_EQ(view.data, p1.data + p1.panel_stride);
  EXPECT_EQ(view.panels, 2);
}

// --- Validation ---------------------------------------------------------------------------

template <class Fn>
void expect_invalid(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' should mention '" << needle << "'";
  }
}

TEST(GemmValidation, SgemmRejectsBadArgumentsBeforeDispatch) {
  std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 0.0f);
  const auto call = [&](std::int64_t m, std::int64_t n, std::int64_t k, const float* pa,
                        std::int64_t lda, const float* pb, std::int64_t ldb, float* pc,
                        std::int64_t ldc, Transpose t = Transpose::no) {
    return [=] { sgemm(t, m, n, k, 1.0f, pa, lda, pb, ldb, 0.0f, pc, ldc); };
  };
  expect_invalid(call(0, 4, 4, a.data(), 4, b.data(), 4, c.data(), 4), "m (0)");
  expect_invalid(call(4, -1, 4, a.data(), 4, b.data(), 4, c.data(), 4), "n (-1)");
  expect_invalid(call(4, 4, 0, a.data(), 4, b.data(), 4, c.data(), 4), "k (0)");
  expect_invalid(call(4, 4, 4, a.data(), 3, b.data(), 4, c.data(), 4), "lda (3)");
  expect_invalid(call(4, 4, 4, a.data(), 4, b.data(), 3, c.data(), 4), "ldb (3)");
  expect_invalid(call(4, 5, 4, a.data(), 4, b.data(), 3, c.data(), 5, Transpose::yes), "ldb (3) must be >= k");
  expect_invalid(call(4, 4, 4, a.data(), 4, b.data(), 4, c.data(), 2), "ldc (2)");
  expect_invalid(call(4, 4, 4, nullptr, 4, b.data(), 4, c.data(), 4), "a must not be null");
  expect_invalid(call(4, 4, 4, a.data(), 4, nullptr, 4, c.data(), 4), "b must not be null");
  expect_invalid(call(4, 4, 4, a.data(), 4, b.data(), 4, nullptr, 4), "c must not be null");
  const std::int64_t huge = std::numeric_limits<std::int64_t>::max() / 2;
  expect_invalid(call(4, 4, 4, a.data(), huge, b.data(), 4, c.data(), 4), "overflows");
  expect_invalid(call(4, huge, 4, a.data(), 4, b.data(), huge, c.data(), huge), "overflows");
}

TEST(GemmValidation, PackedMatrixAndSgemmPackedRejectBadArguments) {
  std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 0.0f);
  expect_invalid([&] { PackedMatrix(b.data(), 4, Transpose::no, 0, 4); }, "k (0)");
  expect_invalid([&] { PackedMatrix(b.data(), 4, Transpose::no, 4, 0); }, "n (0)");
  expect_invalid([&] { PackedMatrix(nullptr, 4, Transpose::no, 4, 4); }, "b must not be null");
  expect_invalid([&] { PackedMatrix(b.data(), 3, Transpose::no, 4, 4); }, "ldb (3)");
  const PackedMatrix empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.k(), 0);
  expect_invalid([&] { sgemm_packed(2, 1.0f, a.data(), 4, empty, 0.0f, c.data(), 4); }, "empty");
  const PackedMatrix pm(b.data(), 4, Transpose::no, 4, 4);
  EXPECT_EQ(pm.k(), 4);
  EXPECT_EQ(pm.n(), 4);
  expect_invalid([&] { sgemm_packed(0, 1.0f, a.data(), 4, pm, 0.0f, c.data(), 4); }, "m (0)");
  expect_invalid([&] { sgemm_packed(2, 1.0f, a.data(), 3, pm, 0.0f, c.data(), 4); }, "lda (3)");
  expect_invalid([&] { sgemm_packed(2, 1.0f, a.data(), 4, pm, 0.0f, c.data(), 3); }, "ldc (3)");
  expect_invalid([&] { sgemm_packed(2, 1.0f, nullptr, 4, pm, 0.0f, c.data(), 4); }, "a must");
  expect_invalid([&] { sgemm_packed(2, 1.0f, a.data(), 4, pm, 0.0f, nullptr, 4); }, "c must");
}

TEST(GemmReference, SmallHandComputedProduct) {
  // [1 2; 3 4] * [5 6; 7 8] = [19 22; 43 50]; alpha 2, beta 1 on C = 1, bias [10 20].
  const float a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8}, bias[] = {10, 20};
  float c[] = {1, 1, 1, 1};
  reference::sgemm(Transpose::no, 2, 2, 2, 2.0f, a, 2, b, 2, 1.0f, c, 2, bias);
  EXPECT_EQ(c[0], 49.0f);
  EXPECT_EQ(c[1], 65.0f);
  EXPECT_EQ(c[2], 97.0f);
  EXPECT_EQ(c[3], 121.0f);
}

}  // namespace
}  // namespace simdattn
