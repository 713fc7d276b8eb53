// simdattn/tensor.hpp — a small owning, row-major f32 tensor used at the API boundary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "simdattn/export.h"

namespace simdattn {

/// Row-major, contiguous float tensor. Shapes are validated on construction: no negative
/// extents and no element count that overflows int64 or size_t.
class SIMDATTN_API Tensor {
 public:
  Tensor() = default;
  /// Zero-filled tensor of the given shape.
  explicit Tensor(std::vector<std::int64_t> shape);
  /// Tensor of the given shape holding `values`; values.size() must equal the element count.
  Tensor(std::vector<std::int64_t> shape, std::vector<float> values);

  const std::vector<std::int64_t>& shape() const noexcept { return shape_; }
  std::size_t rank() const noexcept { return shape_.size(); }
  /// Extent of axis `axis`; throws Error(invalid_argument) if axis >= rank().
  std::int64_t dim(std::size_t axis) const;
  std::int64_t numel() const noexcept { return static_cast<std::int64_t>(values_.size()); }
  bool empty() const noexcept { return values_.empty(); }

  float* data() noexcept { return values_.data(); }
  const float* data() const noexcept { return values_.data(); }
  std::vector<float>& values() noexcept { return values_; }
  const std::vector<float>& values() const noexcept { return values_; }
  float& operator[](std::int64_t i) { return values_[static_cast<std::size_t>(i)]; }
  float operator[](std::int64_t i) const { return values_[static_cast<std::size_t>(i)]; }

 private:
  std::vector<std::int64_t> shape_;
  std::vector<float> values_;
};

/// "[2, 3, 4]"
SIMDATTN_API std::string shape_to_string(const std::vector<std::int64_t>& shape);

/// Product of the extents; throws Error(invalid_argument) naming `what` on a negative extent or
/// on overflow.
SIMDATTN_API std::int64_t checked_numel(const std::vector<std::int64_t>& shape, const char* what);

}  // namespace simdattn
