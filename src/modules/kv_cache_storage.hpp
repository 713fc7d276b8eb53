// src/modules/kv_cache_storage.hpp — what a KVCache holds: K and V as a ring buffer
// (common/kv_ring.hpp), the identity and shape of the module it was made for, and how many
// tokens it holds.
#pragma once

#include <cstdint>
#include <vector>

#include "common/kv_ring.hpp"
#include "simdattn/kv_cache.hpp"

namespace simdattn {

// Internal, though nested in a public (exported) class: keep it out of a shared library's API.
struct __attribute__((visibility("hidden"))) KVCache::Storage {
  /// The module the cache was made for: its identity (AttentionCore::id(), never reused, so a
  /// module allocated where a destroyed one was is still a different module) and its shape.
  std::uint64_t owner_id = 0;
  std::int64_t batch = 0, heads = 0, head_dim = 0, capacity = 0;
  bool sliding = false;
  std::int64_t start = 0;     ///< physical slot of the oldest held token
  std::int64_t length = 0;    ///< tokens held
  std::int64_t position = 0;  ///< tokens appended since reset (absolute position of the next)
  std::vector<float> k, v;    ///< [batch, heads, capacity, head_dim] (f32 caches)
  DType type = DType::f32;
  std::int64_t row_bytes = 0;            ///< one stored row (stored caches)
  std::vector<unsigned char> kb, vb;     ///< [batch, heads, capacity] rows (stored caches)

  /// The cache as the drivers and the reference read and write it.
  detail::KVRing view() noexcept {
    detail::KVRing r;
    r.k = k.empty() ? nullptr : k.data();
    r.v = v.empty() ? nullptr : v.data();
    r.storage = type;
    r.kb = kb.empty() ? nullptr : kb.data();
    r.vb = vb.empty() ? nullptr : vb.data();
    r.row_bytes = row_bytes;
    r.batch = batch;
    r.heads = heads;
    r.capacity = capacity;
    r.head_dim = head_dim;
    r.start = start;
    r.length = length;
    r.position = position;
    return r;
  }

  /// Makes room for `tokens` new tokens at logical slots [length, length + tokens): throws
  /// Error(capacity) when they do not fit and the cache does not slide; in sliding mode forgets
  /// the oldest tokens (the ring's start advances; nothing moves). Checks everything before
  /// changing anything.
  void make_room(std::int64_t tokens);
  /// After the backend wrote the new K/V rows: they now count as held.
  void commit(std::int64_t tokens) noexcept {
    length += tokens;
    position += tokens;
  }
};

}  // namespace simdattn
