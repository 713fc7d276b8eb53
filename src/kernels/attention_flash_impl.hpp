// src/kernels/attention_flash_impl.hpp — bodies of the flash-attention kernels. Included ONLY by
// src/kernels/isa/attention_<isa>.cpp, which instantiate them with that ISA's -m flags. No STL,
// no oneTBB, no allocation, no exceptions; every helper is a template on Arch.
//
// Layout of one (query block, key block) step, per panel of NR queries (one register group):
//   S^T[k][q] = K[k] · (scale Q[q])   MR keys x NR queries per micro-tile, K broadcast from its
//                                     rows, packed Q^T loaded as vectors; the reduction runs
//                                     over head_dim, in order.
//   online softmax, vectorised over queries: m' = max(m, max_k S^T[k]), alpha = exp(m - m'),
//                                     P = exp(S^T - m'), l = alpha l + sum_k P (un-dropped).
//   O^T[d][q] = alpha O^T[d][q] + sum_k V[k][d] (P[k][q] drop[k][q])
//                                     MR head-dim rows x NR queries per micro-tile, V broadcast
//                                     from its rows, P loaded as vectors.
// Key micro-tiles entirely above the panel's last query are never computed; the causal mask is
// applied only to micro-tiles that straddle the diagonal.
#pragma once

#include <cassert>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "kernels/attention_flash.hpp"
#include "kernels/attention_params.hpp"
#include "kernels/softmax_simd.hpp"

namespace simdattn::detail {
namespace flash_impl {

template <class Arch>
using Vec = xsimd::batch<float, Arch>;

template <class Arch>
inline constexpr std::int64_t kW = static_cast<std::int64_t>(Vec<Arch>::size);
template <class Arch>
inline constexpr std::int64_t kNr = kFlashNv * kW<Arch>;

/// S^T micro-tile of R keys (rows of k, stride ldk) against one packed query panel; masks the
/// keys above each query's position when `mask`, stores the R rows to s (stride NR) and folds
/// them into the running column maxima bm.
template <class Arch, int R>
inline void score_tile(const float* qt, const float* k, std::int64_t ldk, std::int64_t head_dim,
                       bool mask, std::int64_t k_pos, std::int64_t q_pos, float* s,
                       Vec<Arch> (&bm)[kFlashNv]) noexcept {
  using V = Vec<Arch>;
  constexpr int NV = kFlashNv;
  constexpr std::int64_t W = kW<Arch>, NR = kNr<Arch>;
  V acc[R][NV];
  SIMDATTN_FLASH_UNROLL for (int r = 0; r < R; ++r)
    SIMDATTN_FLASH_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = V(0.0f);
  const float* kr[R];
  SIMDATTN_FLASH_UNROLL for (int r = 0; r < R; ++r) kr[r] = k + r * ldk;
  for (std::int64_t d = 0; d < head_dim; ++d) {
    V q[NV];
    SIMDATTN_FLASH_UNROLL for (int v = 0; v < NV; ++v) q[v] = V::load_aligned(qt + d * NR + v * W);
    SIMDATTN_FLASH_UNROLL for (int r = 0; r < R; ++r) {
      const V kb(kr[r][d]);
      SIMDATTN_FLASH_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = flash_madd<Arch>(kb, q[v], acc[r][v]);
    }
  }
  if (mask) {
    // Key k_pos + r is hidden from lane l of group v when k_pos + r > q_pos + v W + l, i.e.
    // when rel + r - v W > l with rel = k_pos - q_pos. A masked tile straddles the diagonal,
    // so rel is within a tile's width of 0 and exact as a float at any absolute position.
    const V neg_inf(-__builtin_huge_valf());
    const V iota = lane_iota<Arch>();
    const std::int64_t rel = k_pos - q_pos;
    SIMDATTN_FLASH_UNROLL for (int v = 0; v < NV; ++v)
      SIMDATTN_FLASH_UNROLL for (int r = 0; r < R; ++r)
        acc[r][v] = xsimd::select(V(static_cast<float>(rel + r - v * W)) > iota, neg_inf, acc[r][v]);
  }
  SIMDATTN_FLASH_UNROLL for (int r = 0; r < R; ++r)
    SIMDATTN_FLASH_UNROLL for (int v = 0; v < NV; ++v) {
      acc[r][v].store_aligned(s + r * NR + v * W);
      bm[v] = xsimd::max(bm[v], acc[r][v]);
    }
}

/// O^T micro-tile of R head-dim rows (ot, stride ld) x one query panel: rescaled by alpha, then
/// sum over keys k < keys of V[k][r] * P[k][q] (v: first value row at this tile's column,
/// stride ldv; p: stride NR). Keys from `masked_from` on straddle the diagonal: key k is seen
/// by lane q only when k - q_rel <= q, and adds nothing to the lanes that cannot see it, not
/// even 0 * V (which is NaN for a non-finite V): a hidden token's NaN or Inf never reaches a
/// query. (The book's 0 * NaN, for plain forwards, is the driver's business.)
template <class Arch, int R>
inline void pv_tile(const float* p, std::int64_t keys, std::int64_t masked_from,
                    std::int64_t q_rel, const float* v, std::int64_t ldv, float* ot,
                    std::int64_t ld, const Vec<Arch> (&alpha)[kFlashNv]) noexcept {
  using V = Vec<Arch>;
  constexpr int NV = kFlashNv;
  constexpr std::int64_t W = kW<Arch>, NR = kNr<Arch>;
  V acc[R][NV];
  SIMDATTN_FLASH_UNROLL for (int r = 0; r < R; ++r)
    SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c)
      acc[r][c] = V::load_aligned(ot + r * ld + c * W) * alpha[c];
  for (std::int64_t k = 0; k < masked_from; ++k) {
    V pk[NV];
    SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c) pk[c] = V::load_aligned(p + k * NR + c * W);
    const float* vk = v + k * ldv;
    SIMDATTN_FLASH_UNROLL for (int r = 0; r < R; ++r) {
      const V vb(vk[r]);
      SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c) acc[r][c] = flash_madd<Arch>(vb, pk[c], acc[r][c]);
    }
  }
  const V iota = lane_iota<Arch>();
  for (std::int64_t k = masked_from; k < keys; ++k) {
    V pk[NV];
    decltype(iota == iota) sees[NV];
    SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c) {
      pk[c] = V::load_aligned(p + k * NR + c * W);
      sees[c] = iota >= V(static_cast<float>(k - q_rel - c * W));  // small: exact
    }
    const float* vk = v + k * ldv;
    SIMDATTN_FLASH_UNROLL for (int r = 0; r < R; ++r) {
      const V vb(vk[r]);
      SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c)
        acc[r][c] = xsimd::select(sees[c], flash_madd<Arch>(vb, pk[c], acc[r][c]), acc[r][c]);
    }
  }
  SIMDATTN_FLASH_UNROLL for (int r = 0; r < R; ++r)
    SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c) acc[r][c].store_aligned(ot + r * ld + c * W);
}

