// src/api/dtype.cpp — storage type and rotary layout names (simdattn/dtype.hpp,
// simdattn/rope.hpp).
#include "simdattn/dtype.hpp"
#include "simdattn/rope.hpp"

#include "common/validate.hpp"

namespace simdattn {

const char* dtype_name(DType type) noexcept {
  switch (type) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::q8_0: return "q8_0";
    case DType::q4_0: return "q4_0";
  }
  return "unknown";
}

DType parse_dtype(const std::string& name) {
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0})
    if (name == dtype_name(t)) return t;
  detail::fail_arg("parse_dtype: unknown storage type '", name,
                   "'; expected one of f32, f16, bf16, q8_0, q4_0");
}

std::int64_t dtype_block(DType type) noexcept {
  return type == DType::q8_0 || type == DType::q4_0 ? 32 : 1;
}

const char* rope_name(Rope rope) noexcept {
  switch (rope) {
    case Rope::none: return "none";
    case Rope::halves: return "halves";
    case Rope::interleaved: return "interleaved";
  }
  return "unknown";
}

Rope parse_rope(const std::string& name) {
  for (Rope r : {Rope::none, Rope::halves, Rope::interleaved})
    if (name == rope_name(r)) return r;
  detail::fail_arg("parse_rope: unknown rotary layout '", name,
                   "'; expected one of none, halves, interleaved");
}

}  // namespace simdattn
