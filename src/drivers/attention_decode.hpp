// src/drivers/attention_decode.hpp — attention for a few queries over many cached keys (a
// KV-cache decode step), one (batch, head) per task, on the head_dim-vectorised decode kernel.
#pragma once

#include "drivers/attention_flash.hpp"

namespace simdattn::detail {

/// Same contract as flash_attention(p) for q_len small (the driver walks K and V once per
/// query; flash attention is the better choice from a handful of queries on), except that keys
/// a query cannot see are skipped rather than weighted by zero (they only differ when such a
/// key's value is NaN or Inf). Bitwise identical for any thread count.
void decode_attention(const FlashProblem& p);

}  // namespace simdattn::detail
