// src/kernels/gemm_ukernel_impl.hpp — bodies of the xsimd f32 GEMM kernels. Included ONLY by
// src/kernels/isa/gemm_<isa>.cpp, which instantiate them with that ISA's -m flags.
//
// Why everything here is a template on Arch (or file-local): an inline non-template helper
// would be emitted as a weak symbol in every ISA object, and the linker may keep the AVX2 copy
// and call it from SSE2 code. No STL, no oneTBB, no allocation, no exceptions.
#pragma once

#include <cassert>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "kernels/gemm_params.hpp"
#include "kernels/gemm_ukernel.hpp"
#include "kernels/softmax_simd.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#define SIMDATTN_UNROLL _Pragma("GCC unroll 32")
#elif defined(__clang__)
#define SIMDATTN_UNROLL _Pragma("unroll")
#else
#define SIMDATTN_UNROLL
#endif

namespace simdattn::detail {

/// x * y + z with one rounding where the ISA has FMA: the kernels' shared helper.
template <class Arch>
inline xsimd::batch<float, Arch> gemm_madd(const xsimd::batch<float, Arch>& x,
                                           const xsimd::batch<float, Arch>& y,
                                           const xsimd::batch<float, Arch>& z) noexcept {
  return flash_madd<Arch>(x, y, z);
}

/// Applies the epilogue to MR x (NV vectors) accumulators and stores them to c (all lanes
/// written; the caller routes partial tiles through a stack buffer). Loops over the tile are
/// fully unrolled so the accumulators stay in registers.
template <class Arch, int MR, int NV>
inline void gemm_store_tile(const xsimd::batch<float, Arch> (&acc)[MR][NV], float* c,
                            std::int64_t ldc, const GemmEpilogue& ep) noexcept {
  using V = xsimd::batch<float, Arch>;
  constexpr int W = static_cast<int>(V::size);
  const V alpha(ep.alpha);
  if (ep.beta == 0.0f) {  // never read C
    if (ep.bias != nullptr) {
      SIMDATTN_UNROLL for (int v = 0; v < NV; ++v) {
        const V bias = V::load_unaligned(ep.bias + v * W);
        SIMDATTN_UNROLL for (int i = 0; i < MR; ++i)
          gemm_madd<Arch>(acc[i][v], alpha, bias).store_unaligned(c + i * ldc + v * W);
      }
    } else {
      SIMDATTN_UNROLL for (int i = 0; i < MR; ++i)
        SIMDATTN_UNROLL for (int v = 0; v < NV; ++v)
          (acc[i][v] * alpha).store_unaligned(c + i * ldc + v * W);
    }
  } else {
    const V beta(ep.beta);
    SIMDATTN_UNROLL for (int v = 0; v < NV; ++v) {
      const V bias = ep.bias != nullptr ? V::load_unaligned(ep.bias + v * W) : V(0.0f);
      SIMDATTN_UNROLL for (int i = 0; i < MR; ++i) {
        float* cp = c + i * ldc + v * W;
        const V scaled_c = gemm_madd<Arch>(beta, V::load_unaligned(cp), bias);
        gemm_madd<Arch>(acc[i][v], alpha, scaled_c).store_unaligned(cp);
      }
    }
  }
}

/// Stores a tile whose valid region is m_valid x n_valid: full tiles go straight to C; partial
/// ones go through a stack tile so no byte outside the caller's C (or bias) is touched, and with
/// the same arithmetic as a full tile, so an element's bits never depend on where its tile sits.
template <class Arch, int MR, int NV>
inline void gemm_store_tile_masked(const xsimd::batch<float, Arch> (&acc)[MR][NV], float* c,
                                   std::int64_t ldc, std::int64_t m_valid, std::int64_t n_valid,
                                   const GemmEpilogue& ep) noexcept {
  constexpr int NR = NV * static_cast<int>(xsimd::batch<float, Arch>::size);
  if (m_valid == MR && n_valid == NR) {
    gemm_store_tile<Arch, MR, NV>(acc, c, ldc, ep);
    return;
  }
  alignas(64) float tile[MR * NR];
  alignas(64) float bias[NR];
  GemmEpilogue local = ep;
  if (ep.beta != 0.0f) {
    // Lanes outside the valid region are zero, never uninitialised: they are computed and
    // then dropped.
    for (std::int64_t i = 0; i < MR; ++i)
      for (std::int64_t j = 0; j < NR; ++j)
        tile[i * NR + j] = (i < m_valid && j < n_valid) ? c[i * ldc + j] : 0.0f;
  }
  if (ep.bias != nullptr) {
    for (std::int64_t j = 0; j < NR; ++j) bias[j] = j < n_valid ? ep.bias[j] : 0.0f;
    local.bias = bias;
  }
  gemm_store_tile<Arch, MR, NV>(acc, tile, NR, local);
  for (std::int64_t i = 0; i < m_valid; ++i)
    for (std::int64_t j = 0; j < n_valid; ++j) c[i * ldc + j] = tile[i * NR + j];
}

/// The register tile shared by the microkernel and the small-M kernel: acc[i][v] accumulates
/// sum_p A(i, p) * B(p, v-th vector) over p < kc, in order, one FMA per step. A(i, p) is read at
/// a[i * a_row_stride + p * a_depth_stride] (packed: 1, MR; in place: lda, 1). Vector v of the
/// tile lies in panel (v * W) / PW at lane offset (v * W) % PW.
/// PREFETCH_B > 0 requests B that many depth steps ahead (small-M: B streams from DRAM).
/// hint/hint_lines: lines to request spread over the loop, one every kc / hint_lines steps.
template <class Arch, int MR, int NV, int PREFETCH_B = 0>
inline void gemm_accumulate(std::int64_t kc, const float* a, std::int64_t a_row_stride,
                            std::int64_t a_depth_stride, const float* b,
                            std::int64_t b_panel_stride,
                            xsimd::batch<float, Arch> (&acc)[MR][NV],
                            const float* hint = nullptr, std::int64_t hint_lines = 0) noexcept {
  using V = xsimd::batch<float, Arch>;
  constexpr int W = static_cast<int>(V::size);
  constexpr int PW = static_cast<int>(kGemmPanelWidth);
  static_assert(PW % W == 0 || W % PW == 0, "panel width and vector width must nest");
  static_assert((NV * W) % PW == 0, "a tile spans whole panels");
  SIMDATTN_UNROLL for (int i = 0; i < MR; ++i)
    SIMDATTN_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = V(0.0f);
  constexpr int kPanels = (NV * W + PW - 1) / PW;
  const char* hint_line = reinterpret_cast<const char*>(hint);
  const std::int64_t hint_every = hint_lines > 0 ? (kc / hint_lines > 0 ? kc / hint_lines : 1) : kc + 1;
  std::int64_t hint_at = 0;
  for (std::int64_t p = 0; p < kc; ++p) {
    if (p == hint_at && hint_lines > 0) {
      __builtin_prefetch(hint_line, 0, 3);
      hint_line += 64;
      --hint_lines;
      hint_at += hint_every;
    }
    if constexpr (PREFETCH_B > 0) {
      SIMDATTN_UNROLL for (int q = 0; q < kPanels; ++q)
        __builtin_prefetch(b + q * b_panel_stride + (p + PREFETCH_B) * PW, 0, 3);
    }
    V bv[NV];
    SIMDATTN_UNROLL for (int v = 0; v < NV; ++v)
      bv[v] = V::load_aligned(b + ((v * W) / PW) * b_panel_stride + p * PW + (v * W) % PW);
    const float* ap = a + p * a_depth_stride;
    SIMDATTN_UNROLL for (int i = 0; i < MR; ++i) {
      const V ai(ap[i * a_row_stride]);
      SIMDATTN_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = gemm_madd<Arch>(ai, bv[v], acc[i][v]);
    }
  }
}

template <class Arch, int MR, int NR>
void gemm_ukernel_f32(std::int64_t kc, const float* a_packed, const float* b_packed,
                      std::int64_t b_panel_stride, float* c, std::int64_t ldc,
                      std::int64_t m_valid, std::int64_t n_valid, const GemmEpilogue& epilogue) {
  using V = xsimd::batch<float, Arch>;
  constexpr int NV = NR / static_cast<int>(V::size);
  static_assert(NR % V::size == 0 && NR % kGemmPanelWidth == 0, "NR must cover whole panels");
  assert(kc >= 1 && m_valid >= 1 && m_valid <= MR && n_valid >= 1 && n_valid <= NR);
  // Why prefetch C: the driver walks MR-tall tiles down a column of C blocks, so the tile's C
  // rows (ldc apart) are rarely in L1 and an epilogue that waits for them costs ~10% on
  // K = 768 problems. Requesting them now hides that behind the kc-long FMA loop. (A prefetch
  // never faults, but only valid rows are requested anyway.)
  for (std::int64_t i = 0; i < m_valid; ++i) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
  }
  V acc[MR][NV];
  gemm_accumulate<Arch, MR, NV>(kc, a_packed, 1, MR, b_packed, b_panel_stride, acc,
                                epilogue.prefetch, epilogue.prefetch_lines);
  gemm_store_tile_masked<Arch, MR, NV>(acc, c, ldc, m_valid, n_valid, epilogue);
}

