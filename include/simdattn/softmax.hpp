// simdattn/softmax.hpp — the fused (optionally causal) softmax over rows of attention scores.
#pragma once

#include <cstdint>

#include "simdattn/export.h"

namespace simdattn {

/// In place, for each of `rows` rows of `scores` (row stride `ld` floats, `cols` used):
/// s = scale * s; if causal, entries with column j > offset + i are set to -inf (row i is the
/// query at absolute position offset + i of a key sequence of length `cols`); then
/// s = exp(s - max) / sum. A row whose entries are all masked or all -inf becomes zeros.
/// NaN inputs propagate as in the reference (the row becomes NaN).
/// Throws Error(invalid_argument) on null scores, rows/cols < 1, ld < cols or offset < 0.
SIMDATTN_API void causal_softmax(float* scores, std::int64_t rows, std::int64_t cols,
                                 std::int64_t ld, float scale, std::int64_t offset,
                                 bool causal = true);

}  // namespace simdattn