/// Issues the prefetch hints' rows [part * rows / parts, (part + 1) * rows / parts).
template <class Arch>
inline void prefetch_share(const FlashPrefetch (&hints)[kFlashPrefetchSlots], std::int64_t part,
                           std::int64_t parts) noexcept {
  for (const FlashPrefetch& h : hints) {
    if (h.base == nullptr) continue;
    const std::int64_t r1 = h.rows * (part + 1) / parts;
    for (std::int64_t r = h.rows * part / parts; r < r1; ++r) {
      const char* row = reinterpret_cast<const char*>(h.base + r * h.stride);
      for (std::int64_t b = 0; b < h.row_floats * 4; b += 64) __builtin_prefetch(row + b, 0, 3);
    }
  }
}

}  // namespace flash_impl

template <class Arch>
void flash_pack_queries(const FlashPackArgs& a) {
  using V = flash_impl::Vec<Arch>;
  constexpr int W = static_cast<int>(flash_impl::kW<Arch>);
  constexpr std::int64_t NR = flash_impl::kNr<Arch>;
  assert(a.q != nullptr && a.qt != nullptr && a.rows >= 1 && a.head_dim >= 1 &&
         a.ldq >= a.head_dim);
  const std::int64_t hd = a.head_dim;
  const std::int64_t full_d = hd - hd % W;
  const std::int64_t groups = (a.rows + W - 1) / W;  // W queries at a time
  const V scale(a.scale);
  for (std::int64_t g = 0; g < groups; ++g) {
    // Query group g is lanes (g % NV) * W .. of panel g / NV.
    float* panel = a.qt + (g / kFlashNv) * hd * NR + (g % kFlashNv) * W;
    const std::int64_t j0 = g * W;
    const std::int64_t valid = a.rows - j0 < W ? a.rows - j0 : W;
    // W x W blocks: W query rows in, W head-dim rows of the panel out.
    for (std::int64_t d0 = 0; d0 < full_d; d0 += W) {
      V t[W];
      for (int i = 0; i < W; ++i)
        t[i] = i < valid ? V::load_unaligned(a.q + (j0 + i) * a.ldq + d0) * scale : V(0.0f);
      transpose_square<Arch, W>(t);
      for (int k = 0; k < W; ++k) t[k].store_aligned(panel + (d0 + k) * NR);
    }
    for (std::int64_t d = full_d; d < hd; ++d)
      for (int i = 0; i < W; ++i)
        panel[d * NR + i] = i < valid ? a.scale * a.q[(j0 + i) * a.ldq + d] : 0.0f;
  }
  // Whole groups past the last row (the panel's padding) are zero.
  const std::int64_t panels = (a.rows + NR - 1) / NR;
  for (std::int64_t g = groups; g < panels * kFlashNv; ++g) {
    float* panel = a.qt + (g / kFlashNv) * hd * NR + (g % kFlashNv) * W;
    for (std::int64_t d = 0; d < hd; ++d) V(0.0f).store_aligned(panel + d * NR);
  }
}

