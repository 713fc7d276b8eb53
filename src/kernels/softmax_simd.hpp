// src/kernels/softmax_simd.hpp — SIMD building blocks shared by the softmax and flash-attention
// kernel bodies: multiply-add, exponential, partial-vector loads and stores. Included ONLY by
// the *_impl.hpp kernel headers (so only by per-ISA translation units).
//
// Why every helper is a template on Arch: an inline non-template helper would be emitted as a
// weak symbol in every ISA object and the linker could keep the AVX2 copy for SSE2 callers.
#pragma once

#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#if defined(__GNUC__) && !defined(__clang__)
#define SIMDATTN_FLASH_UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define SIMDATTN_FLASH_UNROLL _Pragma("unroll")
#else
#define SIMDATTN_FLASH_UNROLL
#endif

namespace simdattn::detail {

/// x * y + z, one rounding where the ISA has FMA. xsimd 8.1 has no AVX-512 fma overload (it
/// would fall back to mul + add), so AVX-512 calls the intrinsic.
template <class Arch>
inline xsimd::batch<float, Arch> flash_madd(const xsimd::batch<float, Arch>& x,
                                            const xsimd::batch<float, Arch>& y,
                                            const xsimd::batch<float, Arch>& z) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of<xsimd::avx512f, Arch>::value) {
    return _mm512_fmadd_ps(x, y, z);
  } else
#endif
  {
    return xsimd::fma(x, y, z);
  }
}

/// x * y - z, one rounding where the ISA has FMA.
template <class Arch>
inline xsimd::batch<float, Arch> flash_msub(const xsimd::batch<float, Arch>& x,
                                            const xsimd::batch<float, Arch>& y,
                                            const xsimd::batch<float, Arch>& z) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of<xsimd::avx512f, Arch>::value) {
    return _mm512_fmsub_ps(x, y, z);
  } else
#endif
  {
    return xsimd::fms(x, y, z);
  }
}

/// The kernels' exponential, for the arguments softmax produces: scale s - max <= 0 (a
/// rounding residual above 0 at most), -inf for masked entries, NaN. Cephes' expf: k =
/// round(x log2 e), r = x - k ln2 (ln2 split in two so k ln2_hi is exact), exp(r) by its
/// degree-7 Taylor-fitted polynomial, times 2^k built in the exponent bits. Measured <= 2 ULP
/// against a double exp on [-87.3, 88] (tests/unit/test_softmax_exp.cpp). Below -87.3 (where
/// 2^k would leave the normal range) the result is 0, so exp(-inf) == 0 exactly, which masking
/// relies on; NaN stays NaN. About 18 instructions where xsimd::exp, which also handles
/// overflow and denormal results, takes ~25: the flash kernel evaluates one per score.
/// Valid for x <= 88 (the kernels never go above ~0).
template <class Arch>
inline xsimd::batch<float, Arch> flash_exp(const xsimd::batch<float, Arch>& x) noexcept {
  using V = xsimd::batch<float, Arch>;
  using I = xsimd::batch<std::int32_t, Arch>;
  const I ki = xsimd::nearbyint_as_int(x * V(1.44269504088896341f));
  const V k = xsimd::to_float(ki);
  V r = flash_madd<Arch>(k, V(-0.693359375f), x);  // exact: k has <= 8 bits, ln2_hi 9
  r = flash_madd<Arch>(k, V(2.12194440e-4f), r);
  V p = V(1.9875691500e-4f);
  p = flash_madd<Arch>(p, r, V(1.3981999507e-3f));
  p = flash_madd<Arch>(p, r, V(8.3334519073e-3f));
  p = flash_madd<Arch>(p, r, V(4.1665795894e-2f));
  p = flash_madd<Arch>(p, r, V(1.6666665459e-1f));
  p = flash_madd<Arch>(p, r, V(5.0000001201e-1f));
  const V y = flash_madd<Arch>(p, r * r, r) + V(1.0f);
  const V two_k = xsimd::bitwise_cast<V>((ki + I(127)) << 23);
  return xsimd::select(x < V(-87.33654f), V(0.0f), y * two_k);
}

/// Loads n < W floats from p into the low lanes, `fill` in the others; never reads past p + n.
template <class Arch>
inline xsimd::batch<float, Arch> load_partial(const float* p, std::int64_t n, float fill) noexcept {
  constexpr std::int64_t W = static_cast<std::int64_t>(xsimd::batch<float, Arch>::size);
  alignas(64) float tmp[W];
  for (std::int64_t i = 0; i < W; ++i) tmp[i] = i < n ? p[i] : fill;
  return xsimd::batch<float, Arch>::load_aligned(tmp);
}

/// Stores the low n < W lanes of x to p; never writes past p + n.
template <class Arch>
inline void store_partial(const xsimd::batch<float, Arch>& x, float* p, std::int64_t n) noexcept {
  constexpr std::int64_t W = static_cast<std::int64_t>(xsimd::batch<float, Arch>::size);
  alignas(64) float tmp[W];
  x.store_aligned(tmp);
  for (std::int64_t i = 0; i < n; ++i) p[i] = tmp[i];
}