/// Panels a small-M pass of `rows` rows streams together: enough independent accumulators
/// (>= 8: two FMA pipes x 4 cycles of latency) without spilling. rows x panels x vectors per
/// panel stays <= 12 on 16-register ISAs and <= 16 on 32-register ones.
template <class Arch>
constexpr int gemm_small_m_panels(int rows) noexcept {
  constexpr int W = static_cast<int>(xsimd::batch<float, Arch>::size);
  constexpr int vectors_per_panel = static_cast<int>(kGemmPanelWidth) / W;
  const int per_panel = rows * vectors_per_panel;
  const int want = (8 + per_panel - 1) / per_panel;
  return want < 1 ? 1 : (want > 8 ? 8 : want);
}

/// One small-M pass: ROWS rows x NP panels, full depth, A read in place.
/// hint/hint_lines: lines of what the caller reads next, requested spread over the pass.
template <class Arch, int ROWS, int NP>
inline void gemm_small_m_pass(std::int64_t k, const float* a, std::int64_t lda, const float* b,
                              std::int64_t b_panel_stride, float* c, std::int64_t ldc,
                              std::int64_t n_valid, const GemmEpilogue& ep,
                              const float* hint = nullptr, std::int64_t hint_lines = 0) noexcept {
  using V = xsimd::batch<float, Arch>;
  constexpr int NV = NP * static_cast<int>(kGemmPanelWidth) / static_cast<int>(V::size);
  V acc[ROWS][NV];
  // Each depth step reads one 64-byte line per panel, straight from DRAM for a weight that is
  // not cache-resident. A pass over a single panel is one stream, which the hardware
  // prefetcher leaves latency-bound (measured: m = 4 decode 1.16 -> 0.83 ms with this), so
  // request lines 64 steps (4 KiB) ahead. Passes over several panels (m = 1, 2) stream well
  // on their own and only lose from the extra prefetches.
  gemm_accumulate<Arch, ROWS, NV, (NP == 1 ? 64 : 0)>(k, a, lda, 1, b, b_panel_stride, acc,
                                                      hint, hint_lines);
  gemm_store_tile_masked<Arch, ROWS, NV>(acc, c, ldc, ROWS, n_valid, ep);
}

