// src/common/rope.hpp — rotary position embeddings (simdattn/rope.hpp) as both paths compute
// them. Baseline code, shared by the fast drivers (float, angles from a table) and the
// reference (double, exact angles); never included by the per-ISA kernels.
//
// Pair i of a head (0 <= i < head_dim / 2) holds dimensions (i, i + head_dim/2) for `halves`
// and (2i, 2i + 1) for `interleaved`; at absolute position p it turns by
// angle = p * theta^(-2i / head_dim):  a' = a cos - b sin,  b' = b cos + a sin.
// The angle is formed in double from the integer position, so a position far into a long
// sequence loses nothing to float rounding before cos/sin are taken.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "simdattn/rope.hpp"

namespace simdattn::detail {

/// Dimensions (first, second) of pair i.
inline void rope_pair(Rope layout, std::int64_t head_dim, std::int64_t i, std::int64_t& first,
                      std::int64_t& second) noexcept {
  if (layout == Rope::interleaved) {
    first = 2 * i;
    second = 2 * i + 1;
  } else {
    first = i;
    second = i + head_dim / 2;
  }
}

/// The angle of pair i at position p, in double.
inline double rope_angle(double theta, std::int64_t head_dim, std::int64_t i,
                         std::int64_t position) noexcept {
  const double inv_freq =
      std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
  return static_cast<double>(position) * inv_freq;
}

/// Rotates one head of width head_dim in place, in double (the reference).
inline void rope_rotate_exact(double* x, std::int64_t head_dim, Rope layout, double theta,
                              std::int64_t position) noexcept {
  if (layout == Rope::none) return;
  for (std::int64_t i = 0; i < head_dim / 2; ++i) {
    std::int64_t ia, ib;
    rope_pair(layout, head_dim, i, ia, ib);
    const double angle = rope_angle(theta, head_dim, i, position);
    const double c = std::cos(angle), s = std::sin(angle);
    const double a = x[ia], b = x[ib];
    x[ia] = a * c - b * s;
    x[ib] = b * c + a * s;
  }
}

/// cos and sin of every pair at each position, rounded to float: cs[(p * pairs + i) * 2] is
/// cos, + 1 sin. Built once per module for positions [0, positions); a position past the table
/// (a sliding-window cache runs beyond its module's context length) is computed with the same
/// formula, so it has the same bits a longer table would hold.
class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(Rope layout, std::int64_t head_dim, double theta, std::int64_t positions)
      : layout_(layout), head_dim_(head_dim), theta_(theta), positions_(positions) {
    if (layout == Rope::none) return;
    const std::int64_t pairs = head_dim / 2;
    cs_.resize(static_cast<std::size_t>(positions * pairs * 2));
    for (std::int64_t p = 0; p < positions; ++p) fill(p, cs_.data() + p * pairs * 2);
  }

  Rope layout() const noexcept { return layout_; }
  bool active() const noexcept { return layout_ != Rope::none; }

  /// Rotates x (head_dim floats) to position p. `spill` is scratch of head_dim floats for
  /// positions past the table.
  void rotate(float* x, std::int64_t position, float* spill) const noexcept {
    const std::int64_t pairs = head_dim_ / 2;
    const float* cs = cs_.data() + position * pairs * 2;
    if (position >= positions_) {
      fill(position, spill);
      cs = spill;
    }
    for (std::int64_t i = 0; i < pairs; ++i) {
      std::int64_t ia, ib;
      rope_pair(layout_, head_dim_, i, ia, ib);
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const float a = x[ia], b = x[ib];
      x[ia] = a * c - b * s;
      x[ib] = b * c + a * s;
    }
  }

 private:
  void fill(std::int64_t position, float* cs) const noexcept {
    for (std::int64_t i = 0; i < head_dim_ / 2; ++i) {
      const double angle = rope_angle(theta_, head_dim_, i, position);
      cs[2 * i] = static_cast<float>(std::cos(angle));
      cs[2 * i + 1] = static_cast<float>(std::sin(angle));
    }
  }

  Rope layout_ = Rope::none;
  std::int64_t head_dim_ = 0;
  double theta_ = 10000.0;
  std::int64_t positions_ = 0;
  std::vector<float> cs_;
};

}  // namespace simdattn::detail
