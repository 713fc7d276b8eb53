// tests/unit/test_cache_info.cpp — cache sizes read at run time (from a fake sysfs tree, and
// from this machine) and the GEMM blocking derived from them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "dispatch/cache_info.hpp"
#include "dispatch/kernel_table.hpp"
#include "simdattn/error.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn {
namespace {

namespace fs = std::filesystem;
using detail::CacheSizes;
using detail::gemm_blocking_for_l2;
using detail::GemmBlocking;

constexpr std::int64_t KiB = 1024, MiB = 1024 * 1024;

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("simdattn_cache_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void index(int i, const std::string& level, const std::string& type, const std::string& size) {
    const fs::path d = root_ / "cache" / ("index" + std::to_string(i));
    fs::create_directories(d);
    std::ofstream(d / "level") << level << "\n";
    std::ofstream(d / "type") << type << "\n";
    std::ofstream(d / "size") << size << "\n";
  }
  CacheSizes read() const { return detail::read_sysfs_cache_sizes(root_.string()); }
  fs::path root_;
};

TEST_F(FakeSysfs, ReadsDataAndUnifiedLevelsAndSkipsInstructionCaches) {
  index(0, "1", "Data", "48K");
  index(1, "1", "Instruction", "32K");
  index(2, "2", "Unified", "2048K");
  index(3, "3", "Unified", "266240K");
  const CacheSizes c = read();
  EXPECT_EQ(c.l1d, 48 * KiB);
  EXPECT_EQ(c.l2, 2 * MiB);
  EXPECT_EQ(c.l3, 266240 * KiB);
  EXPECT_STREQ(c.source, "sysfs");
}

TEST_F(FakeSysfs, UnitsAndMalformedSizes) {
  index(0, "1", "Data", "32768");  // plain bytes
  index(1, "2", "Unified", "1M");
  index(2, "3", "Unified", "32MiB");  // not a sysfs spelling: rejected, not misread as 32 MiB
  CacheSizes c = read();
  EXPECT_EQ(c.l1d, 32 * KiB);
  EXPECT_EQ(c.l2, 1 * MiB);
  EXPECT_EQ(c.l3, 0);
  index(2, "3", "Unified", "K");
  EXPECT_EQ(read().l3, 0);
  index(2, "3", "Unified", "99999999999999999999K");
  EXPECT_EQ(read().l3, 0);
  index(2, "3", "Unified", "9999999999999G");  // fits in 64 bits as digits, not as bytes
  EXPECT_EQ(read().l3, 0);
}

TEST_F(FakeSysfs, AMissingTreeReadsAsNothing) {
  const CacheSizes c = read();  // no cache/ directory at all
  EXPECT_EQ(c.l1d, 0);
  EXPECT_EQ(c.l2, 0);
  EXPECT_EQ(c.l3, 0);
}

TEST(HostCacheSizes, ArePlausibleAndStable) {
  const CacheSizes& c = detail::host_cache_sizes();
  EXPECT_GE(c.l1d, 4 * KiB);
  EXPECT_LE(c.l1d, 4 * MiB);
  EXPECT_GE(c.l2, 64 * KiB);
  EXPECT_LE(c.l2, 256 * MiB);
  EXPECT_GE(c.l3, 0);
  EXPECT_EQ(&c, &detail::host_cache_sizes());
  const std::string src = c.source;
  EXPECT_TRUE(src == "sysfs" || src == "sysconf" || src == "default") << src;
}

