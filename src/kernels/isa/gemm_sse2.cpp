// src/kernels/isa/gemm_sse2.cpp — SSE2 instantiations of the f32 GEMM kernels (baseline x86-64).
// Explicit instantiations only: see gemm_ukernel_impl.hpp for why nothing else may live here.
#include "kernels/gemm_ukernel_impl.hpp"

namespace simdattn::detail {
template SIMDATTN_GEMM_UKERNEL_SIG(GemmArchSse2, kGemmMrSse2, kGemmNrSse2);
template SIMDATTN_GEMM_SMALLM_SIG(GemmArchSse2, kGemmMrSse2);
}  // namespace simdattn::detail