/// Transposes the W x W block held in rows[0..W) (rows[i] lane k <-> rows[k] lane i). SSE and
/// AVX use the classic unpack/shuffle networks; other ISAs go through the stack.
template <class Arch, int W>
inline void transpose_square(xsimd::batch<float, Arch> (&rows)[W]) noexcept {
  static_assert(W == xsimd::batch<float, Arch>::size, "one row per lane");
#if XSIMD_WITH_AVX
  if constexpr (W == 8 && std::is_base_of<xsimd::avx, Arch>::value) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = rows[i];
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    rows[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    rows[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    rows[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    rows[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    rows[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    rows[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    rows[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    rows[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
    return;
  }
#endif
#if XSIMD_WITH_SSE2
  if constexpr (W == 4 && std::is_base_of<xsimd::sse2, Arch>::value) {
    __m128 r0 = rows[0], r1 = rows[1], r2 = rows[2], r3 = rows[3];
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    rows[0] = r0;
    rows[1] = r1;
    rows[2] = r2;
    rows[3] = r3;
    return;
  }
#endif
  alignas(64) float a[W * W], b[W * W];
  for (int i = 0; i < W; ++i) rows[i].store_aligned(a + i * W);
  for (int i = 0; i < W; ++i)
    for (int k = 0; k < W; ++k) b[k * W + i] = a[i * W + k];
  for (int i = 0; i < W; ++i) rows[i] = xsimd::batch<float, Arch>::load_aligned(b + i * W);
}

/// Lane i of the result: the sum of the W lanes of rows[i], by one pairwise tree that is the
/// same for every i, so a row's sum has the same bits wherever it sits among the W. A
/// transposing reduction: about three shuffles and adds per row, where a horizontal add of
/// each row on its own takes seven or more dependent steps.
template <class Arch>
inline xsimd::batch<float, Arch> lane_sums(const xsimd::batch<float, Arch>* rows) noexcept {
  using V = xsimd::batch<float, Arch>;
  constexpr int W = static_cast<int>(V::size);
#if XSIMD_WITH_AVX512F
  if constexpr (W == 16 && std::is_base_of<xsimd::avx512f, Arch>::value) {
    // Quarters (128 bits) of rows a, b: [a0 + a2, a1 + a3, b0 + b2, b1 + b3].
    __m512 h[8];
    for (int i = 0; i < 8; ++i) {
      const __m512 a = rows[2 * i], b = rows[2 * i + 1];
      h[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    // Quarter r of t[m]: the four partial sums of row 4m + r.
    __m512 t[4];
    for (int m = 0; m < 4; ++m) {
      const __m512 x = h[2 * m], y = h[2 * m + 1];
      t[m] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    // Within each quarter r, a 4 x 4 transposing sum: lane 4r + m is row 4m + r.
    const __m512 u01 = _mm512_add_ps(_mm512_unpacklo_ps(t[0], t[1]), _mm512_unpackhi_ps(t[0], t[1]));
    const __m512 u23 = _mm512_add_ps(_mm512_unpacklo_ps(t[2], t[3]), _mm512_unpackhi_ps(t[2], t[3]));
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(u01, u23, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_ps(u01, u23, _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r);
  } else
#endif
#if XSIMD_WITH_AVX
  if constexpr (W == 8 && std::is_base_of<xsimd::avx, Arch>::value) {
    // hadd(hadd(r0, r1), hadd(r2, r3)): [r0..r3 over lanes 0-3 | r0..r3 over lanes 4-7].
    const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(rows[0], rows[1]), _mm256_hadd_ps(rows[2], rows[3]));
    const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(rows[4], rows[5]), _mm256_hadd_ps(rows[6], rows[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
  } else
#endif
#if XSIMD_WITH_SSE2
  if constexpr (W == 4 && std::is_base_of<xsimd::sse2, Arch>::value) {
    const __m128 s01 = _mm_add_ps(_mm_unpacklo_ps(rows[0], rows[1]), _mm_unpackhi_ps(rows[0], rows[1]));
    const __m128 s23 = _mm_add_ps(_mm_unpacklo_ps(rows[2], rows[3]), _mm_unpackhi_ps(rows[2], rows[3]));
    return _mm_add_ps(_mm_movelh_ps(s01, s23), _mm_movehl_ps(s23, s01));
  } else
#endif
#if XSIMD_WITH_NEON64
  if constexpr (W == 4 && std::is_base_of<xsimd::neon64, Arch>::value) {
    return vpaddq_f32(vpaddq_f32(rows[0], rows[1]), vpaddq_f32(rows[2], rows[3]));
  } else
#endif
  {
    alignas(64) float lanes[W * W], sums[W];
    for (int i = 0; i < W; ++i) rows[i].store_aligned(lanes + i * W);
    for (int i = 0; i < W; ++i) {
      float s = 0.0f;
      for (int l = 0; l < W; ++l) s += lanes[i * W + l];
      sums[i] = s;
    }
    return V::load_aligned(sums);
  }
}

/// Lane i holds float(i).
template <class Arch>
inline xsimd::batch<float, Arch> lane_iota() noexcept {
  constexpr std::int64_t W = static_cast<std::int64_t>(xsimd::batch<float, Arch>::size);
  alignas(64) float tmp[W];
  for (std::int64_t i = 0; i < W; ++i) tmp[i] = static_cast<float>(i);
  return xsimd::batch<float, Arch>::load_aligned(tmp);
}

}  // namespace simdattn::detail
