// src/kernels/dequant_impl.hpp — bodies of the dequantizers (dequant.hpp). Included ONLY by
// src/kernels/isa/dequant_<isa>.cpp: each is compiled for one ISA, whose conversion
// instructions the preprocessor picks below (F16C on AVX2, the AVX-512F conversions, NEON's
// fcvtl; SSE2 has no half conversion, so it rebiases the exponent with a multiply).
//
// As in the other kernel bodies, everything is a template on Arch (no inline non-template
// code, no STL): see gemm_ukernel_impl.hpp.
#pragma once

#include <cstdint>

#include "kernels/dequant.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#define SIMDATTN_DEQUANT_AVX512 1
#elif defined(__AVX2__)
#include <immintrin.h>
#if !defined(__F16C__)
#error "the AVX2 dequantizers need F16C (-mf16c)"
#endif
#define SIMDATTN_DEQUANT_AVX2 1
#elif defined(__aarch64__)
#include <arm_neon.h>
#define SIMDATTN_DEQUANT_NEON 1
#else
#include <emmintrin.h>
#define SIMDATTN_DEQUANT_SSE2 1
#endif

namespace simdattn::detail {
namespace dequant_impl {

#if SIMDATTN_DEQUANT_SSE2
/// Four halves (zero-extended into 32-bit lanes) to floats, exactly. Shifting exponent and
/// mantissa 13 bits up gives a float whose exponent is 112 too small; multiplying by 2^112
/// fixes that for normals and, since a half subnormal lands on an f32 subnormal, for those too
/// (SSE multiplies subnormals exactly unless DAZ is set, which the library never does). Inf
/// and NaN (half exponent 31) get the all-ones f32 exponent OR-ed in, keeping the payload, and
/// a NaN the quiet bit, as F16C's conversion does.
template <class Arch>
inline __m128 f16x4(__m128i h) noexcept {
  const __m128i magnitude = _mm_and_si128(h, _mm_set1_epi32(0x7fff));
  const __m128i sign = _mm_slli_epi32(_mm_xor_si128(h, magnitude), 16);
  const __m128 scaled = _mm_mul_ps(_mm_castsi128_ps(_mm_slli_epi32(magnitude, 13)),
                                   _mm_castsi128_ps(_mm_set1_epi32((127 + 112) << 23)));
  const __m128i inf_nan = _mm_cmpgt_epi32(magnitude, _mm_set1_epi32(0x7bff));
  const __m128i nan = _mm_cmpgt_epi32(magnitude, _mm_set1_epi32(0x7c00));
  const __m128i top = _mm_or_si128(
      _mm_or_si128(sign, _mm_and_si128(inf_nan, _mm_set1_epi32(0x7f800000))),
      _mm_and_si128(nan, _mm_set1_epi32(0x00400000)));
  return _mm_or_ps(scaled, _mm_castsi128_ps(top));
}
#endif

/// 16 halves at src to 16 floats at dst.
template <class Arch>
inline void f16_row(const unsigned char* src, float* dst) noexcept {
#if SIMDATTN_DEQUANT_AVX512
  _mm512_storeu_ps(dst, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src))));
#elif SIMDATTN_DEQUANT_AVX2
  _mm256_storeu_ps(dst, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src))));
  _mm256_storeu_ps(dst + 8,
                   _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16))));
#elif SIMDATTN_DEQUANT_NEON
  const float16_t* h = reinterpret_cast<const float16_t*>(src);
  for (int i = 0; i < 16; i += 4) vst1q_f32(dst + i, vcvt_f32_f16(vld1_f16(h + i)));
#else
  const __m128i zero = _mm_setzero_si128();
  for (int i = 0; i < 2; ++i) {
    const __m128i h8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * i));
    _mm_storeu_ps(dst + 8 * i, f16x4<Arch>(_mm_unpacklo_epi16(h8, zero)));
    _mm_storeu_ps(dst + 8 * i + 4, f16x4<Arch>(_mm_unpackhi_epi16(h8, zero)));
  }
#endif
}

/// 16 bfloat16 at src to 16 floats at dst: each is the top half of its float.
template <class Arch>
inline void bf16_row(const unsigned char* src, float* dst) noexcept {
#if SIMDATTN_DEQUANT_AVX512
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
  _mm512_storeu_ps(dst, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
#elif SIMDATTN_DEQUANT_AVX2
  for (int i = 0; i < 2; ++i) {
    const __m256i w =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * i)));
    _mm256_storeu_ps(dst + 8 * i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
#elif SIMDATTN_DEQUANT_NEON
  const std::uint16_t* h = reinterpret_cast<const std::uint16_t*>(src);
  for (int i = 0; i < 16; i += 4)
    vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(h + i), 16)));
