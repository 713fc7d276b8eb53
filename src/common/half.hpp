// src/common/half.hpp — scalar conversions between f32 and the 16-bit storage types, and the
// Q8_0 and Q4_0 block encoders (simdattn/dtype.hpp). Baseline code: packing and the reference use these;
// the kernels decode with their own SIMD conversions, which the tests hold to these bit for bit
// (and these to an independent table, tests/unit/dtype_table.inc).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "simdattn/dtype.hpp"

namespace simdattn::detail {

inline std::uint32_t f32_bits(float x) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float f32_from_bits(std::uint32_t u) noexcept {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

/// IEEE binary16 -> f32, exact (subnormals and Inf included). A NaN keeps its sign and
/// payload and comes out quiet, as the hardware conversions (F16C, AVX-512F, NEON fcvtl) do.
inline float f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f)
    return f32_from_bits(sign | 0x7f800000u | (mant << 13) | (mant != 0 ? 0x00400000u : 0u));
  if (exp != 0) return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in f32.
  const float mag = static_cast<float>(mant) * 0x1p-24f;
  return sign ? -mag : mag;
}

/// f32 -> IEEE binary16, rounded to nearest even; overflow gives Inf, NaN stays a (quiet) NaN.
inline std::uint16_t f32_to_f16(float x) noexcept {
  const std::uint32_t u = f32_bits(x);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u)  // Inf or NaN
    return static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0u));
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal half, mant = round(|x| * 2^24).
    // |x| * 2^24 < 2^10 is exact in f32 and nearbyint rounds it to nearest even.
    const float scaled = f32_from_bits(abs) * 0x1p24f;
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(scaled)));
  }
  // Normal: rebias the exponent, round the 13 dropped bits to nearest even (a carry into the
  // exponent is the correct result, up to Inf, which the overflow test above excluded).
  const std::uint32_t rebased = abs - (112u << 23);
  const std::uint32_t round = 0xfffu + ((rebased >> 13) & 1u);
  return static_cast<std::uint16_t>(sign | ((rebased + round) >> 13));
}

/// bfloat16 -> f32: exact.
inline float bf16_to_f32(std::uint16_t h) noexcept {
  return f32_from_bits(static_cast<std::uint32_t>(h) << 16);
}

/// f32 -> bfloat16, rounded to nearest even; NaN stays a quiet NaN of the same sign.
inline std::uint16_t f32_to_bf16(float x) noexcept {
  const std::uint32_t u = f32_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  const std::uint32_t round = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + round) >> 16);
}

/// 1 / d, or 0 where that is not finite: d = 0 (GGUF's rule), or |d| < 2^-128, where 1 / d
/// overflows and w / d would be Inf or NaN, whose conversion to an integer is undefined. Such a
/// block's scale is 0 in f16 anyway, so its values read 0 (+-0) whatever the codes.
inline float finite_inverse(float d) noexcept {
  const float inv = d != 0.0f ? 1.0f / d : 0.0f;
  return std::isfinite(inv) ? inv : 0.0f;
}

/// GGUF Q8_0 of 32 values (read at in[i * stride]): the f16 scale, and 32 int8 into q.
/// d = amax / 127, id = d ? 1/d : 0, q = roundf(w * id). A NaN or Inf in the block stores a
/// NaN scale (q = 0), so every value of the block decodes to NaN.
inline std::uint16_t q8_0_encode_block(const float* in, std::int64_t stride,
                                       std::int8_t* q) noexcept {
  float amax = 0.0f;
  bool finite = true;
  for (int i = 0; i < 32; ++i) {
    const float w = in[i * stride];
    if (!std::isfinite(w)) finite = false;
    amax = std::fabs(w) > amax ? std::fabs(w) : amax;
  }
  if (!finite) {
    for (int i = 0; i < 32; ++i) q[i] = 0;
    return 0x7e00u;  // NaN
  }
  const float d = amax / 127.0f;
  const float id = finite_inverse(d);
  for (int i = 0; i < 32; ++i) q[i] = static_cast<std::int8_t>(std::roundf(in[i * stride] * id));
  return f32_to_f16(d);
}

