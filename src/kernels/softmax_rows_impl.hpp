// src/kernels/softmax_rows_impl.hpp — bodies of the softmax kernels. Included ONLY by
// src/kernels/isa/softmax_<isa>.cpp. No STL, no oneTBB, no allocation, no exceptions.
//
// Three steps per row, as in XNNPACK's softmax: the row maximum of the scaled, masked scores
// (and whether any is NaN); e = exp(scale s - max) stored in place while the sum accumulates;
// the scale by 1/sum. scale s - max is one fused multiply-subtract, so the largest entry gives
// exp of a rounding residual (~1) and the others lose no accuracy to a rounded product.
#pragma once

#include <cassert>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "kernels/softmax_rows.hpp"
#include "kernels/softmax_simd.hpp"

namespace simdattn::detail {

template <class Arch>
void causal_softmax_rows(float* scores, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                         float scale, std::int64_t offset, bool causal) {
  using V = xsimd::batch<float, Arch>;
  constexpr std::int64_t W = static_cast<std::int64_t>(V::size);
  assert(scores != nullptr && rows >= 1 && cols >= 1 && ld >= cols && offset >= 0);
  const float inf = __builtin_huge_valf();
  const V vscale(scale), neg_inf(-inf), zero(0.0f);

  for (std::int64_t i = 0; i < rows; ++i) {
    float* row = scores + i * ld;
    // Columns [valid, cols) are masked: the query at offset + i sees keys 0 .. offset + i.
    std::int64_t valid = cols;
    if (causal && offset + i + 1 < cols) valid = offset + i + 1;
    const std::int64_t full = valid - valid % W;
    const std::int64_t tail = valid - full;

    // 1. Max of the scaled scores, and NaN detection (a NaN anywhere unmasked makes the row
    //    NaN; max alone would not tell, x86 max drops NaN operands). xsimd::isnan, never
    //    x != x: xsimd 8.1 compiles != to the ordered _CMP_NEQ_OQ on AVX and AVX-512, which is
    //    false for NaN.
    V vmax = neg_inf;
    auto nan = xsimd::isnan(zero);
    for (std::int64_t j = 0; j < full; j += W) {
      const V x = V::load_unaligned(row + j) * vscale;
      nan = nan | xsimd::isnan(x);
      vmax = xsimd::max(vmax, x);
    }
    if (tail) {
      const V x = load_partial<Arch>(row + full, tail, 0.0f) * vscale;
      nan = nan | xsimd::isnan(x);
      const auto lane = lane_iota<Arch>() < V(static_cast<float>(tail));
      vmax = xsimd::max(vmax, xsimd::select(lane, x, neg_inf));
    }
    alignas(64) float lanes[W];
    vmax.store_aligned(lanes);
    float m = -inf;
    for (std::int64_t l = 0; l < W; ++l) m = lanes[l] > m ? lanes[l] : m;

    if (xsimd::any(nan) || m == -inf) {
      // NaN row -> NaN everywhere (masked entries too, as the reference's softmax of a row
      // holding NaN); nothing to attend to (all masked or -inf) -> zeros.
      const float fill = m == -inf && !xsimd::any(nan) ? 0.0f : __builtin_nanf("");
      for (std::int64_t j = 0; j < cols; ++j) row[j] = fill;
      continue;
    }

    // 2. e = exp(scale s - m), stored in place; sum in lane order, then lanes in order, so the
    //    result does not depend on anything but the row.
    const V vm(m);
    V vsum = zero;
    for (std::int64_t j = 0; j < full; j += W) {
      const V e = flash_exp<Arch>(flash_msub<Arch>(V::load_unaligned(row + j), vscale, vm));
      e.store_unaligned(row + j);
      vsum += e;
    }
    if (tail) {
      const V x = load_partial<Arch>(row + full, tail, 0.0f);
      const auto lane = lane_iota<Arch>() < V(static_cast<float>(tail));
      const V e = xsimd::select(lane, flash_exp<Arch>(flash_msub<Arch>(x, vscale, vm)), zero);
      store_partial<Arch>(e, row + full, tail);
      vsum += e;
    }
    vsum.store_aligned(lanes);
    float sum = 0.0f;
    for (std::int64_t l = 0; l < W; ++l) sum += lanes[l];

    // 3. Normalise. sum >= 1 (the maximum contributes exp(~0)) unless a +inf score made it
    //    NaN (inf - inf); masked columns are 0 * (1 / sum), so they turn NaN with the row, as
    //    the reference's exp(-inf) / sum does.
    const float inv = 1.0f / sum;
    const V vinv(inv);
    for (std::int64_t j = 0; j < full; j += W)
      (V::load_unaligned(row + j) * vinv).store_unaligned(row + j);
    for (std::int64_t j = full; j < valid; ++j) row[j] = row[j] * inv;
    const float masked = 0.0f * inv;
    for (std::int64_t j = valid; j < cols; ++j) row[j] = masked;
  }
}

template <class Arch>
void exp_f32(const float* x, float* y, std::int64_t n) {
  using V = xsimd::batch<float, Arch>;
  constexpr std::int64_t W = static_cast<std::int64_t>(V::size);
  assert(n >= 0 && (n == 0 || (x != nullptr && y != nullptr)));
  std::int64_t i = 0;
  for (; i + W <= n; i += W) flash_exp<Arch>(V::load_unaligned(x + i)).store_unaligned(y + i);
  if (i < n) store_partial<Arch>(flash_exp<Arch>(load_partial<Arch>(x + i, n - i, 0.0f)), y + i, n - i);
}

}  // namespace simdattn::detail
