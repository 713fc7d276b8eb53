// tests/support/compare.hpp — element-wise comparison with derived tolerances. A NaN in either
// operand fails unless both are NaN at the same index (propagation), and the report names the
// case, the first bad index and its neighbourhood.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace simdattn::test {

/// Compares actual against expected with |a - e| <= atol + rtol * |e|, written so that a NaN
/// difference fails. Matching NaNs and equal infinities pass (the reference's propagation).
inline ::testing::AssertionResult all_close(const float* expected, const float* actual,
                                            std::int64_t n, double atol, double rtol,
                                            const std::string& what) {
  for (std::int64_t i = 0; i < n; ++i) {
    const double e = expected[i], a = actual[i];
    if (std::isnan(e) && std::isnan(a)) continue;
    if (std::isinf(e) && a == e) continue;
    const double tol = atol + rtol * std::fabs(e);
    if (!(std::fabs(a - e) <= tol)) {
      std::ostringstream os;
      os << what << ": first mismatch at index " << i << ": expected " << e << ", actual " << a
         << " (|diff| " << std::fabs(a - e) << " > tol " << tol << "); around it:";
      for (std::int64_t j = (i >= 3 ? i - 3 : 0); j < n && j <= i + 3; ++j)
        os << " [" << j << "] " << expected[j] << "/" << actual[j];
      return ::testing::AssertionFailure() << os.str();
    }
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult all_close(const std::vector<float>& expected,
                                            const std::vector<float>& actual, double atol,
                                            double rtol, const std::string& what) {
  if (expected.size() != actual.size())
    return ::testing::AssertionFailure() << what << ": size " << actual.size() << " != expected "
                                         << expected.size();
  return all_close(expected.data(), actual.data(), static_cast<std::int64_t>(expected.size()),
                   atol, rtol, what);
}

/// Bitwise equality (for thread-count determinism).
inline ::testing::AssertionResult bitwise_equal(const std::vector<float>& a,
                                                const std::vector<float>& b,
                                                const std::string& what) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << what << ": sizes differ";
  for (std::size_t i = 0; i < a.size(); ++i) {
    std::uint32_t x, y;
    std::memcpy(&x, &a[i], 4);
    std::memcpy(&y, &b[i], 4);
    if (x != y)
      return ::testing::AssertionFailure() << what << ": bits differ at " << i << ": " << a[i]
                                           << " vs " << b[i];
  }
  return ::testing::AssertionSuccess();
}

}  // namespace simdattn::test
