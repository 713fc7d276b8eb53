// simdattn/gemm.hpp — single-precision GEMM with a fused epilogue and prepacked weights.
#pragma once

#include <cstdint>
#include <memory>

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
  /// Packs op(B), a K x N matrix: B is [K, N] (trans == no) or [N, K] (trans == yes).
  PackedMatrix(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k, std::int64_t n);

  std::int64_t k() const noexcept;  ///< rows of op(B) (the reduction depth)
  std::int64_t n() const noexcept;  ///< columns of op(B)
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
