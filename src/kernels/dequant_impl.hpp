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
#include "kernels/gemm_ukernel_impl.hpp"  // the f32 tile store and madd the small-M kernel shares

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

namespace dequant_impl {
template <class Arch>
inline void q4_codes(const unsigned char* pair, int v, xsimd::batch<float, Arch>& lo,
                     xsimd::batch<float, Arch>& hi) noexcept;

/// Rows [r0, r0 + rows) of one q4_0 block (its 16 scales at `scale`) to 16 floats each at dst.
template <class Arch>
inline void q4_rows(const unsigned char* block, std::int64_t r0, std::int64_t rows,
                    const float* scale, float* dst) noexcept {
  using V = xsimd::batch<float, Arch>;
  constexpr int W = static_cast<int>(V::size);
  constexpr std::int64_t PW = kGemmPanelWidth;
  for (std::int64_t r = r0; r < r0 + rows;) {
    const unsigned char* pair = block + 2 * PW + (r / 2) * PW;
    const bool both = r % 2 == 0 && r + 1 < r0 + rows;  // a whole pair: one decode, two rows
    for (int v = 0; v < static_cast<int>(PW) / W; ++v) {
      V lo, hi;
      q4_codes<Arch>(pair, v, lo, hi);
      const V d = V::load_aligned(scale + v * W);
      ((r % 2 == 0 ? lo : hi) * d).store_unaligned(dst + (r - r0) * PW + v * W);
      if (both) (hi * d).store_unaligned(dst + (r + 1 - r0) * PW + v * W);
    }
    r += both ? 2 : 1;
  }
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
    if constexpr (is_blocked(S)) {
      constexpr std::int64_t kBlockBytes = packed_panel_bytes(S, kQ8Block);
      std::int64_t r = 0;
      while (r < kc) {
        const std::int64_t kk = k0 + r;
        const std::int64_t in_block = kk % kQ8Block;
        const unsigned char* block = panel + (kk / kQ8Block) * kBlockBytes;
        alignas(64) float scale[PW];
        dequant_impl::f16_row<Arch>(block, scale);
        const std::int64_t rows = kQ8Block - in_block < kc - r ? kQ8Block - in_block : kc - r;
        if constexpr (S == WeightStorage::q8_0) {
          const unsigned char* qs = block + 2 * PW + in_block * PW;
          for (std::int64_t i = 0; i < rows; ++i)
            dequant_impl::q8_row<Arch>(qs + i * PW, scale, out + (r + i) * PW);
        } else {
          dequant_impl::q4_rows<Arch>(block, in_block, rows, scale, out + r * PW);
        }
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

namespace dequant_impl {

/// Vector v (lanes v*W .. v*W + W - 1) of one 16-wide stored row, converted in registers: a
/// half or bfloat16 row (32 bytes), or a q8_0 row (16 int8, before its scale).
template <class Arch, WeightStorage S>
inline xsimd::batch<float, Arch> row_vector(const unsigned char* row, int v) noexcept {
  using V = xsimd::batch<float, Arch>;
#if SIMDATTN_DEQUANT_AVX512
  (void)v;  // one 16-lane vector per row
  if constexpr (S == WeightStorage::f16)
    return V(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row))));
  else if constexpr (S == WeightStorage::bf16)
    return V(_mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row))), 16)));
  else
    return V(_mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row)))));
#elif SIMDATTN_DEQUANT_AVX2
  if constexpr (S == WeightStorage::f16)
    return V(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * v))));
  else if constexpr (S == WeightStorage::bf16)
    return V(_mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * v))),
        16)));
  else
    return V(_mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * v)))));
#elif SIMDATTN_DEQUANT_NEON
  if constexpr (S == WeightStorage::f16)
    return V(vcvt_f32_f16(vld1_f16(reinterpret_cast<const float16_t*>(row) + 4 * v)));
  else if constexpr (S == WeightStorage::bf16)
    return V(vreinterpretq_f32_u32(
        vshll_n_u16(vld1_u16(reinterpret_cast<const std::uint16_t*>(row) + 4 * v), 16)));
  else {
    const int16x8_t w = vmovl_s8(vld1_s8(reinterpret_cast<const std::int8_t*>(row) + 8 * (v / 2)));
    return V(vcvtq_f32_s32(vmovl_s16((v & 1) ? vget_high_s16(w) : vget_low_s16(w))));
  }
