// src/kernels/isa/attention_avx512.cpp — AVX-512 (F/CD/DQ/BW/VL) instantiations of the flash-attention kernels.
// Explicit instantiations only: see attention_flash_impl.hpp and softmax_simd.hpp for why.
// GCC 12 reports -W(maybe-)uninitialized inside avx512fintrin.h (the latter with sanitizers):
// its unmasked intrinsics pass _mm512_undefined_ps() as the pass-through operand. A false
// positive in the compiler's own header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "kernels/attention_flash_impl.hpp"

namespace simdattn::detail {
SIMDATTN_FLASH_INSTANTIATIONS(template, FlashArchAvx512)
}  // namespace simdattn::detail
