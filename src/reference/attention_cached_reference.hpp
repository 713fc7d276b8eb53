// src/reference/attention_cached_reference.hpp — the oracle of incremental (KV-cache) forwards.
#pragma once

#include <cstdint>

#include "common/dropout.hpp"
#include "common/attention_desc.hpp"
#include "common/kv_ring.hpp"

namespace simdattn::detail {

/// x [B, T, d_in] holds the next T tokens of each sequence. Their K and V are written (rounded
/// to float, as the cache stores them) at logical slots [cache.length, cache.length + T); query
/// i attends to logical slots [0, cache.length + i], and to nothing else: a hidden token's NaN
/// or Inf never reaches it. The caller has made room for T tokens and commits after.
/// y [B, T, output_dim]. Arguments are already validated.
void attention_forward_reference_cached(const AttentionDesc& spec, const AttentionWeights& weights,
                                        const float* x, std::int64_t batch, std::int64_t tokens,
                                        float* y, const DropoutParams& dropout,
                                        const KVRing& cache);

}  // namespace simdattn::detail
