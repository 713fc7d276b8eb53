// tests/fuzz/fuzz_safetensors.cpp — libFuzzer target for the safetensors reader. Any input must
// either parse into consistent tensors or throw Error(format); a crash, a sanitizer report, any
// other exception or another ErrorCode is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "simdattn/error.hpp"
#include "simdattn/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const simdattn::TensorMap tensors = simdattn::parse_safetensors(data, size, "fuzz input");
    std::size_t floats = 0;
    for (const auto& [name, t] : tensors) {
      std::int64_t numel = 1;
      for (std::int64_t extent : t.shape()) numel *= extent;  // validated: cannot overflow
      if (numel != t.numel()) std::abort();
      floats += t.values().size();
    }
    // Every element came from at least 2 input bytes (F16/BF16), so the result is bounded by
    // the input: a forged header cannot make the reader allocate more.
    if (floats > size / 2) std::abort();
  } catch (const simdattn::Error& e) {
    if (e.code() != simdattn::ErrorCode::format) std::abort();
  }
  return 0;
}
