// src/kernels/isa/softmax_sse2.cpp — SSE2 (baseline x86-64 flags) instantiations of the softmax kernels.
// Explicit instantiations only: see softmax_rows_impl.hpp and softmax_simd.hpp for why.
#include "kernels/softmax_rows_impl.hpp"

namespace simdattn::detail {
SIMDATTN_SOFTMAX_INSTANTIATIONS(template, FlashArchSse2)
}  // namespace simdattn::detail
