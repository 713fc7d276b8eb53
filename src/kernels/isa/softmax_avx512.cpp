// src/kernels/isa/softmax_avx512.cpp — AVX-512 (F/CD/DQ/BW/VL) instantiations of the softmax kernels.
// Explicit instantiations only: see softmax_rows_impl.hpp and softmax_simd.hpp for why.
// GCC 12 reports -W(maybe-)uninitialized inside avx512fintrin.h (the latter with sanitizers):
// its unmasked intrinsics pass _mm512_undefined_ps() as the pass-through operand. A false
// positive in the compiler's own header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "kernels/softmax_rows_impl.hpp"

namespace simdattn::detail {
SIMDATTN_SOFTMAX_INSTANTIATIONS(template, FlashArchAvx512)
}  // namespace simdattn::detail
