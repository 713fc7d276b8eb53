// src/api/gemm.cpp — the public SGEMM entry points (simdattn/gemm.hpp): validate every argument
// with a message naming it, then hand over to the drivers on the active ISA's kernel table.
#include "simdattn/gemm.hpp"

#include <memory>

#include "common/validate.hpp"
#include "dispatch/kernel_table.hpp"
#include "drivers/gemm.hpp"

namespace simdattn {
namespace {

using detail::checked_mul;
using detail::fail_arg;
using detail::require_not_null;
using detail::require_positive;

void require_ld(const char* who, const char* ld_name, std::int64_t ld, const char* width_name,
                std::int64_t width) {
  if (ld < width)
    fail_arg(who, ": ", ld_name, " (", ld, ") must be >= ", width_name, " (", width, ")");
}

// A row-major rows x width matrix with leading dimension ld spans (rows - 1) * ld + width
// elements; that count (and its size in bytes) must not overflow.
void require_extent(const char* who, const char* what, std::int64_t rows, std::int64_t ld,
                    std::int64_t width) {
  const std::int64_t span = checked_mul(who, what, rows - 1, ld);
  if (span > INT64_MAX - width) fail_arg(who, ": ", what, " extent overflows");
  checked_mul(who, what, span + width, static_cast<std::int64_t>(sizeof(float)));
}

// The packed copy of op(B) is k x (panels * 16) floats.
void require_packable(const char* who, std::int64_t k, std::int64_t n) {
  const std::int64_t panels =
      n / detail::kGemmPanelWidth + 1 + detail::kGemmMaxPanelsPerTile;
  const std::int64_t floats = checked_mul(who, "packed B (k x padded n)", k,
                                          checked_mul(who, "padded n", panels,
                                                      detail::kGemmPanelWidth));
  checked_mul(who, "packed B bytes", floats, static_cast<std::int64_t>(sizeof(float)));
}

void validate_a_c(const char* who, std::int64_t m, std::int64_t n, std::int64_t k,
                  const float* a, std::int64_t lda, const float* c, std::int64_t ldc) {
  require_not_null(who, "a", a);
  require_not_null(who, "c", c);
  require_ld(who, "lda", lda, "k", k);
  require_ld(who, "ldc", ldc, "n", n);
  require_extent(who, "A (m x lda)", m, lda, k);
  require_extent(who, "C (m x ldc)", m, ldc, n);
}

void validate_b(const char* who, Transpose trans, std::int64_t k, std::int64_t n, const float* b,
                std::int64_t ldb) {
  require_not_null(who, "b", b);
  if (trans == Transpose::no) {
    require_ld(who, "ldb", ldb, "n (B is [k, n])", n);
    require_extent(who, "B (k x ldb)", k, ldb, n);
  } else {
    require_ld(who, "ldb", ldb, "k (B is [n, k])", k);
    require_extent(who, "B (n x ldb)", n, ldb, k);
  }
  require_packable(who, k, n);
}

}  // namespace

void sgemm(Transpose trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta,
           float* c, std::int64_t ldc, const float* bias) {
  constexpr const char* who = "sgemm";
  require_positive(who, "m", m);
  require_positive(who, "n", n);
  require_positive(who, "k", k);
  validate_a_c(who, m, n, k, a, lda, c, ldc);
  validate_b(who, trans_b, k, n, b, ldb);
  const detail::KernelTable& table = detail::kernels();
  const detail::GemmArgs args = detail::gemm_args(m, alpha, a, lda, beta, c, ldc, bias);
  detail::gemm_unpacked(table, trans_b, n, k, b, ldb, args);
}

PackedMatrix::PackedMatrix(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k,
                           std::int64_t n, DType storage) {
  constexpr const char* who = "PackedMatrix";
  require_positive(who, "k", k);
  require_positive(who, "n", n);
  validate_b(who, trans, k, n, b, ldb);
  if (storage != DType::f32 && storage != DType::f16 && storage != DType::bf16 &&
      storage != DType::q8_0 && storage != DType::q4_0)
    fail_arg(who, ": unknown storage type (", static_cast<int>(storage), ")");
  if (k % dtype_block(storage) != 0)
    detail::fail(ErrorCode::unsupported, who, ": ", dtype_name(storage),
                 " stores blocks of ", dtype_block(storage), " along the reduction dimension; k (",
                 k, ") is not a multiple of ", dtype_block(storage));
  auto data = std::make_shared<detail::PackedData>();
  // One layout for every ISA (16-wide full-depth panels, see detail::PackedB), so the packing
  // stays valid if set_isa() changes the active ISA later.
  if (storage == DType::f32)
    data->view = detail::pack_b(b, ldb, trans, k, n, detail::kGemmPanelWidth,
                                detail::kGemmMaxPanelsPerTile, data->storage);
  else
    data->view = detail::pack_b_stored(b, ldb, trans, k, n, detail::weight_storage(storage),
                                       data->storage);
  data_ = std::move(data);
}

std::int64_t PackedMatrix::k() const noexcept { return data_ ? data_->view.k : 0; }
std::int64_t PackedMatrix::n() const noexcept { return data_ ? data_->view.n : 0; }
DType PackedMatrix::storage() const noexcept {
  return data_ ? static_cast<DType>(data_->view.storage) : DType::f32;
}
std::int64_t PackedMatrix::resident_bytes() const noexcept {
  return data_ ? data_->view.resident_bytes() : 0;
}

void sgemm_packed(std::int64_t m, float alpha, const float* a, std::int64_t lda,
                  const PackedMatrix& b, float beta, float* c, std::int64_t ldc,
                  const float* bias) {
  constexpr const char* who = "sgemm_packed";
  if (b.empty()) fail_arg(who, ": b is an empty PackedMatrix (default-constructed)");
  require_positive(who, "m", m);
  validate_a_c(who, m, b.n(), b.k(), a, lda, c, ldc);
  const detail::GemmArgs args = detail::gemm_args(m, alpha, a, lda, beta, c, ldc, bias);
  detail::gemm_packed(detail::kernels(), args, b.packed().view);
}

}  // namespace simdattn
