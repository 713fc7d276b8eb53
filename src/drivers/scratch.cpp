// src/drivers/scratch.cpp — see scratch.hpp.
#include "drivers/scratch.hpp"

#include <cstdlib>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace simdattn::detail {

ScratchFloats::~ScratchFloats() { std::free(data_); }

float* ScratchFloats::get(std::int64_t n) {
  if (n <= capacity_) return data_;
  std::free(data_);
  data_ = nullptr;
  capacity_ = 0;
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  std::size_t bytes = static_cast<std::size_t>((n + 15) / 16 * 16) * sizeof(float);
  const std::size_t align = huge_pages_ && bytes >= 2 * kHuge ? kHuge : 64;
  bytes = (bytes + align - 1) / align * align;
  data_ = static_cast<float*>(std::aligned_alloc(align, bytes));
  if (data_ == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHuge) ::madvise(data_, bytes, MADV_HUGEPAGE);
#endif
  capacity_ = static_cast<std::int64_t>(bytes / sizeof(float));
  return data_;
}

}  // namespace simdattn::detail
