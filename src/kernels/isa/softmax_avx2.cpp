// src/kernels/isa/softmax_avx2.cpp — AVX2+FMA3 (-mavx2 -mfma) instantiations of the f32 softmax kernels.
// Explicit instantiations only (see softmax_rows_impl.hpp for why): this object is partially linked
// with the ISA's other objects and everything but the simdattn::detail kernels made local
// (src/CMakeLists.txt), so no inline function compiled here can stand in for another ISA's.
#include "kernels/softmax_rows_impl.hpp"

namespace simdattn::detail {
SIMDATTN_SOFTMAX_INSTANTIATIONS(template, ArchAvx2)
}  // namespace simdattn::detail
