// src/kernels/isa/gemm_neon64.cpp — AArch64 Advanced SIMD instantiations of the f32 GEMM kernels.
// Explicit instantiations only: see gemm_ukernel_impl.hpp for why.
#include "kernels/gemm_ukernel_impl.hpp"

namespace simdattn::detail {
template SIMDATTN_GEMM_UKERNEL_SIG(GemmArchNeon64, kGemmMrNeon64, kGemmNrNeon64);
template SIMDATTN_GEMM_SMALLM_SIG(GemmArchNeon64, kGemmMrNeon64);
}  // namespace simdattn::detail
