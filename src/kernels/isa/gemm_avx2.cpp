// src/kernels/isa/gemm_avx2.cpp — AVX2+FMA3 (-mavx2 -mfma) instantiations of the f32 GEMM kernels.
// Explicit instantiations only (see gemm_ukernel_impl.hpp for why): this object is partially linked
// with the ISA's other objects and everything but the simdattn::detail kernels made local
// (src/CMakeLists.txt), so no inline function compiled here can stand in for another ISA's.
#include "kernels/gemm_ukernel_impl.hpp"

namespace simdattn::detail {
SIMDATTN_GEMM_INSTANTIATIONS(template, ArchAvx2)
// Test-only: a two-panel tile, the AVX-512 kernel's layout, runnable on AVX2 machines.
template SIMDATTN_GEMM_UKERNEL_SIG(ArchAvx2, 3, 32);
}  // namespace simdattn::detail
