// src/kernels/isa/softmax_avx2.cpp — AVX2+FMA3 (-mavx2 -mfma) instantiations of the softmax kernels.
// Explicit instantiations only: see softmax_rows_impl.hpp and softmax_simd.hpp for why.
#include "kernels/softmax_rows_impl.hpp"

namespace simdattn::detail {
SIMDATTN_SOFTMAX_INSTANTIATIONS(template, FlashArchAvx2)
}  // namespace simdattn::detail
