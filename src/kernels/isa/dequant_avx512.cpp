// src/kernels/isa/dequant_avx512.cpp — AVX-512 (-mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx512vl) instantiations of the weight dequantizers.
// Explicit instantiations only (see dequant_impl.hpp for why): this object is partially linked
// with the ISA's other objects and everything but the simdattn::detail kernels made local
// (src/CMakeLists.txt), so no inline function compiled here can stand in for another ISA's.
#include "kernels/dequant_impl.hpp"

namespace simdattn::detail {
SIMDATTN_DEQUANT_INSTANTIATIONS(template, ArchAvx512)
}  // namespace simdattn::detail
