// simdattn/reference.hpp — the naive reference building blocks: plain loops accumulating in
// double, compiled without FMA contraction. Use them as an oracle in differential tests.
#pragma once

#include <cstdint>
#include <vector>

#include "simdattn/export.h"
#include "simdattn/gemm.hpp"

namespace simdattn::reference {

/// C = alpha * A * op(B) + beta * C (+ bias); same contract as simdattn::sgemm.
SIMDATTN_API void sgemm(Transpose trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                        float alpha, const float* a, std::int64_t lda, const float* b,
                        std::int64_t ldb, float beta, float* c, std::int64_t ldc,
                        const float* bias = nullptr);

/// op(B) as a PackedMatrix stores it, K x N row-major, each value decoded exactly from its
/// storage type (for f32: the matrix packed). sgemm on this matrix is the oracle of
/// sgemm_packed on the stored one. Throws Error(invalid_argument) for an empty matrix.
SIMDATTN_API std::vector<float> stored_values(const PackedMatrix& b);

/// Row-wise softmax, in place, rows x cols (row stride ld). The naive form is exp(x)/sum(exp),
/// which overflows for scores above ~88 exactly as the book's softmax_naive does.
SIMDATTN_API void softmax_naive_rows(float* x, std::int64_t rows, std::int64_t cols,
                                     std::int64_t ld);
/// Max-subtracted softmax; an all -inf row becomes zeros.
SIMDATTN_API void softmax_stable_rows(float* x, std::int64_t rows, std::int64_t cols,
                                      std::int64_t ld);
/// Same contract as simdattn::causal_softmax (scale, -inf mask above offset + i, softmax).
SIMDATTN_API void causal_softmax(float* scores, std::int64_t rows, std::int64_t cols,
                                 std::int64_t ld, float scale, std::int64_t offset,
                                 bool causal = true);
/// The book's alternative (§3.5.1): softmax of the scaled unmasked scores, zero above the
/// diagonal, renormalise each row by its sum. Agrees with causal_softmax up to rounding.
SIMDATTN_API void causal_softmax_renormalized(float* scores, std::int64_t rows,
                                              std::int64_t cols, std::int64_t ld, float scale,
                                              std::int64_t offset);

}  // namespace simdattn::reference