/// All of n (from panel 0 of b) for ROWS rows: groups of NP panels, then single panels for the
/// remainder so no pass reads a panel past the last one.
/// hint/hint_lines (contiguous 64-byte lines to request while computing) are shared evenly
/// among the passes.
template <class Arch, int ROWS>
inline void gemm_small_m_rows(std::int64_t k, const float* a, std::int64_t lda, const float* b,
                              std::int64_t b_panel_stride, std::int64_t n, float* c,
                              std::int64_t ldc, const GemmEpilogue& ep,
                              const float* hint = nullptr, std::int64_t hint_lines = 0) noexcept {
  constexpr int NP = gemm_small_m_panels<Arch>(ROWS);
  constexpr std::int64_t PW = kGemmPanelWidth;
  const std::int64_t panels = (n + PW - 1) / PW;
  const std::int64_t groups = panels / NP;
  std::int64_t passes_left = groups + (panels - groups * NP);
  std::int64_t p = 0;
  GemmEpilogue local = ep;
  for (; p + NP <= panels; p += NP) {
    local.bias = ep.bias != nullptr ? ep.bias + p * PW : nullptr;
    const std::int64_t nv = n - p * PW < NP * PW ? n - p * PW : NP * PW;
    const std::int64_t lines = hint_lines / passes_left--;
    gemm_small_m_pass<Arch, ROWS, NP>(k, a, lda, b + p * b_panel_stride, b_panel_stride,
                                      c + p * PW, ldc, nv, local, hint, lines);
    hint += lines * 16;  // 16 floats per 64-byte line
    hint_lines -= lines;
  }
  for (; p < panels; ++p) {
    local.bias = ep.bias != nullptr ? ep.bias + p * PW : nullptr;
    const std::int64_t nv = n - p * PW < PW ? n - p * PW : PW;
    const std::int64_t lines = hint_lines / passes_left--;
    gemm_small_m_pass<Arch, ROWS, 1>(k, a, lda, b + p * b_panel_stride, b_panel_stride,
                                     c + p * PW, ldc, nv, local, hint, lines);
    hint += lines * 16;  // 16 floats per 64-byte line
    hint_lines -= lines;
  }
}

