// src/kernels/gemm_ukernel.hpp — declarations of the xsimd f32 GEMM kernels and the per-ISA
// instantiations that exist (extern template). Bodies live in gemm_ukernel_impl.hpp, which only
// the per-ISA translation units (src/kernels/isa/gemm_<isa>.cpp) include, so baseline code such
// as the dispatcher can take the kernels' addresses without ever compiling an AVX body.
#pragma once

#include <cstdint>

#include "kernels/gemm_params.hpp"
#include "kernels/isa_list.hpp"

namespace simdattn::detail {

// Register tiles (MR x NR). NR is a multiple of kGemmPanelWidth so every ISA reads the same
// packed B; the tile is chosen so accumulators + B vectors + one broadcast fit the register file:
//   sse2    3 x 16: 12 xmm accumulators (of 16); B is folded into mulps as a memory operand.
//   avx2    6 x 16: 12 ymm accumulators + 2 B + 1 broadcast = 15 of 16 (BLIS Zen config). 12
//           independent FMA chains cover Zen 3's 2 pipes x 4-cycle latency (>= 8 needed).
//   avx512 14 x 32: 28 zmm accumulators + 2 B + 1 broadcast = 31 of 32; 32 columns = 2 panels.
//   neon64  6 x 16: 24 q accumulators + 4 B + 1 broadcast = 29 of 32.
template <class Arch>
struct GemmTile;
//
// The small-M (decode) kernels: small_m_max is the largest m they take (above it the packed,
// blocked path wins, or the driver runs row chunks), small_m_rows the rows one pass keeps in
// registers over its panels (more rows take several passes over a cache-hot panel group).
//   sse2/avx2/neon64: m <= 8 in passes of mr rows.
//   avx512: m <= 16 in one pass of up to 16 rows over one 16-lane panel: 16 accumulators + B +
//           broadcasts fit 32 zmm. What it buys is m = 9..16 off the blocked path, which packs
//           A (16 x 2304 x 768 from memory, 1 thread: 0.70-0.84 ms against 0.83-1.07 ms); one
//           16-row pass against two 8-row passes over a cache-hot panel group (the batched
//           decode's row chunks before) measured the same (0.72-0.96 ms each, six pairs).
template <>
struct GemmTile<ArchSse2> { static constexpr int mr = 3, nr = 16, small_m_max = 8, small_m_rows = 3; };
template <>
struct GemmTile<ArchAvx2> { static constexpr int mr = 6, nr = 16, small_m_max = 8, small_m_rows = 6; };
template <>
struct GemmTile<ArchAvx512> {
  static constexpr int mr = 14, nr = 32, small_m_max = 16, small_m_rows = 16;
};
#if defined(SIMDATTN_COMPILED_NEON64)
template <>
struct GemmTile<ArchNeon64> { static constexpr int mr = 6, nr = 16, small_m_max = 8, small_m_rows = 6; };
#endif

/// f32_gemm_<MR>x<NR>__<arch>: see GemmUkernelFn for the contract.
template <class Arch, int MR, int NR>
void gemm_ukernel_f32(std::int64_t kc, const float* a_packed, const float* b_packed,
                      std::int64_t b_panel_stride, float* c, std::int64_t ldc,
                      std::int64_t m_valid, std::int64_t n_valid, const GemmEpilogue& epilogue);

/// f32_gemm_smallm__<arch>: see GemmSmallMFn for the contract (m <= GemmTile::small_m_max;
/// GemmTile::small_m_rows rows per pass, several passes over an L1/L2-resident panel group for
/// larger m).
template <class Arch>
void gemm_small_m_f32(std::int64_t m, std::int64_t k, const float* a, std::int64_t lda,
                      const float* b_packed, std::int64_t b_panel_stride, std::int64_t n,
                      float* c, std::int64_t ldc, const GemmEpilogue& epilogue);

// The instantiations that exist: SIMDATTN_GEMM_INSTANTIATIONS(extern template, Arch) here for
// every compiled ISA, SIMDATTN_GEMM_INSTANTIATIONS(template, Arch) in src/kernels/isa/gemm_<isa>.cpp.
// The 3x32 AVX2 tile is a test-only variant: it exercises the two-panel (NR = 2 x panel width)
// path of the AVX-512 kernel on machines without AVX-512.
#define SIMDATTN_GEMM_UKERNEL_SIG(ARCH, MR, NR)                                                  \
  void gemm_ukernel_f32<ARCH, MR, NR>(std::int64_t, const float*, const float*, std::int64_t, \
                                      float*, std::int64_t, std::int64_t, std::int64_t,         \
                                      const GemmEpilogue&)
#define SIMDATTN_GEMM_SMALLM_SIG(ARCH)                                                         \
  void gemm_small_m_f32<ARCH>(std::int64_t, std::int64_t, const float*, std::int64_t,         \
                              const float*, std::int64_t, std::int64_t, float*, std::int64_t, \
                              const GemmEpilogue&)
#define SIMDATTN_GEMM_INSTANTIATIONS(PREFIX, ARCH)                                   \
  PREFIX SIMDATTN_GEMM_UKERNEL_SIG(ARCH, GemmTile<ARCH>::mr, GemmTile<ARCH>::nr); \
  PREFIX SIMDATTN_GEMM_SMALLM_SIG(ARCH);
#define SIMDATTN_GEMM_EXTERN(isa, ARCH) SIMDATTN_GEMM_INSTANTIATIONS(extern template, ARCH)
SIMDATTN_FOR_EACH_COMPILED_ISA(SIMDATTN_GEMM_EXTERN)
#undef SIMDATTN_GEMM_EXTERN
#if defined(SIMDATTN_COMPILED_AVX2)
extern template SIMDATTN_GEMM_UKERNEL_SIG(ArchAvx2, 3, 32);
#endif

}  // namespace simdattn::detail
