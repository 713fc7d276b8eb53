// src/reference/gemm.cpp — the SGEMM oracle: the textbook triple loop accumulating in double
// (compiled with -ffp-contract=off), same contract and validation as simdattn::sgemm.
#include <cstdint>
#include <vector>

#include "common/validate.hpp"
#include "simdattn/reference.hpp"

namespace simdattn::reference {

void sgemm(Transpose trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta,
           float* c, std::int64_t ldc, const float* bias) {
  constexpr const char* who = "reference::sgemm";
  detail::require_positive(who, "m", m);
  detail::require_positive(who, "n", n);
  detail::require_positive(who, "k", k);
  detail::require_not_null(who, "a", a);
  detail::require_not_null(who, "b", b);
  detail::require_not_null(who, "c", c);
  if (lda < k) detail::fail_arg(who, ": lda (", lda, ") must be >= k (", k, ")");
  const std::int64_t b_width = trans_b == Transpose::no ? n : k;
  if (ldb < b_width) detail::fail_arg(who, ": ldb (", ldb, ") must be >= ", b_width);
  if (ldc < n) detail::fail_arg(who, ": ldc (", ldc, ") must be >= n (", n, ")");

  std::vector<double> row(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (std::int64_t p = 0; p < k; ++p) {
        const double bv = trans_b == Transpose::no ? b[p * ldb + j] : b[j * ldb + p];
        acc += static_cast<double>(a[i * lda + p]) * bv;
      }
      double r = static_cast<double>(alpha) * acc;
      if (beta != 0.0f) r += static_cast<double>(beta) * c[i * ldc + j];  // beta == 0: C unread
      if (bias != nullptr) r += bias[j];
      row[static_cast<std::size_t>(j)] = r;
    }
    for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = static_cast<float>(row[static_cast<std::size_t>(j)]);
  }
}

}  // namespace simdattn::reference
