// tests/support/required_isas.hpp — SIMDATTN_REQUIRE_ISAS=sse2,avx2 (a comma list) names the ISAs
// a run must really test. Without it an ISA this machine cannot run is skipped and the run
// passes; with it, an unusable required ISA fails RequiredIsas.UsableHere, the skip sites of the
// ISA-parameterised fixtures fail instead of skipping (SIMDATTN_SKIP_UNLESS_USABLE), and as a
// safety net for any other skip, tests/unit/test_required_isas.cpp fails the run at exit when a
// test whose name carries a required ISA's name (".../avx2", ".../fast_avx2_1thread") skipped.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "simdattn/runtime.hpp"

namespace simdattn::test {

/// The required ISAs, read from the environment on each call. A name that is not an ISA is
/// returned in `unknown` (and fails RequiredIsas.UsableHere): a typo must not disable the check.
struct RequiredIsas {
  std::vector<Isa> isas;
  std::vector<std::string> unknown;
};

inline RequiredIsas required_isas() {
  RequiredIsas out;
  const char* env = std::getenv("SIMDATTN_REQUIRE_ISAS");
  if (env == nullptr) return out;
  const std::string list = env;
  std::size_t begin = 0;
  while (begin <= list.size()) {
    std::size_t end = list.find(',', begin);
    if (end == std::string::npos) end = list.size();
    std::string name = list.substr(begin, end - begin);
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (!name.empty()) {
      try {
        out.isas.push_back(parse_isa(name));
      } catch (const std::exception&) {
        out.unknown.push_back(name);
      }
    }
    begin = end + 1;
  }
  return out;
}

inline bool isa_required(Isa isa) {
  for (Isa r : required_isas().isas)
    if (r == isa) return true;
  return false;
}

}  // namespace simdattn::test

/// In a fixture's SetUp: skips the test when `isa` is not usable here, or fails it when `isa`
/// is listed in SIMDATTN_REQUIRE_ISAS. A macro because GTEST_SKIP / GTEST_FAIL return from the
/// calling function.
#define SIMDATTN_SKIP_UNLESS_USABLE(isa)                                                        \
  do {                                                                                          \
    if (!::simdattn::isa_usable(isa)) {                                                         \
      if (::simdattn::test::isa_required(isa))                                                  \
        GTEST_FAIL() << "ISA " << ::simdattn::isa_name(isa)                                     \
                     << " is required (SIMDATTN_REQUIRE_ISAS) but not usable here";             \
      GTEST_SKIP() << "ISA " << ::simdattn::isa_name(isa) << " not usable here";               \
    }                                                                                           \
  } while (0)
