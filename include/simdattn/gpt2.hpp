// simdattn/gpt2.hpp — one attention layer of a Hugging Face GPT-2 checkpoint, as the state_dict
// of a MultiHeadAttention.
#pragma once

#include <cstdint>
#include <string>

#include "simdattn/export.h"
#include "simdattn/safetensors.hpp"

namespace simdattn {

/// Number of transformer blocks (`h.{i}.attn.c_attn.weight` keys, with or without a
/// `transformer.` prefix) in a checkpoint's tensors.
SIMDATTN_API std::int64_t gpt2_num_layers(const TensorMap& checkpoint);

/// Model width d of layer `layer` (from `h.{layer}.attn.c_attn.weight`, [d, 3d]).
SIMDATTN_API std::int64_t gpt2_model_dim(const TensorMap& checkpoint, std::int64_t layer);

/// Converts layer `layer`'s attention into MultiHeadAttention(d, d, ..., qkv_bias=true) names:
/// c_attn.weight [d, 3d] (Conv1D, [in, out]) is split into Q, K, V and transposed into
/// W_query.weight / W_key.weight / W_value.weight [d, d]; c_attn.bias [3d] into W_*.bias;
/// c_proj.weight [d, d] is transposed into out_proj.weight, c_proj.bias is out_proj.bias.
/// Keys may carry a `transformer.` prefix; other tensors (attn.bias, attn.masked_bias, MLPs,
/// embeddings) are ignored. Throws Error(invalid_argument) naming a missing or misshapen tensor
/// or an out-of-range layer.
SIMDATTN_API TensorMap gpt2_attention_state_dict(const TensorMap& checkpoint, std::int64_t layer);

}  // namespace simdattn