template <class Arch>
void flash_attention_block(const FlashBlockArgs& a) {
  using V = flash_impl::Vec<Arch>;
  constexpr int MR = kFlashMr, NV = kFlashNv;
  constexpr std::int64_t W = flash_impl::kW<Arch>, NR = flash_impl::kNr<Arch>;
  assert(a.qt != nullptr && a.k != nullptr && a.v != nullptr && a.s != nullptr &&
         a.m != nullptr && a.l != nullptr && a.ot != nullptr);
  assert(a.q_rows >= 1 && a.k_rows >= 1 && a.head_dim >= 1 && a.ld_state % NR == 0 &&
         a.ld_state >= a.q_rows && (a.drop == nullptr || a.ld_drop >= a.ld_state));
  const std::int64_t hd = a.head_dim;
  const V neg_inf(-__builtin_huge_valf()), zero(0.0f);
  const std::int64_t panels = (a.q_rows + NR - 1) / NR;

  for (std::int64_t p = 0; p < panels; ++p) {
    flash_impl::prefetch_share<Arch>(a.prefetch, p, panels);
    const std::int64_t q0 = p * NR;  // first query column of the panel in the block
    const std::int64_t q_valid = a.q_rows - q0 < NR ? a.q_rows - q0 : NR;
    const std::int64_t q_first = a.q_pos + q0;
    std::int64_t keys = a.k_rows;
    if (a.causal) {
      // Keys past the panel's last real query are masked for every query in it: skip them.
      const std::int64_t visible = q_first + q_valid - a.k_pos;
      if (visible <= 0) continue;
      if (visible < keys) keys = visible;
    }

    // 1. S^T = K Q^T (pre-scaled), causal mask on the straddling micro-tiles, column maxima.
    const float* qt = a.qt + p * hd * NR;
    V bm[NV];
    SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c) bm[c] = neg_inf;
    for (std::int64_t kk = 0; kk < keys; kk += MR) {
      const std::int64_t rows = keys - kk < MR ? keys - kk : MR;
      const std::int64_t kp = a.k_pos + kk;
      const bool mask = a.causal && kp + rows - 1 > q_first;
      const float* kr = a.k + kk * a.ldk;
      float* s = a.s + kk * NR;
      switch (rows) {
        case 4: flash_impl::score_tile<Arch, 4>(qt, kr, a.ldk, hd, mask, kp, q_first, s, bm); break;
        case 3: flash_impl::score_tile<Arch, 3>(qt, kr, a.ldk, hd, mask, kp, q_first, s, bm); break;
        case 2: flash_impl::score_tile<Arch, 2>(qt, kr, a.ldk, hd, mask, kp, q_first, s, bm); break;
        default: flash_impl::score_tile<Arch, 1>(qt, kr, a.ldk, hd, mask, kp, q_first, s, bm); break;
      }
    }
    static_assert(MR == 4, "score_tile dispatch covers 1..4 rows");

    // 2. Online softmax, vertical over the panel's queries. An all-masked (-inf) column keeps
    //    m = -inf; exponentials are then taken against 0 so they stay 0 instead of NaN.
    V alpha[NV], msafe[NV], lsum[NV];
    SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c) {
      const V m_old = V::load_aligned(a.m + q0 + c * W);
      const V m_new = xsimd::max(m_old, bm[c]);
      msafe[c] = xsimd::select(m_new == neg_inf, zero, m_new);
      alpha[c] = flash_exp<Arch>(m_old - msafe[c]);
      m_new.store_aligned(a.m + q0 + c * W);
      lsum[c] = V::load_aligned(a.l + q0 + c * W) * alpha[c];
    }
    // The running sum takes the un-dropped probabilities; dropout scales what P·V accumulates:
    // (sum_k p_k keep_k v_k) / (sum_k p_k) == sum_k (p_k / l) keep_k v_k, the reference's
    // dropout applied to normalised weights.
    float* const sbuf = a.s;
    if (a.drop == nullptr) {
      for (std::int64_t k = 0; k < keys; ++k) {
        float* s = sbuf + k * NR;
        SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c) {
          const V e = flash_exp<Arch>(V::load_aligned(s + c * W) - msafe[c]);
          lsum[c] += e;
          e.store_aligned(s + c * W);
        }
      }
    } else {
      const float* const drop = a.drop + q0;
      const std::int64_t ld_drop = a.ld_drop;
      for (std::int64_t k = 0; k < keys; ++k) {
        float* s = sbuf + k * NR;
        SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c) {
          const V e = flash_exp<Arch>(V::load_aligned(s + c * W) - msafe[c]);
          lsum[c] += e;
          (e * V::load_unaligned(drop + k * ld_drop + c * W)).store_aligned(s + c * W);
        }
      }
    }
    SIMDATTN_FLASH_UNROLL for (int c = 0; c < NV; ++c) lsum[c].store_aligned(a.l + q0 + c * W);

    // 3. O^T = alpha O^T + V^T P^T, MR head-dim rows at a time. Keys [0, masked_from) are
    //    seen by every query of the panel; the rest only by some (causal panels).
    const std::int64_t q_rel = q_first - a.k_pos;  // key k is seen by lane q iff k <= q_rel + q
    std::int64_t masked_from = keys;
    if (a.causal && q_rel + 1 < keys) masked_from = q_rel + 1 > 0 ? q_rel + 1 : 0;
    float* ot = a.ot + q0;
    for (std::int64_t dd = 0; dd < hd; dd += MR) {
      const std::int64_t rows = hd - dd < MR ? hd - dd : MR;
      float* o = ot + dd * a.ld_state;
      const float* vcol = a.v + dd;
      switch (rows) {
        case 4: flash_impl::pv_tile<Arch, 4>(a.s, keys, masked_from, q_rel, vcol, a.ldv, o, a.ld_state, alpha); break;
        case 3: flash_impl::pv_tile<Arch, 3>(a.s, keys, masked_from, q_rel, vcol, a.ldv, o, a.ld_state, alpha); break;
        case 2: flash_impl::pv_tile<Arch, 2>(a.s, keys, masked_from, q_rel, vcol, a.ldv, o, a.ld_state, alpha); break;
        default: flash_impl::pv_tile<Arch, 1>(a.s, keys, masked_from, q_rel, vcol, a.ldv, o, a.ld_state, alpha); break;
      }
    }
  }
}

