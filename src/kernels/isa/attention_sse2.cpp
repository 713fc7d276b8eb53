// src/kernels/isa/attention_sse2.cpp — SSE2 (baseline x86-64 flags) instantiations of the flash-attention kernels.
// Explicit instantiations only: see attention_flash_impl.hpp and softmax_simd.hpp for why.
#include "kernels/attention_flash_impl.hpp"

namespace simdattn::detail {
SIMDATTN_FLASH_INSTANTIATIONS(template, FlashArchSse2)
}  // namespace simdattn::detail
