// src/kernels/isa/attention_neon64.cpp — AArch64 NEON instantiations of the flash-attention kernels.
// Explicit instantiations only: see attention_flash_impl.hpp and softmax_simd.hpp for why.
#include "kernels/attention_flash_impl.hpp"

namespace simdattn::detail {
SIMDATTN_FLASH_INSTANTIATIONS(template, FlashArchNeon64)
}  // namespace simdattn::detail
