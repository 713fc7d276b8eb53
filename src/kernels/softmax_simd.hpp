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

/// Lane i holds float(i).
template <class Arch>
inline xsimd::batch<float, Arch> lane_iota() noexcept {
  constexpr std::int64_t W = static_cast<std::int64_t>(xsimd::batch<float, Arch>::size);
  alignas(64) float tmp[W];
  for (std::int64_t i = 0; i < W; ++i) tmp[i] = static_cast<float>(i);
  return xsimd::batch<float, Arch>::load_aligned(tmp);
}

}  // namespace simdattn::detail
