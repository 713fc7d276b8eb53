// src/drivers/scratch.hpp — the drivers' per-thread scratch: a grow-only float buffer that a
// thread keeps across calls, so repeated forwards neither allocate nor page-fault fresh memory.
#pragma once

#include <cstdint>

namespace simdattn::detail {

/// Grow-only, 64-byte aligned float storage. With `huge_pages`, buffers of 4 MiB and more are
/// 2 MiB aligned and advised to Linux as transparent huge pages (a hint; failure is harmless).
/// get() throws std::bad_alloc when the memory is not there; contents are unspecified after a
/// call that grew the buffer. Not thread-safe: meant to be thread_local.
class ScratchFloats {
 public:
  explicit ScratchFloats(bool huge_pages = false) noexcept : huge_pages_(huge_pages) {}
  ~ScratchFloats();
  ScratchFloats(const ScratchFloats&) = delete;
  ScratchFloats& operator=(const ScratchFloats&) = delete;

  /// At least n floats.
  float* get(std::int64_t n);

 private:
  float* data_ = nullptr;
  std::int64_t capacity_ = 0;
  bool huge_pages_ = false;
};

}  // namespace simdattn::detail
