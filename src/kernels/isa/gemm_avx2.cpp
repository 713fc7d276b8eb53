// src/kernels/isa/gemm_avx2.cpp — AVX2+FMA3 instantiations of the f32 GEMM kernels (-mavx2 -mfma).
// Explicit instantiations only: see gemm_ukernel_impl.hpp for why nothing else may live here.
#include "kernels/gemm_ukernel_impl.hpp"

namespace simdattn::detail {
template SIMDATTN_GEMM_UKERNEL_SIG(GemmArchAvx2, kGemmMrAvx2, kGemmNrAvx2);
// Test-only: a two-panel tile, the AVX-512 kernel's layout, runnable on AVX2 machines.
template SIMDATTN_GEMM_UKERNEL_SIG(GemmArchAvx2, 3, 32);
template SIMDATTN_GEMM_SMALLM_SIG(GemmArchAvx2, kGemmMrAvx2);
}  // namespace simdattn::detail
