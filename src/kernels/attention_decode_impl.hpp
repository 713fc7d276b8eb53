// src/kernels/attention_decode_impl.hpp — body of the decode attention kernel. Included only by
// src/kernels/isa/decode_<isa>.cpp; every helper is a template on Arch (see softmax_simd.hpp).
#pragma once

#include "kernels/attention_decode.hpp"
#include "kernels/dequant_impl.hpp"  // the stored-row decoders
#include "kernels/softmax_simd.hpp"

namespace simdattn::detail {

namespace decode_impl {

/// Reads the W lanes [d, d + W) of a row (full()) or its last count < W lanes, zero-filled
/// (partial()). F32Rows: the cache's floats. StoredRows<S>: converted in registers from the
/// stored row, to the same values the exact decode gives, so the kernel's arithmetic, and its
/// bits, do not depend on how the cache is stored.
template <class Arch>
struct F32Rows {
  using V = xsimd::batch<float, Arch>;
  const float* base;
  const float* wrap;
  std::int64_t split, stride;
  const float* row = nullptr;
  void select(std::int64_t j) noexcept {
    row = j < split ? base + j * stride : wrap + (j - split) * stride;
  }
  V full(std::int64_t d) const noexcept { return V::load_unaligned(row + d); }
  V partial(std::int64_t d, std::int64_t count) const noexcept {
    return load_partial<Arch>(row + d, count, 0.0f);
  }
  /// Requests row j's `bytes` bytes into the cache.
  void prefetch(std::int64_t j, std::int64_t bytes) const noexcept {
    const char* p = reinterpret_cast<const char*>(j < split ? base + j * stride
                                                            : wrap + (j - split) * stride);
    for (std::int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
  }
};

/// HD > 0: the head dim is known at compile time (attention_row_fixed), so a q8_0 row's block
/// scales are converted by an unrolled loop the compiler keeps in registers.
template <class Arch, WeightStorage S, std::int64_t HD = 0>
struct StoredRows {
  using V = xsimd::batch<float, Arch>;
  const unsigned char* base;
  const unsigned char* wrap;
  std::int64_t split, stride, head_dim;
  const unsigned char* row = nullptr;
  float scale[16] = {};  // q8_0: the selected row's block scales (head_dim <= 512 here)
  bool scales_cached = false;
  void select(std::int64_t j) noexcept {
    row = j < split ? base + j * stride : wrap + (j - split) * stride;
    if constexpr (S == WeightStorage::q8_0) {
      if constexpr (HD > 0) {
        static_assert(HD % kQ8Block == 0 && HD <= 16 * kQ8Block, "whole q8_0 blocks");
        scales_cached = true;
        SIMDATTN_UNROLL for (std::int64_t b = 0; b < HD / kQ8Block; ++b) scale[b] = block_scale(b);
      } else {
        scales_cached = head_dim <= 16 * kQ8Block;
        if (scales_cached)
          for (std::int64_t b = 0; b < head_dim / kQ8Block; ++b) scale[b] = block_scale(b);
      }
    }
  }
  void prefetch(std::int64_t j, std::int64_t bytes) const noexcept {
    const unsigned char* p = j < split ? base + j * stride : wrap + (j - split) * stride;
    for (std::int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
  }
  float block_scale(std::int64_t b) const noexcept {
    std::uint16_t h;
    __builtin_memcpy(&h, row + b * kQ8KvBlockBytes, 2);
    return dequant_impl::f16_scalar<Arch>(h);
  }
  V full(std::int64_t d) const noexcept {
    if constexpr (S == WeightStorage::q8_0) {
      // W divides 32 on every ISA, so the lanes lie in one block.
      const std::int64_t b = d / kQ8Block;
      return dequant_impl::row_vector<Arch, S>(row + b * kQ8KvBlockBytes + 2 + d % kQ8Block, 0) *
             V(scales_cached ? scale[b] : block_scale(b));
    } else {
      return dequant_impl::row_vector<Arch, S>(row + 2 * d, 0);
    }
  }
  V partial(std::int64_t d, std::int64_t count) const noexcept {
    // Only f16/bf16 rows have tails (q8_0 rows are whole blocks of 32).
    alignas(64) float lanes[64] = {};
    for (std::int64_t i = 0; i < count; ++i) {
      std::uint16_t h;
      __builtin_memcpy(&h, row + 2 * (d + i), 2);
      lanes[i] = S == WeightStorage::f16 ? dequant_impl::f16_scalar<Arch>(h)
                                         : dequant_impl::bf16_scalar<Arch>(h);
    }
    return V::load_aligned(lanes);
  }
};

/// Vectors of head_dim a pass of the value loop keeps in registers.
inline constexpr int kValueBlock = 8;

/// Scores to weights in place: w_j = exp(s_j - max) / sum (times keep_j). An all -inf row has
/// nothing to attend to: its weights are 0 (exp(-inf - -inf) would be NaN).
template <class Arch>
inline void normalise_weights(float* scores, std::int64_t n, float max, const float* keep) {
  using V = xsimd::batch<float, Arch>;
  constexpr std::int64_t W = static_cast<std::int64_t>(V::size);
  const bool nothing = max == -__builtin_inff();
  const V vmax(max);
  V vsum(0.0f);
  std::int64_t j = 0;
  for (; j + W <= n; j += W) {
    const V e = nothing ? V(0.0f) : flash_exp<Arch>(V::load_unaligned(scores + j) - vmax);
    e.store_unaligned(scores + j);
    vsum += e;
  }
  if (j < n) {
    const V e = nothing ? V(0.0f)
                        : flash_exp<Arch>(load_partial<Arch>(scores + j, n - j, -__builtin_inff()) - vmax);
    store_partial<Arch>(e, scores + j, n - j);
    vsum += e;
  }
  const float inv = nothing ? 0.0f : 1.0f / xsimd::hadd(vsum);
  const V vinv(inv);
  for (j = 0; j + W <= n; j += W) {
    V w = V::load_unaligned(scores + j) * vinv;
    if (keep != nullptr) w *= V::load_unaligned(keep + j);
    w.store_unaligned(scores + j);
  }
  for (; j < n; ++j) {
    float w = scores[j] * inv;
    if (keep != nullptr) w *= keep[j];
    scores[j] = w;
  }
}

/// The kernel over any row source (see above).
template <class Arch, class KRows, class VRows>
inline void attention_row(const DecodeRowArgs& a, KRows k_rows, VRows v_rows) {
  using V = xsimd::batch<float, Arch>;
  constexpr std::int64_t W = static_cast<std::int64_t>(V::size);
  const std::int64_t hd = a.head_dim, n = a.keys;
  const float* q = a.q;

  // Each head's K and V are a few hundred KiB of contiguous rows, but the hardware prefetchers
  // stop at every 4 KiB page, and a batched decode switches streams every head: rows about
  // 4 KiB ahead are requested explicitly.
  const std::int64_t row_bytes = a.row_bytes > 0 ? a.row_bytes : hd * 4;
  const std::int64_t ahead = row_bytes >= 4096 ? 1 : 4096 / row_bytes;

  // Scores: one dot product per key along head_dim (two accumulators for two FMA chains).
  float max = -__builtin_inff();
  bool nan = false;
  for (std::int64_t j = 0; j < n; ++j) {
    if (j + ahead < n) k_rows.prefetch(j + ahead, row_bytes);
    k_rows.select(j);
    V acc0(0.0f), acc1(0.0f);
    std::int64_t d = 0;
    for (; d + 2 * W <= hd; d += 2 * W) {
      acc0 = flash_madd<Arch>(V::load_unaligned(q + d), k_rows.full(d), acc0);
      acc1 = flash_madd<Arch>(V::load_unaligned(q + d + W), k_rows.full(d + W), acc1);
    }
    for (; d + W <= hd; d += W)
      acc0 = flash_madd<Arch>(V::load_unaligned(q + d), k_rows.full(d), acc0);
    if (d < hd)
      acc0 = flash_madd<Arch>(load_partial<Arch>(q + d, hd - d, 0.0f), k_rows.partial(d, hd - d),
                              acc0);
    const float s = xsimd::hadd(acc0 + acc1) * a.scale;
    a.scores[j] = s;
    max = s > max ? s : max;  // NaN never wins a comparison: it is tracked apart
    nan |= __builtin_isnan(s);
  }
  if (nan) {
    // A NaN score makes every weight of the row NaN (the reference's softmax), so the whole
    // output row is NaN, even where the row's other scores are all -inf.
    for (std::int64_t d = 0; d < hd; ++d) a.out[d] = __builtin_nanf("");
    return;
  }

  normalise_weights<Arch>(a.scores, n, max, a.keep);

  // out = sum_j w_j v_j, accumulated key by key from 0.
  // The accumulators stay in registers, up to kValueBlock vectors of head_dim per pass over
  // the keys (a wider head takes several passes; its V rows are in cache by then): updating
  // `out` in memory for every key put a store-to-load round trip on each key's chain.
  float* out = a.out;
  std::int64_t d0 = 0;
  while (d0 + W <= hd) {
    const std::int64_t full = (hd - d0) / W;
    const std::int64_t nv = full < kValueBlock ? full : kValueBlock;
    V acc[kValueBlock];
    for (int i = 0; i < kValueBlock; ++i) acc[i] = V(0.0f);
    for (std::int64_t jj = 0; jj < n; ++jj) {
      if (d0 == 0 && jj + ahead < n) v_rows.prefetch(jj + ahead, row_bytes);
      const V vw(a.scores[jj]);
      v_rows.select(jj);
      if (nv == kValueBlock) {
        SIMDATTN_UNROLL for (int i = 0; i < kValueBlock; ++i)
          acc[i] = flash_madd<Arch>(vw, v_rows.full(d0 + i * W), acc[i]);
      } else {
        for (std::int64_t i = 0; i < nv; ++i)
          acc[i] = flash_madd<Arch>(vw, v_rows.full(d0 + i * W), acc[i]);
      }
    }
    for (std::int64_t i = 0; i < nv; ++i) acc[i].store_unaligned(out + d0 + i * W);
    d0 += nv * W;
  }
  if (d0 < hd) {
    V acc(0.0f);
    for (std::int64_t jj = 0; jj < n; ++jj) {
      v_rows.select(jj);
      acc = flash_madd<Arch>(V(a.scores[jj]), v_rows.partial(d0, hd - d0), acc);
    }
    store_partial<Arch>(acc, out + d0, hd - d0);
  }
}


/// The kernel for head_dim == NV * W (the common head widths; attention_row takes the others):
/// every loop over head_dim unrolled, the scores of W keys at a time reduced together by
/// lane_sums (one tree for every key, so a key's score does not depend on its place in the
/// group or on the number of keys), the weights normalised in one vector pass, and the value
/// accumulators in registers, up to kValueBlock vectors of head_dim per pass over the keys.
template <class Arch, int NV, class KRows, class VRows>
inline void attention_row_fixed(const DecodeRowArgs& a, KRows k_rows, VRows v_rows) {
  using V = xsimd::batch<float, Arch>;
  constexpr std::int64_t W = static_cast<std::int64_t>(V::size);
  // Value vectors per pass: the largest divisor of NV up to kValueBlock (12 on AVX2 at
  // head_dim 96: two passes of 6).
  constexpr int P = [] {
    int p = NV < kValueBlock ? NV : kValueBlock;
    while (NV % p != 0) --p;
    return p;
  }();
  const std::int64_t n = a.keys;
  const float* q = a.q;
  const std::int64_t row_bytes = a.row_bytes > 0 ? a.row_bytes : NV * W * 4;
  const std::int64_t ahead = row_bytes >= 4096 ? 1 : 4096 / row_bytes;  // see attention_row

  // Scores.
  auto dot = [&](std::int64_t j) {
    if (j + ahead < n) k_rows.prefetch(j + ahead, row_bytes);
    k_rows.select(j);
    V acc(0.0f);
    SIMDATTN_UNROLL for (int v = 0; v < NV; ++v)
      acc = flash_madd<Arch>(V::load_unaligned(q + v * W), k_rows.full(v * W), acc);
    return acc;
  };
  const V vscale(a.scale);
  V vmax(-__builtin_inff());
  auto vnan = xsimd::isnan(vmax);
  std::int64_t j0 = 0;
  for (; j0 + W <= n; j0 += W) {
    V acc[W];
    SIMDATTN_UNROLL for (int i = 0; i < W; ++i) acc[i] = dot(j0 + i);
    const V s = lane_sums<Arch>(acc) * vscale;
    s.store_unaligned(a.scores + j0);
    vmax = xsimd::max(vmax, s);
    vnan = vnan | xsimd::isnan(s);
  }
  alignas(64) float lanes[W];
  vmax.store_aligned(lanes);
  float max = -__builtin_inff();
  for (std::int64_t i = 0; i < W; ++i) max = lanes[i] > max ? lanes[i] : max;
  bool nan = xsimd::any(vnan);
  if (j0 < n) {
    V acc[W];
    for (std::int64_t i = 0; i < W; ++i) acc[i] = j0 + i < n ? dot(j0 + i) : V(0.0f);
    store_partial<Arch>(lane_sums<Arch>(acc) * vscale, a.scores + j0, n - j0);
    for (std::int64_t j = j0; j < n; ++j) {
      const float s = a.scores[j];
      max = s > max ? s : max;  // NaN never wins a comparison: it is tracked apart
      nan |= __builtin_isnan(s);
    }
  }
  if (nan) {
    for (std::int64_t d = 0; d < NV * W; ++d) a.out[d] = __builtin_nanf("");
    return;
  }

  normalise_weights<Arch>(a.scores, n, max, a.keep);

  // out = sum_j w_j v_j, key by key from 0, P vectors of head_dim per pass.
  SIMDATTN_UNROLL for (int d0 = 0; d0 < NV; d0 += P) {
    V acc[P];
    SIMDATTN_UNROLL for (int i = 0; i < P; ++i) acc[i] = V(0.0f);
    for (std::int64_t jj = 0; jj < n; ++jj) {
      if (d0 == 0 && jj + ahead < n) v_rows.prefetch(jj + ahead, row_bytes);
      const V w(a.scores[jj]);
      v_rows.select(jj);
      SIMDATTN_UNROLL for (int i = 0; i < P; ++i)
        acc[i] = flash_madd<Arch>(w, v_rows.full((d0 + i) * W), acc[i]);
    }
    SIMDATTN_UNROLL for (int i = 0; i < P; ++i) acc[i].store_unaligned(a.out + (d0 + i) * W);
  }
}

/// Head dims with a fixed kernel, as multiples of the vector width (at most 32 vectors).
template <class Arch, class Call>
inline bool with_fixed_head_dim(std::int64_t hd, Call&& call) {
  constexpr std::int64_t W = static_cast<std::int64_t>(xsimd::batch<float, Arch>::size);
  switch (hd) {
    case 32: if constexpr (32 % W == 0) return call(std::integral_constant<int, 32 / W>{}), true; break;
    case 64: if constexpr (64 % W == 0) return call(std::integral_constant<int, 64 / W>{}), true; break;
    case 96: if constexpr (96 % W == 0) return call(std::integral_constant<int, 96 / W>{}), true; break;
    case 128: return call(std::integral_constant<int, 128 / W>{}), true;
    // (256 on 4-lane ISAs, 64 vectors, would cost more compile time than it gains.)
    case 256: if constexpr (256 / W <= 32) return call(std::integral_constant<int, 256 / W>{}), true; break;
    default: break;
  }
  return false;
}

}  // namespace decode_impl

template <class Arch>
void decode_attention_row(const DecodeRowArgs& a) {
  const decode_impl::F32Rows<Arch> k{a.k, a.k_wrap, a.split, a.kv_stride};
  const decode_impl::F32Rows<Arch> v{a.v, a.v_wrap, a.split, a.kv_stride};
  if (decode_impl::with_fixed_head_dim<Arch>(a.head_dim, [&](auto nv) {
        decode_impl::attention_row_fixed<Arch, decltype(nv)::value>(a, k, v);
      }))
    return;
  decode_impl::attention_row<Arch>(a, k, v);
}

template <class Arch, WeightStorage S>
void decode_attention_row_stored(const DecodeRowArgs& a) {
  constexpr std::int64_t W = static_cast<std::int64_t>(xsimd::batch<float, Arch>::size);
  if (decode_impl::with_fixed_head_dim<Arch>(a.head_dim, [&](auto nv) {
        constexpr std::int64_t hd = decltype(nv)::value * W;
        using Rows = decode_impl::StoredRows<Arch, S, hd>;
        decode_impl::attention_row_fixed<Arch, decltype(nv)::value>(
            a, Rows{a.kb, a.kb_wrap, a.split, a.row_bytes, a.head_dim},
            Rows{a.vb, a.vb_wrap, a.split, a.row_bytes, a.head_dim});
      }))
    return;
  decode_impl::attention_row<Arch>(
      a, decode_impl::StoredRows<Arch, S>{a.kb, a.kb_wrap, a.split, a.row_bytes, a.head_dim},
      decode_impl::StoredRows<Arch, S>{a.vb, a.vb_wrap, a.split, a.row_bytes, a.head_dim});
}

template <class Arch, WeightStorage S>
void kv_dequant_rows(const unsigned char* src, std::int64_t row_bytes, std::int64_t count,
                     std::int64_t head_dim, float* dst) {
  for (std::int64_t r = 0; r < count; ++r)
    kv_decode_row<Arch, S>(src + r * row_bytes, head_dim, dst + r * head_dim);
}

}  // namespace simdattn::detail
