// src/kernels/attention_decode_impl.hpp — body of the decode attention kernel. Included only by
// src/kernels/isa/decode_<isa>.cpp; every helper is a template on Arch (see softmax_simd.hpp).
#pragma once

#include "kernels/attention_decode.hpp"
#include "kernels/dequant_impl.hpp"  // the stored-row decoders
#include "kernels/softmax_simd.hpp"

namespace simdattn::detail {

namespace decode_impl {

/// The kernel over rows it gets from k_row(j) and v_row(j) (f32 pointers valid until the next
/// call): the cache's own rows for f32, rows decoded into a stack buffer for stored caches.
template <class Arch, class KRow, class VRow>
inline void attention_row(const DecodeRowArgs& a, KRow&& k_row, VRow&& v_row) {
  using V = xsimd::batch<float, Arch>;
  constexpr std::int64_t W = static_cast<std::int64_t>(V::size);
  const std::int64_t hd = a.head_dim, n = a.keys;
  const float* q = a.q;

  // Scores: one dot product per key along head_dim (two accumulators for two FMA chains).
  float max = -__builtin_inff();
  bool nan = false;
  for (std::int64_t j = 0; j < n; ++j) {
    const float* kj = k_row(j);
    V acc0(0.0f), acc1(0.0f);
    std::int64_t d = 0;
    for (; d + 2 * W <= hd; d += 2 * W) {
      acc0 = flash_madd<Arch>(V::load_unaligned(q + d), V::load_unaligned(kj + d), acc0);
      acc1 = flash_madd<Arch>(V::load_unaligned(q + d + W), V::load_unaligned(kj + d + W), acc1);
    }
    for (; d + W <= hd; d += W)
      acc0 = flash_madd<Arch>(V::load_unaligned(q + d), V::load_unaligned(kj + d), acc0);
    if (d < hd)
      acc0 = flash_madd<Arch>(load_partial<Arch>(q + d, hd - d, 0.0f),
                              load_partial<Arch>(kj + d, hd - d, 0.0f), acc0);
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

  // Exponentials and their sum. An all -inf row has nothing to attend to: its weights are 0
  // (exp(-inf - -inf) would be NaN).
  const bool nothing = max == -__builtin_inff();
  const V vmax(max);
  V vsum(0.0f);
  std::int64_t j = 0;
  for (; j + W <= n; j += W) {
    const V e = nothing ? V(0.0f) : flash_exp<Arch>(V::load_unaligned(a.scores + j) - vmax);
    e.store_unaligned(a.scores + j);
    vsum += e;
  }
  if (j < n) {
    const V e = nothing ? V(0.0f)
                        : flash_exp<Arch>(load_partial<Arch>(a.scores + j, n - j, -__builtin_inff()) - vmax);
    store_partial<Arch>(e, a.scores + j, n - j);
    vsum += e;
  }
  const float sum = xsimd::hadd(vsum);
  const float inv = nothing ? 0.0f : 1.0f / sum;

  // out = sum_j w_j v_j with w_j = p_j / sum (times keep_j): row updates of the output.
  float* out = a.out;
  for (std::int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
  for (std::int64_t jj = 0; jj < n; ++jj) {
    float w = a.scores[jj] * inv;
    if (a.keep != nullptr) w *= a.keep[jj];
    const V vw(w);
    const float* vj = v_row(jj);
    std::int64_t d = 0;
    for (; d + W <= hd; d += W)
      flash_madd<Arch>(vw, V::load_unaligned(vj + d), V::load_unaligned(out + d)).store_unaligned(out + d);
    if (d < hd)
      store_partial<Arch>(flash_madd<Arch>(vw, load_partial<Arch>(vj + d, hd - d, 0.0f),
                                           load_partial<Arch>(out + d, hd - d, 0.0f)),
                          out + d, hd - d);
  }
}

}  // namespace decode_impl

template <class Arch>
void decode_attention_row(const DecodeRowArgs& a) {
  decode_impl::attention_row<Arch>(
      a,
      [&](std::int64_t j) {
        return j < a.split ? a.k + j * a.kv_stride : a.k_wrap + (j - a.split) * a.kv_stride;
      },
      [&](std::int64_t j) {
        return j < a.split ? a.v + j * a.kv_stride : a.v_wrap + (j - a.split) * a.kv_stride;
      });
}

template <class Arch, WeightStorage S>
void decode_attention_row_stored(const DecodeRowArgs& a) {
  assert(a.head_dim <= kMaxStoredHeadDim);
  alignas(64) float k_buf[kMaxStoredHeadDim];
  alignas(64) float v_buf[kMaxStoredHeadDim];
  const auto row = [&](const unsigned char* base, const unsigned char* wrap, std::int64_t j) {
    return j < a.split ? base + j * a.row_bytes : wrap + (j - a.split) * a.row_bytes;
  };
  decode_impl::attention_row<Arch>(
      a,
      [&](std::int64_t j) {
        kv_decode_row<Arch, S>(row(a.kb, a.kb_wrap, j), a.head_dim, k_buf);
        return static_cast<const float*>(k_buf);
      },
      [&](std::int64_t j) {
        kv_decode_row<Arch, S>(row(a.vb, a.vb_wrap, j), a.head_dim, v_buf);
        return static_cast<const float*>(v_buf);
      });
}

template <class Arch, WeightStorage S>
void kv_dequant_rows(const unsigned char* src, std::int64_t row_bytes, std::int64_t count,
                     std::int64_t head_dim, float* dst) {
  for (std::int64_t r = 0; r < count; ++r)
    kv_decode_row<Arch, S>(src + r * row_bytes, head_dim, dst + r * head_dim);
}

}  // namespace simdattn::detail
