// src/drivers/attention_flash.hpp — the flash-attention driver: query blocks x key blocks on
// the dispatched kernels, oneTBB over (batch, head, query-block pair), thread-local workspace.
// Used by FastAttention, simple_attention_fast and (through the same problem description)
// anything that holds Q, K and V as rows at some stride, such as a KV cache.
#pragma once

#include <cstdint>

#include "common/dropout.hpp"
#include "kernels/gemm_params.hpp"  // WeightStorage

namespace simdattn::detail {

/// softmax(scale Q Kᵀ [+ causal mask]) V for batch x heads independent problems, never
/// materialising the q_len x kv_len matrix. Row t of head h of batch b of Q is the head_dim
/// floats at q + b*q_batch_stride + h*q_head_stride + t*q_row_stride (likewise K, V, out), so
/// a [B*T, 3*inner] QKV GEMM output is read in place as [B, H, T, hd].
struct FlashProblem {
  std::int64_t batch = 1, heads = 1, q_len = 0, kv_len = 0, head_dim = 0;
  /// Grouped-query attention: query head h reads K/V head h / kv_group (K and V hold
  /// heads / kv_group heads); 1 is multi-head attention.
  std::int64_t kv_group = 1;
  /// The dropout mask's batch index of this problem's batch entry 0 (a problem that is one
  /// entry of a larger batch).
  std::int64_t batch_index = 0;
  const float* q = nullptr;
  std::int64_t q_batch_stride = 0, q_head_stride = 0, q_row_stride = 0;
  const float* k = nullptr;
  std::int64_t k_batch_stride = 0, k_head_stride = 0, k_row_stride = 0;
  const float* v = nullptr;
  std::int64_t v_batch_stride = 0, v_head_stride = 0, v_row_stride = 0;
  float* out = nullptr;
  std::int64_t out_batch_stride = 0, out_head_stride = 0, out_row_stride = 0;
  float scale = 1.0f;
  bool causal = false;
  /// Absolute positions: query t is at q_offset + t, key j at k_offset + j. The causal mask
  /// hides key positions greater than the query's; the dropout mask is drawn at (b, h, query
  /// position, key position).
  std::int64_t q_offset = 0, k_offset = 0;
  /// K/V as a ring of kv_ring rows per head (a KV cache): key j is row (kv_ring_start + j) %
  /// kv_ring. 0: key j is row j.
  std::int64_t kv_ring = 0, kv_ring_start = 0;
  DropoutParams dropout;
  /// false: a query reads only the keys it can see, so a hidden token's NaN or Inf never
  /// reaches it (KV-cache forwards: any split of a sequence into calls gives the same result).
  /// true: the book's `attn_weights @ values`, which multiplies masked (zero) weights with their
  /// value rows too, so a non-finite V[j][c] makes column c NaN for every query that cannot
  /// see key j (plain causal forwards, as PyTorch).
  bool propagate_masked_nonfinite = false;
  /// decode_attention only: K/V stored in another type (k and v unused), rows of kv_row_bytes
  /// at kb/vb in [batch][K/V heads][kv_ring] order.
  WeightStorage kv_storage = WeightStorage::f32;
  const unsigned char* kb = nullptr;
  const unsigned char* vb = nullptr;
  std::int64_t kv_row_bytes = 0;
};

/// Runs on the active ISA with num_threads() threads; bitwise identical for any thread count.
/// A query that sees a NaN score or value gets NaN, as in the reference.
void flash_attention(const FlashProblem& problem);

}  // namespace simdattn::detail