// The rule, by hand, on the machines it was measured on.
TEST(GemmBlocking, MatchesTheMeasuredMachines) {
  // Zen 3, 512 KiB L2, AVX2 6 x 16: 3/4 of 128 Ki floats = 98304; kc = 98304 / (96 + 32) =
  // 768; mc = 98304 / 768 - 32 = 96.
  GemmBlocking b = gemm_blocking_for_l2(6, 16, 512 * KiB);
  EXPECT_EQ(b.kc, 768);
  EXPECT_EQ(b.mc, 96);
  // Xeon, 2 MiB L2, AVX-512 14 x 32: kc = 393216 / (98 + 64) = 2427 -> 1024 (the cap);
  // mc = 393216 / 1024 - 64 = 320 -> 308 (22 tiles).
  b = gemm_blocking_for_l2(14, 32, 2 * MiB);
  EXPECT_EQ(b.kc, 1024);
  EXPECT_EQ(b.mc, 308);
  // 256 KiB L2, SSE2 3 x 16: kc = 49152 / 128 = 384; mc = 49152 / 384 - 32 = 96.
  b = gemm_blocking_for_l2(3, 16, 256 * KiB);
  EXPECT_EQ(b.kc, 384);
  EXPECT_EQ(b.mc, 96);
}

TEST(GemmBlocking, StaysInBoundsForAnyL2) {
  for (int mr : {3, 6, 14}) {
    for (int nr : {16, 32}) {
      const std::int64_t floor = (96 + mr - 1) / mr * mr;
      for (std::int64_t l2 : {std::int64_t{0}, std::int64_t{-1}, 16 * KiB, 128 * KiB, 256 * KiB,
                              1 * MiB, 1280 * KiB, 32 * MiB, std::int64_t{1} << 40}) {
        SCOPED_TRACE(testing::Message() << mr << "x" << nr << " L2 " << l2);
        const GemmBlocking b = gemm_blocking_for_l2(mr, nr, l2);
        EXPECT_EQ(b.mc % mr, 0);
        EXPECT_GE(b.mc, floor);
        EXPECT_LE(b.mc, 4 * floor);
        EXPECT_EQ(b.kc % 16, 0);
        EXPECT_GE(b.kc, 128);
        EXPECT_LE(b.kc, 1024);
        // Where L2 is large enough for the floors, A block + two B micro-panels fit 3/4 of it.
        if (l2 >= 4 * (floor + 2 * nr) * 128 * 4 / 3) {
          EXPECT_LE(4 * (b.mc + 2 * nr) * b.kc, l2 / 4 * 3);
        }
      }
    }
  }
}

TEST(GemmBlocking, EveryTableUsesTheRuleForThisMachine) {
  for (Isa isa : usable_isas()) {
    SCOPED_TRACE(isa_name(isa));
    const detail::GemmMicrokernel& g = detail::kernels_for(isa).gemm;
    const GemmBlocking b = gemm_blocking_for_l2(g.mr, g.nr, detail::host_cache_sizes().l2);
    EXPECT_EQ(g.mc, b.mc);
    EXPECT_EQ(g.kc, b.kc);
  }
}

}  // namespace
}  // namespace simdattn

namespace simdattn {
namespace {

TEST(PublicCacheAndBlocking, ReportWhatTheKernelsUse) {
  const CacheInfo c = cache_info();
  const detail::CacheSizes& d = detail::host_cache_sizes();
  EXPECT_EQ(c.l1d_bytes, d.l1d);
  EXPECT_EQ(c.l2_bytes, d.l2);
  EXPECT_EQ(c.l3_bytes, d.l3);
  EXPECT_STREQ(c.source, d.source);
  for (Isa isa : usable_isas()) {
    const GemmBlockingInfo b = gemm_blocking(isa);
    const detail::GemmMicrokernel& g = detail::kernels_for(isa).gemm;
    EXPECT_EQ(b.mr, g.mr);
    EXPECT_EQ(b.nr, g.nr);
    EXPECT_EQ(b.mc, g.mc);
    EXPECT_EQ(b.kc, g.kc);
    EXPECT_EQ(b.nc, g.nc);
  }
  for (Isa isa : {Isa::sse2, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (isa_usable(isa)) continue;
    EXPECT_THROW((void)gemm_blocking(isa), Error) << isa_name(isa);
  }
}

}  // namespace
}  // namespace simdattn
