// tests/unit/test_required_isas.cpp — enforces SIMDATTN_REQUIRE_ISAS (tests/support/
// required_isas.hpp): every required ISA must be usable here, and no test of a required ISA may
// end skipped. Unset, both checks pass and the suite skips what the machine cannot run.
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "simdattn/runtime.hpp"
#include "support/required_isas.hpp"

namespace simdattn::test {
namespace {

TEST(RequiredIsas, UsableHere) {
  const RequiredIsas req = required_isas();
  for (const std::string& name : req.unknown)
    ADD_FAILURE() << "SIMDATTN_REQUIRE_ISAS: '" << name
                  << "' is not an ISA (expected a comma list of sse2, avx2, avx512, neon)";
  std::string usable;
  for (Isa isa : usable_isas()) usable += std::string(usable.empty() ? "" : ", ") + isa_name(isa);
  for (Isa isa : req.isas)
    EXPECT_TRUE(isa_usable(isa)) << "ISA " << isa_name(isa)
                                 << " is required (SIMDATTN_REQUIRE_ISAS) but not usable here "
                                    "(usable: " << usable << ")";
}

// True when `name`, cut at every character that is not a letter or a digit, has a piece equal
// to `isa` ("Isas/FastSoftmax.Rows/avx2_1thread" has "avx2"; "avx512" has no "avx2").
bool names_isa(const std::string& name, const std::string& isa) {
  std::string piece;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    const bool alnum = i < name.size() && std::isalnum(static_cast<unsigned char>(name[i]));
    if (alnum) {
      piece += name[i];
      continue;
    }
    if (piece == isa) return true;
    piece.clear();
  }
  return false;
}

// The safety net: after every test has run, any skipped test named after a required ISA fails
// the run (a failure in a global environment's TearDown makes the test program exit non-zero),
// whatever its reason to skip.
class NoSkippedRequiredIsa : public ::testing::Environment {
 public:
  void TearDown() override {
    const RequiredIsas req = required_isas();
    if (req.isas.empty()) return;
    const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
    for (int s = 0; s < unit.total_test_suite_count(); ++s) {
      const ::testing::TestSuite& suite = *unit.GetTestSuite(s);
      for (int t = 0; t < suite.total_test_count(); ++t) {
        const ::testing::TestInfo& info = *suite.GetTestInfo(t);
        if (!info.should_run() || !info.result()->Skipped()) continue;
        const std::string name = std::string(info.test_suite_name()) + "." + info.name();
        for (Isa isa : req.isas)
          if (names_isa(name, isa_name(isa)))
            ADD_FAILURE() << name << " was skipped, but ISA " << isa_name(isa)
                          << " is required (SIMDATTN_REQUIRE_ISAS)";
      }
    }
  }
};
const auto* const kNoSkippedRequiredIsa =
    ::testing::AddGlobalTestEnvironment(new NoSkippedRequiredIsa);

TEST(RequiredIsas, NamesIsaMatchesWholePiecesOnly) {
  EXPECT_TRUE(names_isa("Isas/FastSoftmax.Rows/avx2_1thread", "avx2"));
  EXPECT_TRUE(names_isa("Paths/KVCacheOnPath.Split/fast_neon_Nthreads", "neon"));
  EXPECT_TRUE(names_isa("AllIsas/GemmIsaTest.Shapes/sse2", "sse2"));
  EXPECT_FALSE(names_isa("AllIsas/GemmIsaTest.Shapes/avx512", "avx2"));
  EXPECT_FALSE(names_isa("Runtime.Avx2Detection", "avx2"));
}

}  // namespace
}  // namespace simdattn::test
