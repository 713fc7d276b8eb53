// simdattn/safetensors.hpp — reading and writing tensors in the safetensors format.
#pragma once

#include <map>
#include <string>

#include "simdattn/dtype.hpp"
#include "simdattn/export.h"
#include "simdattn/tensor.hpp"

namespace simdattn {

/// Tensors by name, as in a PyTorch state_dict().
using TensorMap = std::map<std::string, Tensor>;

/// Reads every tensor of a safetensors file. F32 is read as is; F16 and BF16 are converted to
/// f32. The whole file is validated (header length against the file size, JSON, dtype,
/// shape x dtype size == byte range, offsets in bounds and non-overlapping) before any tensor is
/// returned. Throws Error(io) if the file cannot be read and Error(format) if it is malformed.
SIMDATTN_API TensorMap load_safetensors(const std::string& path);
/// How a file stores its tensors: f16 or bf16 when every tensor is stored in that type, f32
/// otherwise (mixed files included). Reads and validates only the header, like
/// load_safetensors. A module can then keep a half-precision checkpoint in its own type:
/// module.set_weight_storage(safetensors_storage(path)).
SIMDATTN_API DType safetensors_storage(const std::string& path);
/// Same, from bytes in memory (`what` names the source in error messages).
SIMDATTN_API TensorMap parse_safetensors(const unsigned char* bytes, std::size_t size,
                                         const std::string& what = "<memory>");

/// Writes the tensors as F32, in name order. Writes to a temporary file in the same folder and
/// renames it, so a failure never leaves a partial file at `path`. Throws Error(io).
SIMDATTN_API void save_safetensors(const std::string& path, const TensorMap& tensors);

}  // namespace simdattn
