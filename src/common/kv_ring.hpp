// src/common/kv_ring.hpp — a KV cache as plain data, the way the drivers and the reference see
// it: K and V head-major [batch][heads][capacity][head_dim], used as a ring buffer.
//
// Why a ring: a sliding-window cache that is full drops its oldest token on every step. Moving
// the rest down costs the whole cache (~3 MiB per layer per token at GPT-2 small); a ring only
// advances `start`. Logical slot s (0 = oldest held token) lives in physical slot
// (start + s) % capacity, and holds the token at absolute position first_position() + s.
// Positions are int64 everywhere; nothing compares them as floats.
#pragma once

#include <cstdint>

#include "simdattn/dtype.hpp"

namespace simdattn::detail {

struct KVRing {
  float* k = nullptr;  ///< f32 caches
  float* v = nullptr;
  /// Caches stored in another type (k and v null): rows of row_bytes bytes in the same
  /// [batch][heads][capacity] order (layout: kernels/gemm_params.hpp, kv_row_bytes).
  DType storage = DType::f32;
  unsigned char* kb = nullptr;
  unsigned char* vb = nullptr;
  std::int64_t row_bytes = 0;
  std::int64_t batch = 0, heads = 0, capacity = 0, head_dim = 0;
  std::int64_t start = 0;     ///< physical slot of logical slot 0
  std::int64_t length = 0;    ///< tokens held: logical slots [0, length)
  std::int64_t position = 0;  ///< absolute position of the next token appended

  std::int64_t first_position() const noexcept { return position - length; }
  std::int64_t physical(std::int64_t logical) const noexcept {
    const std::int64_t p = start + logical;
    return p < capacity ? p : p - capacity;  // logical < capacity, start < capacity
  }
  /// Offset (in floats) of (b, h, physical slot 0): one head's [capacity][head_dim] matrix.
  std::int64_t head_offset(std::int64_t b, std::int64_t h) const noexcept {
    return (b * heads + h) * capacity * head_dim;
  }
  float* k_row(std::int64_t b, std::int64_t h, std::int64_t logical) const noexcept {
    return k + head_offset(b, h) + physical(logical) * head_dim;
  }
  float* v_row(std::int64_t b, std::int64_t h, std::int64_t logical) const noexcept {
    return v + head_offset(b, h) + physical(logical) * head_dim;
  }
  /// Row (b, h, logical) of a cache in any storage type, as bytes.
  unsigned char* k_bytes(std::int64_t b, std::int64_t h, std::int64_t logical) const noexcept {
    return storage == DType::f32 ? reinterpret_cast<unsigned char*>(k_row(b, h, logical))
                                 : kb + ((b * heads + h) * capacity + physical(logical)) * row_bytes;
  }
  unsigned char* v_bytes(std::int64_t b, std::int64_t h, std::int64_t logical) const noexcept {
    return storage == DType::f32 ? reinterpret_cast<unsigned char*>(v_row(b, h, logical))
                                 : vb + ((b * heads + h) * capacity + physical(logical)) * row_bytes;
  }
};

}  // namespace simdattn::detail
