// src/reference/gemm.cpp — the SGEMM oracle: the textbook triple loop accumulating in double
// (compiled with -ffp-contract=off), same contract and validation as simdattn::sgemm.
#include <cstdint>
#include <vector>

#include <cstring>

#include "common/half.hpp"
#include "common/validate.hpp"
#include "drivers/gemm.hpp"
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

std::vector<float> stored_values(const PackedMatrix& b) {
  if (b.empty()) detail::fail_arg("reference::stored_values: b is an empty PackedMatrix");
  // Read the packed layout (drivers/gemm.hpp, kernels/gemm_params.hpp) value by value.
  const detail::PackedB& v = b.packed().view;
  const std::int64_t k = v.k, n = v.n, pw = v.panel_width;
  std::vector<float> out(static_cast<std::size_t>(k * n));
  for (std::int64_t j = 0; j < n; ++j) {
    const unsigned char* panel = v.bytes + (j / pw) * v.panel_bytes;
    const std::int64_t col = j % pw;
    for (std::int64_t p = 0; p < k; ++p) {
      float value = 0.0f;
      std::uint16_t h = 0;
      switch (v.storage) {
        case detail::WeightStorage::f32:
          std::memcpy(&value, panel + (p * pw + col) * 4, 4);
          break;
        case detail::WeightStorage::f16:
          std::memcpy(&h, panel + (p * pw + col) * 2, 2);
          value = detail::f16_to_f32(h);
          break;
        case detail::WeightStorage::bf16:
          std::memcpy(&h, panel + (p * pw + col) * 2, 2);
          value = detail::bf16_to_f32(h);
          break;
        case detail::WeightStorage::q8_0: {
          const unsigned char* block = panel + (p / detail::kQ8Block) * detail::kQ8BlockBytes;
          std::memcpy(&h, block + 2 * col, 2);
          const auto q = static_cast<std::int8_t>(block[2 * pw + (p % detail::kQ8Block) * pw + col]);
          value = detail::f16_to_f32(h) * static_cast<float>(q);  // exact: <= 18 significant bits
          break;
        }
        case detail::WeightStorage::q4_0: {
          const unsigned char* block = panel + (p / detail::kQ8Block) * detail::kQ4BlockBytes;
          std::memcpy(&h, block + 2 * col, 2);
          const std::int64_t r = p % detail::kQ8Block;
          const unsigned byte = block[2 * pw + (r / 2) * pw + col];
          // Low nibble: q; high nibble: q ^ 8 (q - 8 in two's complement).
          const unsigned q_code = r % 2 == 0 ? byte & 0xfu : (byte >> 4) ^ 8u;
          const int q = static_cast<int>(q_code) - 8;
          value = detail::f16_to_f32(h) * static_cast<float>(q);  // exact: <= 15 significant bits
          break;
        }
      }
      out[static_cast<std::size_t>(p * n + j)] = value;
    }
  }
  return out;
}

}  // namespace simdattn::reference
