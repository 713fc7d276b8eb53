// src/modules/kv_cache.cpp — KVCache: preallocation, validation, sliding-window eviction.

#include "common/validate.hpp"
#include "kernels/attention_params.hpp"
#include "drivers/gemm.hpp"  // weight_storage(DType)
#include "modules/attention_core.hpp"
#include "modules/kv_cache_storage.hpp"
#include "simdattn/attention.hpp"

namespace simdattn {

KVCache::KVCache(const AttentionModule& module, std::int64_t batch, std::int64_t capacity,
                 bool sliding_window, DType kv_type)
    : storage_(std::make_unique<Storage>()) {
  const char* who = "KVCache";
  const detail::AttentionSpec& spec = module.core().spec();
  if (!spec.causal)
    detail::fail_arg(who, ": module ", spec.module_name,
                     " is not causal; only CausalAttention, MultiHeadAttentionWrapper and "
                     "MultiHeadAttention decode through a cache");
  detail::require_positive(who, "batch", batch);
  if (capacity < 0) detail::fail_arg(who, ": capacity (", capacity, ") must be >= 0");
  if (capacity == 0) capacity = spec.context_length;
  std::int64_t n = detail::checked_mul(who, "batch * kv_heads", batch, spec.kv_heads());
  n = detail::checked_mul(who, "batch * heads * capacity", n, capacity);
  n = detail::checked_mul(who, "batch * heads * capacity * head_dim", n, spec.head_dim);
  if (static_cast<std::uint64_t>(n) > (std::uint64_t{1} << 40))
    detail::fail_arg(who, ": batch * heads * capacity * head_dim (", n,
                     ") floats is too large to preallocate");
  Storage& s = *storage_;
  s.owner_id = module.core().id();
  s.batch = batch;
  s.heads = spec.kv_heads();
  s.head_dim = spec.head_dim;
  s.capacity = capacity;
  s.sliding = sliding_window;
  s.type = kv_type;
  if (kv_type == DType::f32) {
    s.row_bytes = spec.head_dim * 4;
    s.k.assign(static_cast<std::size_t>(n), 0.0f);
    s.v.assign(static_cast<std::size_t>(n), 0.0f);
    return;
  }
  if (kv_type == DType::q4_0)
    detail::fail(ErrorCode::unsupported, who,
                 ": q4_0 is a weight type; a cache stores f32, f16, bf16 or q8_0");
  if (kv_type != DType::f16 && kv_type != DType::bf16 && kv_type != DType::q8_0)
    detail::fail_arg(who, ": unknown kv_type (", static_cast<int>(kv_type), ")");
  if (kv_type == DType::q8_0 && spec.head_dim % 32 != 0)
    detail::fail(ErrorCode::unsupported, who, ": a q8_0 cache stores blocks of 32 along head_dim; ",
                 "head_dim (", spec.head_dim, ") is not a multiple of 32");
  s.row_bytes = detail::kv_row_bytes(detail::weight_storage(kv_type), spec.head_dim);
  const std::int64_t rows = n / spec.head_dim;
  const std::int64_t bytes = detail::checked_mul(who, "cache bytes", rows, s.row_bytes);
  s.kb.assign(static_cast<std::size_t>(bytes), 0);
  s.vb.assign(static_cast<std::size_t>(bytes), 0);
}

DType KVCache::kv_type() const noexcept { return storage_ ? storage_->type : DType::f32; }
std::int64_t KVCache::bytes() const noexcept {
  if (!storage_) return 0;
  const Storage& s = *storage_;
  return static_cast<std::int64_t>((s.k.size() + s.v.size()) * sizeof(float) + s.kb.size() + s.vb.size());
}

KVCache::~KVCache() = default;
KVCache::KVCache(KVCache&&) noexcept = default;
KVCache& KVCache::operator=(KVCache&&) noexcept = default;

void KVCache::reset() noexcept {
  if (!storage_) return;
  storage_->start = 0;
  storage_->length = 0;
  storage_->position = 0;
}

KVCache::Storage& KVCache::storage() {
  if (!storage_) detail::fail_arg("KVCache: the cache was moved from");
  return *storage_;
}
const KVCache::Storage& KVCache::storage() const {
  if (!storage_) detail::fail_arg("KVCache: the cache was moved from");
  return *storage_;
}
void KVCache::truncate(std::int64_t tokens) {
  const char* who = "KVCache::truncate";
  if (!storage_) detail::fail_arg(who, ": the cache was moved from");
  if (tokens < 0 || tokens > storage_->length)
    detail::fail_arg(who, ": tokens (", tokens, ") must be in [0, length()] = [0, ",
                     storage_->length, "]");
  storage_->length -= tokens;
  storage_->position -= tokens;
}

std::int64_t KVCache::length() const noexcept { return storage_ ? storage_->length : 0; }
std::int64_t KVCache::position() const noexcept { return storage_ ? storage_->position : 0; }
std::int64_t KVCache::capacity() const noexcept { return storage_ ? storage_->capacity : 0; }
std::int64_t KVCache::batch() const noexcept { return storage_ ? storage_->batch : 0; }
bool KVCache::sliding_window() const noexcept { return storage_ && storage_->sliding; }

void KVCache::Storage::make_room(std::int64_t tokens) {
  const char* who = "KVCache";
  if (length + tokens <= capacity) return;
  if (!sliding)
    detail::fail(ErrorCode::capacity, who, ": appending ", tokens, " token(s) to the ", length,
                 " held would exceed capacity (", capacity,
                 "); reset() the cache, give it a larger capacity, or enable sliding_window");
  if (tokens > capacity)
    detail::fail(ErrorCode::capacity, who, ": a sliding-window cache of capacity (", capacity,
                 ") cannot take ", tokens, " tokens in one call");
  // Keep the most recent capacity - tokens tokens: the oldest `drop` leave the ring.
  const std::int64_t drop = length + tokens - capacity;
  start = (start + drop) % capacity;
  length -= drop;
}

}  // namespace simdattn
