// src/drivers/attention.hpp — the fast path of the attention modules: weights packed once at
// construction, then GEMMs and flash-style attention on the dispatched kernels, tiled with oneTBB.
#pragma once

#include <cstdint>
#include <memory>

#include "common/attention_desc.hpp"
#include "common/dropout.hpp"
#include "common/kv_ring.hpp"

namespace simdattn::detail {

/// One sequence of a cached call: `tokens` new rows of x (and of y), from row `row` on, appended
/// to batch entry b of `cache` (room already made; the caller commits).
struct CachedSequence {
  KVRing cache;
  std::int64_t b = 0;
  std::int64_t tokens = 0;
  std::int64_t row = 0;
};

class FastAttention {
 public:
  /// Packs the weights (QKV into one [3*inner, d_in] PackedMatrix, out_proj apart). Validation
  /// is done by the caller.
  FastAttention(const AttentionDesc& spec, const AttentionWeights& weights);
  ~FastAttention();

  /// x [B, T, d_in] -> y [B, T, output_dim]. attn_weights, when non-null (single head only),
  /// receives [B, T, T] weights after dropout. Arguments are already validated.
  void forward(const float* x, std::int64_t batch, std::int64_t tokens, float* y,
               const DropoutParams& dropout, float* attn_weights) const;

  /// The same through a KV cache: the new tokens' K and V are appended at logical slots
  /// [cache.length, cache.length + tokens) (room already made; the caller commits), and query
  /// t, at absolute position cache.position + t, attends to every held key up to itself and to
  /// nothing else (a hidden token's NaN or Inf never reaches it), so any split of a sequence
  /// into calls gives the same outputs.
  void forward_cached(const float* x, std::int64_t batch, std::int64_t tokens, float* y,
                      const DropoutParams& dropout, const KVRing& cache) const;

  /// Many sequences in one call, each through its own cache and at its own position (a
  /// batched decode step, or a ragged prefill): one QKV and one out_proj GEMM over all their
  /// rows, then attention per sequence over its own cache. Each sequence's rows of y have the
  /// bits they would have if it were alone (the GEMMs' arithmetic per row does not depend on
  /// the number of rows; attention never mixes sequences).
  void forward_sequences(const float* x, float* y, const DropoutParams& dropout,
                         const CachedSequence* seqs, std::int64_t count) const;

  /// The projection weights as packed, decoded (exact for every storage type), with `biases`'
  /// bias vectors copied in: what the reference and state_dict() see.
  AttentionWeights stored_weights(const AttentionWeights& biases) const;
  /// Bytes held for the weights: the packed matrices plus the f32 biases.
  std::int64_t weight_bytes() const noexcept;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

/// Self-attention without weights (book §3.3) on the fast path: x [B, T, d] -> y [B, T, d];
/// scores unscaled and unmasked, stable softmax. attn_weights (nullable) receives [B, T, T].
void simple_attention_fast(const float* x, std::int64_t batch, std::int64_t tokens,
                           std::int64_t dim, float* y, float* attn_weights);

}  // namespace simdattn::detail
