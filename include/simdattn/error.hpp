// simdattn/error.hpp — the one exception type the public C++ API throws.
#pragma once

#include <stdexcept>
#include <string>

#include "simdattn/export.h"

namespace simdattn {

/// What kind of failure an Error reports. The C API maps these onto its status codes.
enum class ErrorCode : int {
  invalid_argument = 1,  ///< a size, shape, pointer or option is out of its documented range
  io = 2,                ///< a file could not be opened, read or written
  format = 3,            ///< a file's contents are malformed (safetensors header, dtype, offsets)
  unsupported = 4,       ///< an ISA or feature that is not compiled in or not supported by this CPU
  capacity = 5,          ///< a KV cache would grow past its capacity
};

/// Every error the library reports is an Error. Its message names the offending argument,
/// what was expected and what was given, e.g.
/// "MultiHeadAttention: d_out (770) must be divisible by num_heads (12)".
class SIMDATTN_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace simdattn
