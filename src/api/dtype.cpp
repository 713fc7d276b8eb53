// src/api/dtype.cpp — storage type names (simdattn/dtype.hpp).
#include "simdattn/dtype.hpp"

#include "common/validate.hpp"

namespace simdattn {

const char* dtype_name(DType type) noexcept {
  switch (type) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::q8_0: return "q8_0";
  }
  return "unknown";
}

DType parse_dtype(const std::string& name) {
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0})
    if (name == dtype_name(t)) return t;
  detail::fail_arg("parse_dtype: unknown storage type '", name,
                   "'; expected one of f32, f16, bf16, q8_0");
}

std::int64_t dtype_block(DType type) noexcept { return type == DType::q8_0 ? 32 : 1; }

}  // namespace simdattn