template <class Arch>
void flash_attention_finish(const FlashFinishArgs& a) {
  using V = flash_impl::Vec<Arch>;
  constexpr int W = static_cast<int>(flash_impl::kW<Arch>);
  assert(a.ot != nullptr && a.l != nullptr && a.out != nullptr && a.rows >= 1 &&
         a.head_dim >= 1 && a.ld_state >= a.rows && a.ld_state % W == 0 && a.ldo >= a.head_dim);
  const std::int64_t hd = a.head_dim, ld = a.ld_state;
  const std::int64_t full_d = hd - hd % W;
  for (std::int64_t i0 = 0; i0 < a.rows; i0 += W) {
    const std::int64_t valid = a.rows - i0 < W ? a.rows - i0 : W;
    // The output rows are usually cold and a page apart: ask for the next group's early.
    for (std::int64_t i = i0 + W; i < i0 + 2 * W && i < a.rows; ++i)
      for (std::int64_t b = 0; b < hd * 4; b += 64)
        __builtin_prefetch(reinterpret_cast<const char*>(a.out + i * a.ldo) + b, 1, 3);
    // l == 0: nothing was attended to (every score -inf); the row is zeros, not 0/0. A NaN l
    // gives a NaN inverse, so NaN rows stay NaN.
    const V l = V::load_aligned(a.l + i0);
    const V inv = xsimd::select(l == V(0.0f), V(0.0f), V(1.0f) / l);
    alignas(64) float inv_lanes[W];
    inv.store_aligned(inv_lanes);
    // W x W blocks: W head-dim rows of O^T in, W output rows out.
    for (std::int64_t d0 = 0; d0 < full_d; d0 += W) {
      V t[W];
      for (int k = 0; k < W; ++k) t[k] = V::load_aligned(a.ot + (d0 + k) * ld + i0) * inv;
      transpose_square<Arch, W>(t);
      for (int i = 0; i < valid; ++i) t[i].store_unaligned(a.out + (i0 + i) * a.ldo + d0);
    }
    for (std::int64_t d = full_d; d < hd; ++d)
      for (int i = 0; i < valid; ++i)
        a.out[(i0 + i) * a.ldo + d] = a.ot[d * ld + i0 + i] * inv_lanes[i];
  }
}

template <class Arch>
FlashTileShape flash_tile_shape() {
  return FlashTileShape{flash_impl::kNr<Arch>, kFlashMr};
}

}  // namespace simdattn::detail
