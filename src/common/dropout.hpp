// src/common/dropout.hpp — the counter-based dropout mask shared by every backend.
//
// Why counter-based: the mask must be identical on the reference and fast paths, for any thread
// count, any query blocking and any KV-cache split. A stateful RNG consumed in loop order would
// tie the mask to one traversal order; a hash of (seed, batch, head, query position, key
// position) does not. Header-only and constexpr-friendly; it is integer code, so it computes the
// same bits whatever the instruction set. Kernel translation units must not include it (they
// must not share inline code with baseline TUs): apply dropout in the driver or give kernels a
// precomputed mask.
#pragma once

#include <cstdint>

namespace simdattn::detail {

struct DropoutParams {
  double p = 0.0;          ///< drop probability, in [0, 1)
  std::uint64_t seed = 0;  ///< mask seed
  constexpr bool active() const noexcept { return p > 0.0; }
  /// Factor applied to kept weights (inverted dropout).
  constexpr double keep_scale() const noexcept { return 1.0 / (1.0 - p); }
};

/// splitmix64's finaliser: a bijective 64-bit mixer with full avalanche.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Uniform double in [0, 1) for one attention weight: batch b, head h, query position i, key
/// position j (absolute positions, so a KV-cache decode draws the same value as a full forward).
///
/// The definition (all arithmetic on uint64, wrapping mod 2^64; ^ is xor, >> a logical shift):
///   mix64(z):  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
///              z = (z ^ (z >> 27)) * 0x94d049bb133111eb
///              return z ^ (z >> 31)
///   s = mix64(seed + 0x9e3779b97f4a7c15)
///   s = mix64(s ^ (b * 0xd6e8feb86659fd93 + h))
///   s = mix64(s ^ (i * 0xa0761d6478bd642f + j))
///   u = (s >> 11) / 2^53                      (the top 53 bits; exact in a double)
/// and the weight is kept iff u >= p (dropout_keep), then scaled by 1 / (1 - p). Head h is the
/// head's index within its module (0 for CausalAttention; the wrapper's heads pass their own).
/// Changing any of this changes every seeded training forward: tools/make_dropout_table.py
/// reimplements it from this comment and tests/unit/test_dropout_hash.cpp holds its output.
constexpr double dropout_uniform(std::uint64_t seed, std::uint64_t b, std::uint64_t h,
                                 std::uint64_t i, std::uint64_t j) noexcept {
  std::uint64_t s = mix64(seed + 0x9e3779b97f4a7c15ULL);
  s = mix64(s ^ (b * 0xd6e8feb86659fd93ULL + h));
  s = mix64(s ^ (i * 0xa0761d6478bd642fULL + j));
  return static_cast<double>(s >> 11) * (1.0 / 9007199254740992.0);  // 53 bits
}

/// True if the weight survives dropout with probability 1 - p.
constexpr bool dropout_keep(const DropoutParams& d, std::uint64_t b, std::uint64_t h,
                            std::uint64_t i, std::uint64_t j) noexcept {
  return !d.active() || dropout_uniform(d.seed, b, h, i, j) >= d.p;
}

}  // namespace simdattn::detail