/// Row counts 1..MAX_ROWS resolved at compile time (a recursive template on Arch, so no
/// non-template code is shared between ISA objects).
template <class Arch, int ROWS, int MAX_ROWS>
inline void gemm_small_m_dispatch_rows(std::int64_t rows, std::int64_t k, const float* a,
                                       std::int64_t lda, const float* b,
                                       std::int64_t b_panel_stride, std::int64_t n, float* c,
                                       std::int64_t ldc, const GemmEpilogue& ep,
                                       const float* hint, std::int64_t hint_lines) noexcept {
  if constexpr (ROWS <= MAX_ROWS) {
    if (rows == ROWS) {
      gemm_small_m_rows<Arch, ROWS>(k, a, lda, b, b_panel_stride, n, c, ldc, ep, hint,
                                    hint_lines);
      return;
    }
    gemm_small_m_dispatch_rows<Arch, ROWS + 1, MAX_ROWS>(rows, k, a, lda, b, b_panel_stride, n,
                                                          c, ldc, ep, hint, hint_lines);
  }
}

template <class Arch>
void gemm_small_m_f32(std::int64_t m, std::int64_t k, const float* a, std::int64_t lda,
                      const float* b_packed, std::int64_t b_panel_stride, std::int64_t n,
                      float* c, std::int64_t ldc, const GemmEpilogue& epilogue) {
  // Passes of at most MAX_ROWS rows; for m > MAX_ROWS the later passes re-read the panel
  // group from L1/L2, not memory: B is streamed from memory once.
  constexpr int MAX_ROWS = GemmTile<Arch>::small_m_rows;
  assert(m >= 1 && m <= GemmTile<Arch>::small_m_max && k >= 1 && n >= 1);
  // Process the panel groups in the outer loop and the row passes inside, so a group is hot
  // in cache when the second pass over it starts.
  constexpr std::int64_t PW = kGemmPanelWidth;
  const std::int64_t panels = (n + PW - 1) / PW;
  const std::int64_t passes = (m + MAX_ROWS - 1) / MAX_ROWS;
  // A chunk that takes several row passes is re-read from L2 while the next one is requested:
  // ~128 KiB each (two fit any L2), but at least the widest pass's panel group, so no pass
  // falls back to single panels. One pass streams its chunk once: any size does.
  constexpr std::int64_t kWidestPass = gemm_small_m_panels<Arch>(1);
  const std::int64_t fit = (std::int64_t{128} << 10) / (k * PW * 4);
  const std::int64_t chunk_panels =
      passes == 1 ? 8 : (fit < kWidestPass ? kWidestPass : (fit > 8 ? 8 : fit));
  for (std::int64_t p0 = 0; p0 < panels; p0 += chunk_panels) {
    const std::int64_t n_chunk = n - p0 * PW < chunk_panels * PW ? n - p0 * PW : chunk_panels * PW;
    GemmEpilogue ep = epilogue;
    if (ep.bias != nullptr) ep.bias += p0 * PW;
    ep.prefetch = nullptr;
    ep.prefetch_lines = 0;
    // What is read next is requested while this chunk computes, so memory overlaps the FMAs
    // instead of following them: the next chunk (only when the chunk takes several row passes;
    // a single pass is a stream of its own), or after the last chunk the caller's hint (the
    // next task's B). One line per 64-byte panel row.
    const float* hint = nullptr;
    std::int64_t hint_lines = 0;
    if (p0 + chunk_panels < panels) {
      if (passes > 1) {
        hint = b_packed + (p0 + chunk_panels) * b_panel_stride;
        const std::int64_t next = panels - p0 - chunk_panels;
        hint_lines = (next < chunk_panels ? next : chunk_panels) * k;
      }
    } else {
      hint = epilogue.prefetch;
      hint_lines = epilogue.prefetch_lines;
    }
    std::int64_t passes_left = passes;
    for (std::int64_t r = 0; r < m; r += MAX_ROWS) {
      const std::int64_t rows = m - r < MAX_ROWS ? m - r : MAX_ROWS;
      const std::int64_t lines = hint_lines / passes_left--;
      gemm_small_m_dispatch_rows<Arch, 1, MAX_ROWS>(rows, k, a + r * lda, lda,
                                                    b_packed + p0 * b_panel_stride,
                                                    b_panel_stride, n_chunk,
                                                    c + r * ldc + p0 * PW, ldc, ep, hint, lines);
      if (hint != nullptr) hint += lines * 16;
      hint_lines -= lines;
    }
  }
}

}  // namespace simdattn::detail
