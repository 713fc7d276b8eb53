// src/reference/attention_reference.hpp — the oracle forward of the attention modules: plain
// loops in double, one (batch, head) at a time, exactly as the book computes it.
#pragma once

#include <cstdint>

#include "common/dropout.hpp"
#include "common/attention_desc.hpp"

namespace simdattn::detail {

/// x [B, T, d_in] -> y [B, T, output_dim]; attn_weights (single head, nullable) receives
/// [B, T, T] after dropout. Arguments are already validated.
void attention_forward_reference(const AttentionDesc& spec, const AttentionWeights& weights,
                                 const float* x, std::int64_t batch, std::int64_t tokens,
                                 float* y, const DropoutParams& dropout, float* attn_weights);

/// Book §3.3: x [B, T, d] -> y [B, T, d], scores X·Xᵀ unscaled and unmasked, the book's naive
/// exp/sum softmax (float exps, so it overflows above ~88 as the book does) or the
/// max-subtracted one in double; attn_weights (nullable) receives [B, T, T]. Arguments are
/// already validated.
void simple_attention_reference(const float* x, std::int64_t batch, std::int64_t tokens,
                                std::int64_t dim, float* y, float* attn_weights,
                                bool naive_softmax);

}  // namespace simdattn::detail
