// src/kernels/dequant.hpp — the per-ISA dequantizers of packed weights (f16, bf16, q8_0, q4_0 ->
// f32 panels; layouts in gemm_params.hpp) and their instantiations (extern template). Bodies
// in dequant_impl.hpp, included only by src/kernels/isa/dequant_<isa>.cpp.
//
// Two ways to read stored weights, each giving the bits of the f32 product against the decoded
// matrix (the tests check that):
//   large M  dequant_panels: a kc x NR micro-panel decoded once per task into L1/L2, then the
//            f32 microkernel unchanged (the decode cost is amortised over the M rows);
//   small M  gemm_small_m_stored: each row converted in registers inside the FMA loop, so the
//            weights stream from memory once, in their own type (decoding panel groups into
//            L2 first measured 1.6x slower than f32 at the decode shape).
#pragma once

#include <cstdint>

#include "kernels/gemm_params.hpp"
#include "kernels/gemm_ukernel.hpp"  // GemmTile
#include "kernels/isa_list.hpp"

namespace simdattn::detail {

template <class Arch, WeightStorage S>
void dequant_panels(const unsigned char* b_panels, std::int64_t panel_bytes, std::int64_t panels,
                    std::int64_t k0, std::int64_t kc, float* dst);

/// f16/bf16/q8_0/q4_0_gemm_smallm__<arch>: see GemmSmallMStoredFn. Row limits as the f32 small-M
/// kernel's (GemmTile<Arch>::small_m_max / small_m_rows).
template <class Arch, WeightStorage S>
void gemm_small_m_stored(std::int64_t m, std::int64_t k, const float* a, std::int64_t lda,
                         const unsigned char* b_packed, std::int64_t panel_bytes, std::int64_t n,
                         float* c, std::int64_t ldc, const GemmEpilogue& epilogue);

#define SIMDATTN_SMALLM_STORED_SIG(ARCH, S)                                                    \
  void gemm_small_m_stored<ARCH, S>(                                                           \
      std::int64_t, std::int64_t, const float*, std::int64_t, const unsigned char*,            \
      std::int64_t, std::int64_t, float*, std::int64_t, const GemmEpilogue&)

#define SIMDATTN_DEQUANT_INSTANTIATIONS(PREFIX, ARCH)                                       \
  PREFIX SIMDATTN_SMALLM_STORED_SIG(ARCH, WeightStorage::f16);                              \
  PREFIX SIMDATTN_SMALLM_STORED_SIG(ARCH, WeightStorage::bf16);                             \
  PREFIX SIMDATTN_SMALLM_STORED_SIG(ARCH, WeightStorage::q8_0);                             \
  PREFIX SIMDATTN_SMALLM_STORED_SIG(ARCH, WeightStorage::q4_0);                             \
  PREFIX void dequant_panels<ARCH, WeightStorage::f16>(const unsigned char*, std::int64_t, \
                                                       std::int64_t, std::int64_t,         \
                                                       std::int64_t, float*);              \
  PREFIX void dequant_panels<ARCH, WeightStorage::bf16>(const unsigned char*, std::int64_t, \
                                                        std::int64_t, std::int64_t,        \
                                                        std::int64_t, float*);             \
  PREFIX void dequant_panels<ARCH, WeightStorage::q8_0>(const unsigned char*, std::int64_t, \
                                                        std::int64_t, std::int64_t,        \
                                                        std::int64_t, float*);             \
  PREFIX void dequant_panels<ARCH, WeightStorage::q4_0>(const unsigned char*, std::int64_t, \
                                                        std::int64_t, std::int64_t,        \
                                                        std::int64_t, float*);

#define SIMDATTN_DEQUANT_EXTERN(isa, ARCH) SIMDATTN_DEQUANT_INSTANTIATIONS(extern template, ARCH)
SIMDATTN_FOR_EACH_COMPILED_ISA(SIMDATTN_DEQUANT_EXTERN)
#undef SIMDATTN_DEQUANT_EXTERN

}  // namespace simdattn::detail
