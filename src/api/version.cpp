// src/api/version.cpp — the version compiled into the library, for a program to compare with
// the headers it was built against (SIMDATTN_VERSION_*).
#include "simdattn/runtime.hpp"
#include "simdattn/simdattn.h"
#include "simdattn/version.h"

namespace simdattn {

Version version() noexcept {
  return {SIMDATTN_VERSION_MAJOR, SIMDATTN_VERSION_MINOR, SIMDATTN_VERSION_PATCH,
          SIMDATTN_VERSION_STRING};
}

}  // namespace simdattn

extern "C" const char* simdattn_version(void) { return SIMDATTN_VERSION_STRING; }

extern "C" int simdattn_version_number(void) { return SIMDATTN_VERSION_NUMBER; }
