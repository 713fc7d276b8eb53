// simdattn/dtype.hpp — how weights are stored. Arithmetic is f32 whatever the storage: stored
// values are decoded exactly (in registers, or once per cache block) and accumulated in f32.
#pragma once

#include <cstdint>
#include <string>

#include "simdattn/export.h"

namespace simdattn {

/// Storage types.
///   f32   4 bytes per value.
///   f16   IEEE binary16, rounded to nearest even from f32 (|w| > 65504 becomes +-Inf).
///   bf16  the top half of the f32 bits, rounded to nearest even.
///   q8_0  GGUF's Q8_0: blocks of 32 consecutive values along the reduction dimension;
///         d = amax / 127 stored as f16, q = roundf(w / d) as int8, value = f16(d) * q.
///         34 bytes per 32 values. A block holding a NaN or an Inf stores a NaN scale: all 32
///         of its values read as NaN (a non-finite weight poisons what it touches, as in f32).
///   q4_0  GGUF's Q4_0 (weights only): blocks of 32 along the reduction dimension; m = the
///         block's value of largest |w| (the first, on ties), d = m / -8 stored as f16,
///         id = d ? 1/d : 0, q = min(15, trunc(w * id + 8.5)) in 4 bits, value = f16(d) * (q - 8).
///         18 bytes per 32 values. Non-finite blocks as for q8_0. KV caches do not take it.
enum class DType { f32, f16, bf16, q8_0, q4_0 };

/// "f32", "f16", "bf16", "q8_0", "q4_0".
SIMDATTN_API const char* dtype_name(DType type) noexcept;
/// Inverse of dtype_name; throws Error(invalid_argument) listing the accepted names.
SIMDATTN_API DType parse_dtype(const std::string& name);
/// Values per block (32 for q8_0 and q4_0, 1 otherwise): the reduction dimension must be a multiple.
SIMDATTN_API std::int64_t dtype_block(DType type) noexcept;

}  // namespace simdattn
