// src/kernels/isa/attention_avx512.cpp — AVX-512 (F/CD/DQ/BW/VL) instantiations of the flash-attention kernels.
// Explicit instantiations only: see attention_flash_impl.hpp and softmax_simd.hpp for why.
#include "kernels/attention_flash_impl.hpp"

namespace simdattn::detail {
SIMDATTN_FLASH_INSTANTIATIONS(template, FlashArchAvx512)
}  // namespace simdattn::detail
