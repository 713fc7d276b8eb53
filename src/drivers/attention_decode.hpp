// src/drivers/attention_decode.hpp — attention for a few queries over many cached keys (a
// KV-cache decode step), one (batch, K/V head) per task, on the head_dim-vectorised decode
// kernel.
#pragma once

#include "drivers/attention_flash.hpp"

namespace simdattn::detail {

/// Same contract as flash_attention(p) for q_len small (the driver walks K and V once per
/// query; flash attention is the better choice from a handful of queries on), except that keys
/// a query cannot see are skipped rather than weighted by zero (they only differ when such a
/// key's value is NaN or Inf). Bitwise identical for any thread count.
///
/// `count` problems (sequences of a batched decode, each over its own cache length) run in one
/// parallel loop over (problem, batch entry, K/V head): a task computes the kv_group query heads
/// that share a K/V head back to back, so the group's K/V rows come from memory once and are
/// read from cache by the others. A problem's result does not depend on the others.
void decode_attention(const FlashProblem* problems, std::int64_t count);
inline void decode_attention(const FlashProblem& p) { decode_attention(&p, 1); }

}  // namespace simdattn::detail
