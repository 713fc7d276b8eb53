// src/reference/attention_reference.hpp — the oracle forward of the attention modules: plain
// loops in double, one (batch, head) at a time, exactly as the book computes it.
#pragma once

#include <cstdint>

#include "common/dropout.hpp"
#include "modules/attention_core.hpp"

namespace simdattn::detail {

/// x [B, T, d_in] -> y [B, T, output_dim]; attn_weights (single head, nullable) receives
/// [B, T, T] after dropout. Arguments are already validated.
void attention_forward_reference(const AttentionSpec& spec, const AttentionWeights& weights,
                                 const float* x, std::int64_t batch, std::int64_t tokens,
                                 float* y, const DropoutParams& dropout, float* attn_weights);

}  // namespace simdattn::detail
