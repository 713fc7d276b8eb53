// src/kernels/isa/attention_avx2.cpp — AVX2+FMA3 (-mavx2 -mfma) instantiations of the flash-attention kernels.
// Explicit instantiations only: see attention_flash_impl.hpp and softmax_simd.hpp for why.
#include "kernels/attention_flash_impl.hpp"

namespace simdattn::detail {
SIMDATTN_FLASH_INSTANTIATIONS(template, FlashArchAvx2)
}  // namespace simdattn::detail
