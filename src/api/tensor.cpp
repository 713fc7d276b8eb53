// src/api/tensor.cpp — Tensor construction and shape checks.
#include "simdattn/tensor.hpp"

#include <limits>
#include <sstream>

#include "common/validate.hpp"

namespace simdattn {

std::int64_t checked_numel(const std::vector<std::int64_t>& shape, const char* what) {
  std::int64_t n = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0)
      detail::fail_arg(what, ": extent ", i, " of shape ", shape_to_string(shape),
                       " must be >= 0");
    n = detail::checked_mul(what, "element count", n, shape[i]);
  }
  if (static_cast<std::uint64_t>(n) > std::numeric_limits<std::size_t>::max() / sizeof(float))
    detail::fail_arg(what, ": shape ", shape_to_string(shape), " is too large");
  return n;
}

Tensor::Tensor(std::vector<std::int64_t> shape)
    : shape_(std::move(shape)),
      values_(static_cast<std::size_t>(checked_numel(shape_, "Tensor")), 0.0f) {}

Tensor::Tensor(std::vector<std::int64_t> shape, std::vector<float> values)
    : shape_(std::move(shape)), values_(std::move(values)) {
  const std::int64_t n = checked_numel(shape_, "Tensor");
  if (static_cast<std::int64_t>(values_.size()) != n)
    detail::fail_arg("Tensor: shape ", shape_to_string(shape_), " holds ", n,
                     " elements but ", values_.size(), " values were given");
}

std::int64_t Tensor::dim(std::size_t axis) const {
  if (axis >= shape_.size())
    detail::fail_arg("Tensor::dim: axis (", axis, ") must be < rank (", shape_.size(), ")");
  return shape_[axis];
}

std::string shape_to_string(const std::vector<std::int64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

}  // namespace simdattn
