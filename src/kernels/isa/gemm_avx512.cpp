// src/kernels/isa/gemm_avx512.cpp — AVX-512 (F/CD/DQ/BW/VL) instantiations of the f32 GEMM
// kernels. Explicit instantiations only: see gemm_ukernel_impl.hpp for why.
#include "kernels/gemm_ukernel_impl.hpp"

namespace simdattn::detail {
template SIMDATTN_GEMM_UKERNEL_SIG(GemmArchAvx512, kGemmMrAvx512, kGemmNrAvx512);
template SIMDATTN_GEMM_SMALLM_SIG(GemmArchAvx512, kGemmMrAvx512);
}  // namespace simdattn::detail
