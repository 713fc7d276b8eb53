// tests/unit/test_version.cpp — the version the library reports at run time (C++ and C) is the
// one its headers declare, and the macros agree with each other.
#include <gtest/gtest.h>

#include <string>

#include "simdattn/runtime.hpp"
#include "simdattn/simdattn.h"
#include "simdattn/version.h"

extern "C" {
int simdattn_test_c_header_version_number(void);
const char* simdattn_test_c_header_version_string(void);
int simdattn_test_c_library_version_number(void);
const char* simdattn_test_c_library_version_string(void);
}

namespace {

const std::string kMacroString = std::to_string(SIMDATTN_VERSION_MAJOR) + "." +
                                 std::to_string(SIMDATTN_VERSION_MINOR) + "." +
                                 std::to_string(SIMDATTN_VERSION_PATCH);

TEST(Version, MacrosAgreeWithEachOther) {
  EXPECT_EQ(std::string(SIMDATTN_VERSION_STRING), kMacroString);
  EXPECT_EQ(SIMDATTN_VERSION_NUMBER,
            SIMDATTN_VERSION_MAJOR * 10000 + SIMDATTN_VERSION_MINOR * 100 + SIMDATTN_VERSION_PATCH);
  EXPECT_GE(SIMDATTN_VERSION_MINOR, 0);
  EXPECT_LT(SIMDATTN_VERSION_MINOR, 100);  // the number's encoding leaves two digits
  EXPECT_GE(SIMDATTN_VERSION_PATCH, 0);
  EXPECT_LT(SIMDATTN_VERSION_PATCH, 100);
}

TEST(Version, CxxRuntimeEqualsMacros) {
  const simdattn::Version v = simdattn::version();
  EXPECT_EQ(v.major, SIMDATTN_VERSION_MAJOR);
  EXPECT_EQ(v.minor, SIMDATTN_VERSION_MINOR);
  EXPECT_EQ(v.patch, SIMDATTN_VERSION_PATCH);
  ASSERT_NE(v.string, nullptr);
  EXPECT_EQ(std::string(v.string), kMacroString);
}

TEST(Version, CRuntimeEqualsMacros) {
  ASSERT_NE(simdattn_version(), nullptr);
  EXPECT_EQ(std::string(simdattn_version()), kMacroString);
  EXPECT_EQ(simdattn_version_number(), SIMDATTN_VERSION_NUMBER);
}

// The same from a translation unit compiled as C99.
TEST(Version, CTranslationUnitSeesTheSameVersion) {
  EXPECT_EQ(simdattn_test_c_header_version_number(), SIMDATTN_VERSION_NUMBER);
  EXPECT_EQ(std::string(simdattn_test_c_header_version_string()), kMacroString);
  EXPECT_EQ(simdattn_test_c_library_version_number(), SIMDATTN_VERSION_NUMBER);
  EXPECT_EQ(std::string(simdattn_test_c_library_version_string()), kMacroString);
}

}  // namespace