#else
  const __m128i zero = _mm_setzero_si128();
  for (int i = 0; i < 2; ++i) {
    const __m128i h8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * i));
    _mm_storeu_ps(dst + 8 * i, _mm_castsi128_ps(_mm_unpacklo_epi16(zero, h8)));
    _mm_storeu_ps(dst + 8 * i + 4, _mm_castsi128_ps(_mm_unpackhi_epi16(zero, h8)));
  }
#endif
}

/// 16 int8 at src times 16 scales to 16 floats at dst. Exact: |q| <= 127 times an f16 scale
/// has at most 18 significant bits.
template <class Arch>
inline void q8_row(const unsigned char* src, const float* scale, float* dst) noexcept {
#if SIMDATTN_DEQUANT_AVX512
  const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_loadu_ps(scale)));
#elif SIMDATTN_DEQUANT_AVX2
  for (int i = 0; i < 2; ++i) {
    const __m256i q =
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + 8 * i)));
    _mm256_storeu_ps(dst + 8 * i,
                     _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_loadu_ps(scale + 8 * i)));
  }
#elif SIMDATTN_DEQUANT_NEON
  const int8x16_t q = vld1q_s8(reinterpret_cast<const std::int8_t*>(src));
  const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_s8(vget_high_s8(q));
  const int32x4_t parts[4] = {vmovl_s16(vget_low_s16(lo)), vmovl_s16(vget_high_s16(lo)),
                              vmovl_s16(vget_low_s16(hi)), vmovl_s16(vget_high_s16(hi))};
  for (int i = 0; i < 4; ++i)
    vst1q_f32(dst + 4 * i, vmulq_f32(vcvtq_f32_s32(parts[i]), vld1q_f32(scale + 4 * i)));
#else
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  // Sign-extend by duplicating each byte into the top of a wider lane and shifting back down.
  const __m128i lo16 = _mm_srai_epi16(_mm_unpacklo_epi8(q, q), 8);
  const __m128i hi16 = _mm_srai_epi16(_mm_unpackhi_epi8(q, q), 8);
  const __m128i parts[4] = {_mm_srai_epi32(_mm_unpacklo_epi16(lo16, lo16), 16),
                            _mm_srai_epi32(_mm_unpackhi_epi16(lo16, lo16), 16),
                            _mm_srai_epi32(_mm_unpacklo_epi16(hi16, hi16), 16),
                            _mm_srai_epi32(_mm_unpackhi_epi16(hi16, hi16), 16)};
  for (int i = 0; i < 4; ++i)
    _mm_storeu_ps(dst + 4 * i, _mm_mul_ps(_mm_cvtepi32_ps(parts[i]), _mm_loadu_ps(scale + 4 * i)));
#endif
}

}  // namespace dequant_impl

template <class Arch, WeightStorage S>
void dequant_panels(const unsigned char* b_panels, std::int64_t panel_bytes, std::int64_t panels,
                    std::int64_t k0, std::int64_t kc, float* dst) {
  constexpr std::int64_t PW = kGemmPanelWidth;
  static_assert(PW == 16, "the row converters handle 16 columns");
  for (std::int64_t q = 0; q < panels; ++q) {
    const unsigned char* panel = b_panels + q * panel_bytes;
    float* out = dst + q * kc * PW;
    if constexpr (S == WeightStorage::q8_0) {
      std::int64_t r = 0;
      while (r < kc) {
        const std::int64_t kk = k0 + r;
        const std::int64_t in_block = kk % kQ8Block;
        const unsigned char* block = panel + (kk / kQ8Block) * kQ8BlockBytes;
        alignas(64) float scale[PW];
        dequant_impl::f16_row<Arch>(block, scale);
        const std::int64_t rows = kQ8Block - in_block < kc - r ? kQ8Block - in_block : kc - r;
        const unsigned char* qs = block + 2 * PW + in_block * PW;
        for (std::int64_t i = 0; i < rows; ++i)
          dequant_impl::q8_row<Arch>(qs + i * PW, scale, out + (r + i) * PW);
        r += rows;
      }
    } else {
      const unsigned char* row = panel + k0 * PW * 2;
      for (std::int64_t r = 0; r < kc; ++r) {
        if constexpr (S == WeightStorage::f16)
          dequant_impl::f16_row<Arch>(row + r * PW * 2, out + r * PW);
        else
          dequant_impl::bf16_row<Arch>(row + r * PW * 2, out + r * PW);
      }
    }
  }
}

}  // namespace simdattn::detail
