// src/kernels/softmax_params.hpp — the calling convention of the softmax kernels. Plain
// declarations only: included by baseline and per-ISA code alike.
#pragma once

#include <cstdint>

namespace simdattn::detail {

/// The fused causal softmax of `rows` rows, in place (see simdattn::causal_softmax): row i is
/// the query at absolute position offset + i; columns j > offset + i are masked when causal.
using CausalSoftmaxRowsFn = void (*)(float* scores, std::int64_t rows, std::int64_t cols,
                                     std::int64_t ld, float scale, std::int64_t offset,
                                     bool causal);

/// y[i] = exp(x[i]) with the exponential every softmax kernel uses (exposed so that tests can
/// measure its error in ULP against a double-precision exp).
using ExpF32Fn = void (*)(const float* x, float* y, std::int64_t n);

}  // namespace simdattn::detail
