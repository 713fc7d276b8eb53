// src/kernels/isa/softmax_avx512.cpp — AVX-512 (F/CD/DQ/BW/VL) instantiations of the softmax kernels.
// Explicit instantiations only: see softmax_rows_impl.hpp and softmax_simd.hpp for why.
#include "kernels/softmax_rows_impl.hpp"

namespace simdattn::detail {
SIMDATTN_SOFTMAX_INSTANTIATIONS(template, FlashArchAvx512)
}  // namespace simdattn::detail
