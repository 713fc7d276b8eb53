// src/dispatch/decode_kernels.hpp — the short-query (decode) attention kernel of an ISA.
#pragma once

#include "kernels/attention_decode.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn::detail {

/// The kernel of `isa`, which must be compiled in (callers pass a usable ISA).
DecodeRowFn decode_row_kernel(Isa isa) noexcept;

}  // namespace simdattn::detail
