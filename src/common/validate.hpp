// src/common/validate.hpp — argument checks shared by the public entry points. They throw
// simdattn::Error with a message that names the caller, the argument, the expectation and the
// value. Used only in the API and module layers, never in kernels.
#pragma once

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

#include "simdattn/error.hpp"

namespace simdattn::detail {

template <class... Parts>
[[noreturn]] void fail(ErrorCode code, const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(code, os.str());
}

template <class... Parts>
[[noreturn]] void fail_arg(const Parts&... parts) {
  fail(ErrorCode::invalid_argument, parts...);
}

/// "who: name (value) must be >= 1"
inline void require_positive(const char* who, const char* name, std::int64_t value) {
  if (value < 1) fail_arg(who, ": ", name, " (", value, ") must be >= 1");
}

inline void require_not_null(const char* who, const char* name, const void* p) {
  if (p == nullptr) fail_arg(who, ": ", name, " must not be null");
}

/// a * b, or an Error naming `what` if the product overflows int64 (operands are >= 0).
inline std::int64_t checked_mul(const char* who, const char* what, std::int64_t a,
                                std::int64_t b) {
  if (a != 0 && b > std::numeric_limits<std::int64_t>::max() / a)
    fail_arg(who, ": ", what, " (", a, " x ", b, ") overflows");
  return a * b;
}

}  // namespace simdattn::detail
