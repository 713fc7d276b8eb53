// tests/unit/test_runtime.cpp — the process-wide ISA and thread-count controls (runtime.hpp):
// names round-trip, errors are explicit, and no ISA is ever silently substituted.
#include <gtest/gtest.h>
#include <oneapi/tbb/info.h>

#include <algorithm>
#include <string>

#include "simdattn/error.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn {
namespace {

constexpr Isa kAll[] = {Isa::sse2, Isa::avx2, Isa::avx512, Isa::neon};

bool contains(const std::vector<Isa>& v, Isa isa) {
  return std::find(v.begin(), v.end(), isa) != v.end();
}

// Restores the ISA and thread count a test changed, so tests stay independent.
class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    isa_ = active_isa();
    threads_ = num_threads();
  }
  void TearDown() override {
    set_isa(isa_);
    set_num_threads(0);
  }
  Isa isa_{};
  int threads_ = 0;
};

TEST(Runtime, IsaNamesRoundTrip) {
  for (Isa isa : kAll) EXPECT_EQ(parse_isa(isa_name(isa)), isa) << isa_name(isa);
}

TEST(Runtime, ParseIsaRejectsUnknownNamesWithInvalidArgument) {
  for (const char* bad : {"", "AVX2", "avx", "avx512f", "neon64", "sse2 "}) {
    try {
      parse_isa(bad);
      FAIL() << "parse_isa('" << bad << "') did not throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << bad;
      // The message lists what is accepted.
      EXPECT_NE(std::string(e.what()).find("avx2"), std::string::npos) << e.what();
    }
  }
}

TEST(Runtime, UsableIsasAreCompiledAndOrderedBestFirst) {
  const auto compiled = compiled_isas();
  const auto usable = usable_isas();
  ASSERT_FALSE(usable.empty()) << "no usable ISA: the fast path cannot run on this machine";
  for (Isa isa : usable) EXPECT_TRUE(contains(compiled, isa)) << isa_name(isa);
  for (Isa isa : kAll) EXPECT_EQ(isa_usable(isa), contains(usable, isa)) << isa_name(isa);
  EXPECT_TRUE(contains(usable, active_isa()));
  std::string names;
  for (Isa isa : usable) names += std::string(isa_name(isa)) + " ";
  std::printf("[   INFO   ] usable ISAs: %s(active: %s)\n", names.c_str(), isa_name(active_isa()));
}

TEST_F(RuntimeTest, SetIsaSwitchesBetweenUsableIsas) {
  for (Isa isa : usable_isas()) {
    set_isa(isa);
    EXPECT_EQ(active_isa(), isa);
  }
}

TEST_F(RuntimeTest, SetIsaOfAnUnusableIsaThrowsUnsupportedAndKeepsTheActiveOne) {
  const Isa before = active_isa();
  int tried = 0;
  for (Isa isa : kAll) {
    if (isa_usable(isa)) continue;
    ++tried;
    try {
      set_isa(isa);
      FAIL() << "set_isa(" << isa_name(isa) << ") did not throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::unsupported);
      EXPECT_NE(std::string(e.what()).find(isa_name(isa)), std::string::npos) << e.what();
    }
    EXPECT_EQ(active_isa(), before) << "a failed set_isa must not change the active ISA";
  }
  if (tried == 0) GTEST_SKIP() << "every ISA is usable on this machine";
}

TEST_F(RuntimeTest, ThreadCountIsClampedToTheMachine) {
  const int hw = tbb::info::default_concurrency();
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(hw + 7);
  EXPECT_EQ(num_threads(), hw);
  set_num_threads(1000000);
  EXPECT_EQ(num_threads(), hw);
}

TEST_F(RuntimeTest, SetNumThreadsZeroRestoresTheDefault) {
  set_num_threads(0);
  const int def = num_threads();
  EXPECT_GE(def, 1);
  EXPECT_LE(def, tbb::info::default_concurrency());
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(0);
  EXPECT_EQ(num_threads(), def);
}

TEST_F(RuntimeTest, NegativeThreadCountThrowsInvalidArgument) {
  const int before = num_threads();
  try {
    set_num_threads(-1);
    FAIL() << "set_num_threads(-1) did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
  EXPECT_EQ(num_threads(), before);
}

}  // namespace
}  // namespace simdattn
