// src/kernels/isa/attention_neon64.cpp — AArch64 Advanced SIMD instantiations of the f32 flash-attention kernels.
// Explicit instantiations only (see attention_flash_impl.hpp for why): this object is partially linked
// with the ISA's other objects and everything but the simdattn::detail kernels made local
// (src/CMakeLists.txt), so no inline function compiled here can stand in for another ISA's.
#include "kernels/attention_flash_impl.hpp"

namespace simdattn::detail {
SIMDATTN_FLASH_INSTANTIATIONS(template, ArchNeon64)
}  // namespace simdattn::detail