/// GGUF Q4_0 of 32 values (read at in[i * stride]): the f16 scale, and 32 codes 0..15 into q
/// (value = f16(d) * (q - 8)). m = the value of largest |w| (the first of equals), d = m / -8,
/// id = d ? 1/d : 0, q = min(15, trunc(w * id + 8.5)) in f32 arithmetic. A NaN or Inf in the
/// block stores a NaN scale (q = 8), as for Q8_0.
inline std::uint16_t q4_0_encode_block(const float* in, std::int64_t stride,
                                       std::uint8_t* q) noexcept {
  float amax = 0.0f, max = 0.0f;
  bool finite = true;
  for (int i = 0; i < 32; ++i) {
    const float w = in[i * stride];
    if (!std::isfinite(w)) finite = false;
    if (amax < std::fabs(w)) {
      amax = std::fabs(w);
      max = w;
    }
  }
  if (!finite) {
    for (int i = 0; i < 32; ++i) q[i] = 8;
    return 0x7e00u;  // NaN
  }
  const float d = max / -8.0f;
  const float id = finite_inverse(d);
  for (int i = 0; i < 32; ++i) {
    // w * id lies in [-8, 8] (up to rounding), so + 8.5 is positive and truncation is floor.
    // The product is rounded on its own (volatile: no fused multiply-add, whatever the
    // compiler's contraction default), as GGUF's reference computes it.
    volatile float scaled = in[i * stride] * id;
    const auto t = static_cast<int>(scaled + 8.5f);
    q[i] = static_cast<std::uint8_t>(t < 15 ? t : 15);
  }
  return f32_to_f16(d);
}

/// A KV-cache row of head_dim values in storage type t (the layout of kv_row_bytes in
/// kernels/gemm_params.hpp): f16/bf16 values back to back, or q8_0 blocks of [f16 scale][32
/// int8] (head_dim % 32 == 0). f32 rows are plain floats.
inline void kv_encode_row(const float* src, std::int64_t head_dim, DType t, unsigned char* dst) noexcept {
  if (t == DType::f32) {
    std::memcpy(dst, src, static_cast<std::size_t>(head_dim) * 4);
  } else if (t == DType::q8_0) {
    for (std::int64_t blk = 0; blk < head_dim / 32; ++blk) {
      unsigned char* b = dst + blk * 34;
      std::int8_t q[32];
      const std::uint16_t d = q8_0_encode_block(src + blk * 32, 1, q);
      std::memcpy(b, &d, 2);
      std::memcpy(b + 2, q, 32);
    }
  } else {
    for (std::int64_t c = 0; c < head_dim; ++c) {
      const std::uint16_t h = t == DType::f16 ? f32_to_f16(src[c]) : f32_to_bf16(src[c]);
      std::memcpy(dst + 2 * c, &h, 2);
    }
  }
}

/// The inverse, exactly (the reference's reading of a stored cache).
inline void kv_decode_row(const unsigned char* src, std::int64_t head_dim, DType t, float* dst) noexcept {
  if (t == DType::f32) {
    std::memcpy(dst, src, static_cast<std::size_t>(head_dim) * 4);
  } else if (t == DType::q8_0) {
    for (std::int64_t blk = 0; blk < head_dim / 32; ++blk) {
      const unsigned char* b = src + blk * 34;
      std::uint16_t d;
      std::memcpy(&d, b, 2);
      const float scale = f16_to_f32(d);
      for (int i = 0; i < 32; ++i)
        dst[blk * 32 + i] = scale * static_cast<float>(static_cast<std::int8_t>(b[2 + i]));
    }
  } else {
    for (std::int64_t c = 0; c < head_dim; ++c) {
      std::uint16_t h;
      std::memcpy(&h, src + 2 * c, 2);
      dst[c] = t == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
  }
}

}  // namespace simdattn::detail
