// simdattn/gemm.hpp — single-precision GEMM with a fused epilogue and prepacked weights.
#pragma once

#include <cstdint>
#include <memory>

#include "simdattn/dtype.hpp"
#include "simdattn/export.h"

namespace simdattn {

/// op(B): `no` reads B as [K, N]; `yes` reads B as [N, K] (PyTorch's nn.Linear weight layout).
enum class Transpose { no, yes };

/// C[M,N] = alpha * A[M,K] * op(B) + beta * C (+ bias[N], broadcast over rows).
/// All matrices are row-major with leading dimensions (in elements). beta == 0 never reads C,
/// so C may be uninitialised. bias may be null. Runs on the active ISA with num_threads()
/// threads; the result is bitwise identical for every thread count.
/// Throws Error(invalid_argument) on non-positive sizes, leading dimensions smaller than the
/// row width, or null pointers.
SIMDATTN_API void sgemm(Transpose trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                        float alpha, const float* a, std::int64_t lda, const float* b,
                        std::int64_t ldb, float beta, float* c, std::int64_t ldc,
                        const float* bias = nullptr);

namespace detail {
struct PackedData;
}

/// op(B) packed once into the panel layout the GEMM microkernels stream, so that repeated
/// products against the same weight (every forward of a module) never repack it. Immutable
/// after construction; copies share the packed storage; safe to use from many threads.
class SIMDATTN_API PackedMatrix {
 public:
  PackedMatrix() = default;
  /// Packs op(B), a K x N matrix: B is [K, N] (trans == no) or [N, K] (trans == yes), stored
  /// as `storage` (simdattn/dtype.hpp; the packing never holds an f32 copy). Products read the
  /// weights as stored and compute in f32: sgemm_packed against a stored matrix gives the bits
  /// of sgemm_packed against an f32 PackedMatrix of its decoded values
  /// (reference::stored_values). Throws Error(unsupported) for q8_0 and q4_0 when k is not a
  /// multiple of 32, and Error(invalid_argument) naming the element when a finite weight does
  /// not fit the type (|w| > 65504 for f16; a block whose scale rounds past 65504 in f16: max
  /// |w| above about 65504 * 127 for q8_0, 65504 * 8 for q4_0).
  PackedMatrix(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k, std::int64_t n,
               DType storage = DType::f32);

  std::int64_t k() const noexcept;  ///< rows of op(B) (the reduction depth)
  std::int64_t n() const noexcept;  ///< columns of op(B)
  DType storage() const noexcept;   ///< f32 for an empty matrix
  /// Bytes of packed weights held (panels padded to 16 columns; 0 when empty). For N a multiple
  /// of 16, k * N * 4 (f32), k * N * 2 (f16, bf16), k * N * 34 / 32 (q8_0), k * N * 18 / 32
  /// (q4_0), plus one padding
  /// panel of 16 columns.
  std::int64_t resident_bytes() const noexcept;
  bool empty() const noexcept { return !data_; }
  const detail::PackedData& packed() const noexcept { return *data_; }

 private:
  std::shared_ptr<const detail::PackedData> data_;
};

/// C[M,N] = alpha * A[M,K] * B + beta * C (+ bias), B prepacked. Same contract as sgemm.
SIMDATTN_API void sgemm_packed(std::int64_t m, float alpha, const float* a, std::int64_t lda,
                               const PackedMatrix& b, float beta, float* c, std::int64_t ldc,
                               const float* bias = nullptr);

}  // namespace simdattn