#else
  const __m128i zero = _mm_setzero_si128();
  if constexpr (S == WeightStorage::f16)
    return V(f16x4<Arch>(_mm_unpacklo_epi16(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * v)), zero)));
  else if constexpr (S == WeightStorage::bf16)
    return V(_mm_castsi128_ps(_mm_unpacklo_epi16(
        zero, _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * v)))));
  else {
    int four;
    __builtin_memcpy(&four, row + 4 * v, 4);
    const __m128i q = _mm_cvtsi32_si128(four);
    const __m128i q16 = _mm_srai_epi16(_mm_unpacklo_epi8(q, q), 8);
    return V(_mm_cvtepi32_ps(_mm_srai_epi32(_mm_unpacklo_epi16(q16, q16), 16)));
  }
#endif
}

/// Vector v of the two 16-wide q4_0 rows of one row pair (the 16 bytes at `pair`), before
/// their scales: q - 8 of the even row (low nibbles, q as stored) into lo, of the odd row
/// (high nibbles, q - 8 in two's complement) into hi. Sign-extending a byte and shifting it
/// arithmetically gives the odd row; a mask and a subtraction the even one. One widening of the
/// bytes serves both rows, and only one of the two rows takes a shift (on AVX-512 shifts and
/// conversions share one port, the mask and subtraction do not).
template <class Arch>
inline void q4_codes(const unsigned char* pair, int v, xsimd::batch<float, Arch>& lo,
                     xsimd::batch<float, Arch>& hi) noexcept {
  static_assert(kGemmPanelWidth == 16, "a q4_0 row pair is 16 bytes");
  using V = xsimd::batch<float, Arch>;
#if SIMDATTN_DEQUANT_AVX512
  (void)v;
  const __m512i b = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pair)));
  lo = V(_mm512_cvtepi32_ps(
      _mm512_sub_epi32(_mm512_and_si512(b, _mm512_set1_epi32(15)), _mm512_set1_epi32(8))));
  hi = V(_mm512_cvtepi32_ps(_mm512_srai_epi32(b, 4)));
#elif SIMDATTN_DEQUANT_AVX2
  const __m256i b =
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(pair + 8 * v)));
  lo = V(_mm256_cvtepi32_ps(
      _mm256_sub_epi32(_mm256_and_si256(b, _mm256_set1_epi32(15)), _mm256_set1_epi32(8))));
  hi = V(_mm256_cvtepi32_ps(_mm256_srai_epi32(b, 4)));
#elif SIMDATTN_DEQUANT_NEON
  const int8x8_t b = vld1_s8(reinterpret_cast<const std::int8_t*>(pair) + 8 * (v / 2));
  const int16x8_t l = vmovl_s8(vsub_s8(vand_s8(b, vdup_n_s8(15)), vdup_n_s8(8)));
  const int16x8_t h = vmovl_s8(vshr_n_s8(b, 4));
  lo = V(vcvtq_f32_s32(vmovl_s16((v & 1) ? vget_high_s16(l) : vget_low_s16(l))));
  hi = V(vcvtq_f32_s32(vmovl_s16((v & 1) ? vget_high_s16(h) : vget_low_s16(h))));
#else
  int four;
  __builtin_memcpy(&four, pair + 4 * v, 4);
  // Each byte into all four bytes of its 32-bit lane: its high nibble is then the lane's top.
  const __m128i b8 = _mm_cvtsi32_si128(four);
  const __m128i b16 = _mm_unpacklo_epi8(b8, b8);
  const __m128i b = _mm_unpacklo_epi16(b16, b16);
  lo = V(_mm_cvtepi32_ps(_mm_sub_epi32(_mm_and_si128(b, _mm_set1_epi32(15)), _mm_set1_epi32(8))));
  hi = V(_mm_cvtepi32_ps(_mm_srai_epi32(b, 28)));
#endif
}

/// Locality of the weight-stream requests: prefetcht2, into L2 and not L1. Measured on Zen 4
/// (1 x 2304 x 768 from memory, 1 thread): q8_0 0.104 ms without requests, 0.120 with
/// prefetcht0 (the lines displace the accumulating pass's data in L1), 0.086 with prefetcht2.
inline constexpr int kStreamLocality = 1;

/// A blocked (q8_0, q4_0) panel's stream is short (k / 32 blocks: 13 KB of q8_0 or 6.9 KB of
/// q4_0 at k = 768), too short for the hardware prefetcher to ramp up, so a pass requests each
/// of its NP panels kAhead blocks ahead, one line per depth step. Near a panel's end the
/// requests run on into the panels of the next pass, which follow these NP (a request past the
/// matrix is harmless: a prefetch never faults). Templates on Arch, as every helper here.
/// stream_ahead: byte `offset` of a pass's first panel, or, past the panel's end, that far into
/// the first panel of the next pass (the f16/bf16 passes use it too).
template <class Arch, int NP>
inline const unsigned char* stream_ahead(const unsigned char* b, std::int64_t panel_bytes,
                                         std::int64_t offset) noexcept {
  return offset < panel_bytes ? b + offset : b + NP * panel_bytes + (offset - panel_bytes);
}

