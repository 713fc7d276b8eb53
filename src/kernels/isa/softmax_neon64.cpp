// src/kernels/isa/softmax_neon64.cpp — AArch64 NEON instantiations of the softmax kernels.
// Explicit instantiations only: see softmax_rows_impl.hpp and softmax_simd.hpp for why.
#include "kernels/softmax_rows_impl.hpp"

namespace simdattn::detail {
SIMDATTN_SOFTMAX_INSTANTIATIONS(template, FlashArchNeon64)
}  // namespace simdattn::detail
