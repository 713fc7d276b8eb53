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

/// The kernels' exponential: xsimd's Cephes-style exp (range reduction by ln 2 in two parts, a
/// degree-6 polynomial, ldexp). Measured <= 2 ULP against a double exp over the range softmax
/// feeds it ([-104, 0] and beyond; tests/unit/test_softmax_exp.cpp); exp(-inf) == 0 exactly and
/// NaN stays NaN, which the masking and NaN propagation rely on.
template <class Arch>
inline xsimd::batch<float, Arch> flash_exp(const xsimd::batch<float, Arch>& x) noexcept {
  return xsimd::exp(x);
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