template <class Arch, int NP>
inline const unsigned char* block_ahead(const unsigned char* b, std::int64_t panel_bytes,
                                        std::int64_t blk, std::int64_t block_bytes) noexcept {
  constexpr std::int64_t kAhead = 4;
  return stream_ahead<Arch, NP>(b, panel_bytes, (blk + kAhead) * block_bytes);
}

/// Line `line` of the block at `next` in each of the NP panels (none once past the block).
template <class Arch, int NP>
inline void request_block_line(const unsigned char* next, std::int64_t panel_bytes,
                               std::int64_t line, std::int64_t block_bytes) noexcept {
  if (line * 64 < block_bytes)
    SIMDATTN_UNROLL for (int q = 0; q < NP; ++q)
      __builtin_prefetch(next + q * panel_bytes + line * 64, 0, kStreamLocality);
}

/// One small-M pass over stored B: ROWS rows x NP panels, full depth, A read in place. The same
/// FMA chain per accumulator as gemm_accumulate (acc = a * b + acc for p = 0, 1, ...), on
/// values equal to the decoded ones, hence the f32 kernel's bits.
template <class Arch, WeightStorage S, int ROWS, int NP>
inline void small_m_stored_pass(std::int64_t k, const float* a, std::int64_t lda,
                                const unsigned char* b, std::int64_t panel_bytes, float* c,
                                std::int64_t ldc, std::int64_t n_valid,
                                const GemmEpilogue& ep) noexcept {
  using V = xsimd::batch<float, Arch>;
  constexpr int W = static_cast<int>(V::size);
  constexpr int PW = static_cast<int>(kGemmPanelWidth);
  constexpr int VPP = PW / W;  // vectors per panel row
  constexpr int NV = NP * VPP;
  V acc[ROWS][NV];
  SIMDATTN_UNROLL for (int i = 0; i < ROWS; ++i)
    SIMDATTN_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = V(0.0f);
  if constexpr (S == WeightStorage::q8_0) {
    for (std::int64_t blk = 0; blk < k / kQ8Block; ++blk) {
      alignas(64) float scale[NP * PW];
      SIMDATTN_UNROLL for (int q = 0; q < NP; ++q)
        f16_row<Arch>(b + q * panel_bytes + blk * kQ8BlockBytes, scale + q * PW);
      const unsigned char* rows0 = b + blk * kQ8BlockBytes + 2 * PW;
      const unsigned char* next = block_ahead<Arch, NP>(b, panel_bytes, blk, kQ8BlockBytes);
      for (std::int64_t r = 0; r < kQ8Block; ++r) {
        const std::int64_t p = blk * kQ8Block + r;
        request_block_line<Arch, NP>(next, panel_bytes, r, kQ8BlockBytes);
        V bv[NV];
        SIMDATTN_UNROLL for (int q = 0; q < NP; ++q)
          SIMDATTN_UNROLL for (int v = 0; v < VPP; ++v)
            bv[q * VPP + v] = row_vector<Arch, S>(rows0 + q * panel_bytes + r * PW, v) *
                              V::load_aligned(scale + q * PW + v * W);
        SIMDATTN_UNROLL for (int i = 0; i < ROWS; ++i) {
          const V ai(a[i * lda + p]);
          SIMDATTN_UNROLL for (int v = 0; v < NV; ++v)
            acc[i][v] = gemm_madd<Arch>(ai, bv[v], acc[i][v]);
        }
      }
    }
  } else if constexpr (S == WeightStorage::q4_0) {
    for (std::int64_t blk = 0; blk < k / kQ8Block; ++blk) {
      alignas(64) float scale[NP * PW];
      SIMDATTN_UNROLL for (int q = 0; q < NP; ++q)
        f16_row<Arch>(b + q * panel_bytes + blk * kQ4BlockBytes, scale + q * PW);
      const unsigned char* pairs0 = b + blk * kQ4BlockBytes + 2 * PW;
      const unsigned char* next = block_ahead<Arch, NP>(b, panel_bytes, blk, kQ4BlockBytes);
      for (std::int64_t pair = 0; pair < kQ8Block / 2; ++pair) {
        const std::int64_t p = blk * kQ8Block + 2 * pair;
        request_block_line<Arch, NP>(next, panel_bytes, pair, kQ4BlockBytes);
        // Each accumulator takes row p (the low nibbles), then row p + 1 (the high ones): the
        // FMA chain of f32.
        SIMDATTN_UNROLL for (int q = 0; q < NP; ++q)
          SIMDATTN_UNROLL for (int v = 0; v < VPP; ++v) {
            const int u = q * VPP + v;
            V lo, hi;
            q4_codes<Arch>(pairs0 + q * panel_bytes + pair * PW, v, lo, hi);
            const V d = V::load_aligned(scale + u * W);
            lo = lo * d;  // exact: |q - 8| <= 8 times a half
            hi = hi * d;
            SIMDATTN_UNROLL for (int i = 0; i < ROWS; ++i) {
              acc[i][u] = gemm_madd<Arch>(V(a[i * lda + p]), lo, acc[i][u]);
              acc[i][u] = gemm_madd<Arch>(V(a[i * lda + p + 1]), hi, acc[i][u]);
            }
          }
      }
    }
  } else {
    for (std::int64_t p = 0; p < k; ++p) {
      // Two 32-byte rows per line: request each panel's line kHalfAhead rows (4 KiB) ahead,
      // into the next pass's panels near the end (measured on Zen 4, 1 x 2304 x 768 from
      // memory: f16 0.15-0.20 -> 0.14 ms; the hardware prefetcher alone kept NP streams short).
      constexpr std::int64_t kHalfAhead = 128;
      if ((p & 1) == 0) {
        const unsigned char* at = stream_ahead<Arch, NP>(b, panel_bytes, (p + kHalfAhead) * PW * 2);
        SIMDATTN_UNROLL for (int q = 0; q < NP; ++q)
          __builtin_prefetch(at + q * panel_bytes, 0, kStreamLocality);
      }
      V bv[NV];
      SIMDATTN_UNROLL for (int q = 0; q < NP; ++q)
        SIMDATTN_UNROLL for (int v = 0; v < VPP; ++v)
          bv[q * VPP + v] = row_vector<Arch, S>(b + q * panel_bytes + p * PW * 2, v);
      SIMDATTN_UNROLL for (int i = 0; i < ROWS; ++i) {
        const V ai(a[i * lda + p]);
        SIMDATTN_UNROLL for (int v = 0; v < NV; ++v)
          acc[i][v] = gemm_madd<Arch>(ai, bv[v], acc[i][v]);
      }
    }
  }
  gemm_store_tile_masked<Arch, ROWS, NV>(acc, c, ldc, ROWS, n_valid, ep);
}

