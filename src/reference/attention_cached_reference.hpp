// src/reference/attention_cached_reference.hpp — the oracle of incremental (KV-cache) forwards.
#pragma once

#include <cstdint>

#include "common/dropout.hpp"
#include "modules/attention_core.hpp"
#include "modules/kv_cache_storage.hpp"

namespace simdattn::detail {

/// x [B, T, d_in] holds the next T tokens of each sequence. Their K and V are written (rounded
/// to float, as the cache stores them) at slots [cache.length, cache.length + T); query i attends
/// to slots [0, cache.length + i]. The caller has called cache.make_room(T) and commits after.
/// y [B, T, output_dim]. Arguments are already validated.
void attention_forward_reference_cached(const AttentionSpec& spec, const AttentionWeights& weights,
                                        const float* x, std::int64_t batch, std::int64_t tokens,
                                        float* y, const DropoutParams& dropout,
                                        KVCache::Storage& cache);

}  // namespace simdattn::detail
