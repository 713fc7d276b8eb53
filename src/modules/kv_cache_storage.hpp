// src/modules/kv_cache_storage.hpp — what a KVCache holds, shared by both backends' cached
// forwards: K and V head-major [B, H, capacity, head_dim], and how many tokens they hold.
#pragma once

#include <cstdint>
#include <vector>

#include "simdattn/kv_cache.hpp"

namespace simdattn::detail {
class AttentionCore;
}

namespace simdattn {

// Internal, though nested in a public (exported) class: keep it out of a shared library's API.
struct __attribute__((visibility("hidden"))) KVCache::Storage {
  const detail::AttentionCore* owner = nullptr;  ///< the module the cache was made for
  std::int64_t batch = 0, heads = 0, head_dim = 0, capacity = 0;
  bool sliding = false;
  std::int64_t length = 0;    ///< tokens held: slots [0, length)
  std::int64_t position = 0;  ///< tokens appended since reset; slot s holds position - length + s
  std::vector<float> k, v;    ///< [batch, heads, capacity, head_dim]

  /// Absolute position of slot 0.
  std::int64_t first_position() const noexcept { return position - length; }
  std::int64_t row(std::int64_t b, std::int64_t h, std::int64_t slot) const noexcept {
    return ((b * heads + h) * capacity + slot) * head_dim;
  }
  float* k_at(std::int64_t b, std::int64_t h, std::int64_t slot) noexcept {
    return k.data() + row(b, h, slot);
  }
  float* v_at(std::int64_t b, std::int64_t h, std::int64_t slot) noexcept {
    return v.data() + row(b, h, slot);
  }
  const float* k_at(std::int64_t b, std::int64_t h, std::int64_t slot) const noexcept {
    return k.data() + row(b, h, slot);
  }
  const float* v_at(std::int64_t b, std::int64_t h, std::int64_t slot) const noexcept {
    return v.data() + row(b, h, slot);
  }

  /// Makes room for `tokens` new tokens at slots [length, length + tokens): throws
  /// Error(capacity) when they do not fit and the cache does not slide; in sliding mode drops
  /// the oldest tokens (shifting the rest down). Checks everything before changing anything.
  void make_room(std::int64_t tokens);
  /// After the backend wrote the new K/V rows: they now count as held.
  void commit(std::int64_t tokens) noexcept {
    length += tokens;
    position += tokens;
  }
};

}  // namespace simdattn