template <class Arch, WeightStorage S, int ROWS>
inline void small_m_stored_rows(std::int64_t k, const float* a, std::int64_t lda,
                                const unsigned char* b, std::int64_t panel_bytes, std::int64_t n,
                                float* c, std::int64_t ldc, const GemmEpilogue& ep) noexcept {
  constexpr int NP = gemm_small_m_panels<Arch>(ROWS);
  constexpr std::int64_t PW = kGemmPanelWidth;
  const std::int64_t panels = (n + PW - 1) / PW;
  std::int64_t p = 0;
  GemmEpilogue local = ep;
  for (; p + NP <= panels; p += NP) {
    local.bias = ep.bias != nullptr ? ep.bias + p * PW : nullptr;
    const std::int64_t nv = n - p * PW < NP * PW ? n - p * PW : NP * PW;
    small_m_stored_pass<Arch, S, ROWS, NP>(k, a, lda, b + p * panel_bytes, panel_bytes,
                                           c + p * PW, ldc, nv, local);
  }
  for (; p < panels; ++p) {
    local.bias = ep.bias != nullptr ? ep.bias + p * PW : nullptr;
    const std::int64_t nv = n - p * PW < PW ? n - p * PW : PW;
    small_m_stored_pass<Arch, S, ROWS, 1>(k, a, lda, b + p * panel_bytes, panel_bytes,
                                          c + p * PW, ldc, nv, local);
  }
}

template <class Arch, WeightStorage S, int ROWS, int MAX_ROWS>
inline void small_m_stored_dispatch(std::int64_t rows, std::int64_t k, const float* a,
                                    std::int64_t lda, const unsigned char* b,
                                    std::int64_t panel_bytes, std::int64_t n, float* c,
                                    std::int64_t ldc, const GemmEpilogue& ep) noexcept {
  if constexpr (ROWS <= MAX_ROWS) {
    if (rows == ROWS) {
      small_m_stored_rows<Arch, S, ROWS>(k, a, lda, b, panel_bytes, n, c, ldc, ep);
      return;
    }
    small_m_stored_dispatch<Arch, S, ROWS + 1, MAX_ROWS>(rows, k, a, lda, b, panel_bytes, n, c,
                                                         ldc, ep);
  }
}

}  // namespace dequant_impl

