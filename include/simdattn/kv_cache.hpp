// simdattn/kv_cache.hpp — the key/value cache for token-by-token decoding.
#pragma once

#include <cstdint>
#include <memory>

#include "simdattn/dtype.hpp"
#include "simdattn/export.h"

namespace simdattn {

class AttentionModule;

/// Keys and values of the tokens seen so far, preallocated as [B, heads, capacity, head_dim]
/// for one causal module (CausalAttention, MultiHeadAttentionWrapper, MultiHeadAttention).
/// Owned by the caller: one module can serve many independent caches (sequences). A cache must
/// not be used by two forwards at once.
class SIMDATTN_API KVCache {
 public:
  /// capacity 0 means the module's context_length. With sliding_window, appending past the
  /// capacity drops the oldest tokens (the most recent `capacity` stay); without it, that is an
  /// Error(capacity).
  ///
  /// kv_type stores keys and values as f32 (default), f16, bf16 or q8_0 (simdattn/dtype.hpp;
  /// q8_0 in blocks of 32 along head_dim). Attention always reads them as stored and computes
  /// in f32, on both backends, so a cached forward gives the same result for any split of a
  /// sequence into calls. Error(unsupported) for q8_0 when head_dim % 32 != 0, and for q4_0
  /// (a weight type only).
  KVCache(const AttentionModule& module, std::int64_t batch, std::int64_t capacity = 0,
          bool sliding_window = false, DType kv_type = DType::f32);
  ~KVCache();
  KVCache(KVCache&&) noexcept;
  KVCache& operator=(KVCache&&) noexcept;

  void reset() noexcept;                   ///< forget every token; keeps the storage
  /// Forgets the `tokens` most recent tokens, as if they had never been appended (rejected
  /// speculative tokens, beam search backtracking, timing one step repeatedly): length() and
  /// position() go back by `tokens`, so the next forward sees the sequence without them.
  /// 0 <= tokens <= length(), else Error(invalid_argument) and nothing changes. Tokens a
  /// sliding window already evicted are not restored.
  void truncate(std::int64_t tokens);
  std::int64_t length() const noexcept;    ///< tokens currently held (<= capacity)
  std::int64_t position() const noexcept;  ///< tokens appended since reset (absolute position)
  std::int64_t capacity() const noexcept;
  std::int64_t batch() const noexcept;
  bool sliding_window() const noexcept;
  DType kv_type() const noexcept;
  /// Bytes held for keys and values (the preallocated capacity).
  std::int64_t bytes() const noexcept;

  struct Storage;
  /// Internal. Error(invalid_argument) on a moved-from cache.
  Storage& storage();
  const Storage& storage() const;

 private:
  std::unique_ptr<Storage> storage_;
};

}  // namespace simdattn