template <class Arch, WeightStorage S>
void gemm_small_m_stored(std::int64_t m, std::int64_t k, const float* a, std::int64_t lda,
                         const unsigned char* b_packed, std::int64_t panel_bytes, std::int64_t n,
                         float* c, std::int64_t ldc, const GemmEpilogue& epilogue) {
  // The f32 small-M kernel's structure (gemm_small_m_f32): panel chunks outer, row passes of
  // at most MAX_ROWS inner, so a chunk is cache-hot for the second pass.
  constexpr int MAX_ROWS = GemmTile<Arch>::small_m_rows;
  assert(m >= 1 && m <= GemmTile<Arch>::small_m_max && k >= 1 && n >= 1);
  assert(!is_blocked(S) || k % kQ8Block == 0);
  constexpr std::int64_t PW = kGemmPanelWidth;
  constexpr std::int64_t kChunkPanels = 8;
  for (std::int64_t p0 = 0; p0 * PW < n; p0 += kChunkPanels) {
    const std::int64_t n_chunk = n - p0 * PW < kChunkPanels * PW ? n - p0 * PW : kChunkPanels * PW;
    GemmEpilogue ep = epilogue;
    if (ep.bias != nullptr) ep.bias += p0 * PW;
    for (std::int64_t r = 0; r < m; r += MAX_ROWS) {
      const std::int64_t rows = m - r < MAX_ROWS ? m - r : MAX_ROWS;
      dequant_impl::small_m_stored_dispatch<Arch, S, 1, MAX_ROWS>(
          rows, k, a + r * lda, lda, b_packed + p0 * panel_bytes, panel_bytes, n_chunk,
          c + r * ldc + p0 * PW, ldc, ep);
    }
  }
}

namespace dequant_impl {

/// One half to float, as the vector converters do (exact; NaN quiet). For row tails.
template <class Arch>
inline float f16_scalar(std::uint16_t h) noexcept {
#if SIMDATTN_DEQUANT_AVX512 || SIMDATTN_DEQUANT_AVX2
  return _cvtsh_ss(h);  // F16C: one instruction, the vector conversion's result
#elif SIMDATTN_DEQUANT_NEON
  __fp16 x;
  __builtin_memcpy(&x, &h, 2);
  return static_cast<float>(x);  // fcvt, as the vector fcvtl
#else
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13) | (mant != 0 ? 0x00400000u : 0u);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else {
    const float mag = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -mag : mag;
  }
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
#endif
}

template <class Arch>
inline float bf16_scalar(std::uint16_t h) noexcept {
  const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

}  // namespace dequant_impl

/// One KV-cache row (kv_row_bytes(S, head_dim) bytes, layout in gemm_params.hpp) to head_dim
/// floats, exactly.
template <class Arch, WeightStorage S>
inline void kv_decode_row(const unsigned char* row, std::int64_t head_dim, float* dst) noexcept {
  constexpr std::int64_t PW = 16;
  if constexpr (S == WeightStorage::q8_0) {
    for (std::int64_t blk = 0; blk < head_dim / kQ8Block; ++blk) {
      const unsigned char* b = row + blk * kQ8KvBlockBytes;
      std::uint16_t h;
      __builtin_memcpy(&h, b, 2);
      alignas(64) float scale[PW];
      const float d = dequant_impl::f16_scalar<Arch>(h);
      for (std::int64_t i = 0; i < PW; ++i) scale[i] = d;
      dequant_impl::q8_row<Arch>(b + 2, scale, dst + blk * kQ8Block);
      dequant_impl::q8_row<Arch>(b + 2 + PW, scale, dst + blk * kQ8Block + PW);
    }
  } else {
    std::int64_t c = 0;
    for (; c + PW <= head_dim; c += PW) {
      if constexpr (S == WeightStorage::f16)
        dequant_impl::f16_row<Arch>(row + 2 * c, dst + c);
      else
        dequant_impl::bf16_row<Arch>(row + 2 * c, dst + c);
    }
    for (; c < head_dim; ++c) {
      std::uint16_t h;
      __builtin_memcpy(&h, row + 2 * c, 2);
      dst[c] = S == WeightStorage::f16 ? dequant_impl::f16_scalar<Arch>(h)
                                       : dequant_impl::bf16_scalar<Arch>(h);
    }
  }
}

}  // namespace simdattn::detail
