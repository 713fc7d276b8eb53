// src/common/attention_desc.hpp — the plain descriptor of one attention layer and its weights,
// as the drivers and the reference take them. No module knowledge: how a state_dict names the
// weights (modules/attention_core.hpp's WeightNaming) stays with the modules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "simdattn/dtype.hpp"

namespace simdattn::detail {

/// H heads of width head_dim over inputs of width d_in, optional causal mask, optional
/// out_proj: every chapter-3 module is one of these.
struct AttentionDesc {
  std::string module_name;     ///< "CausalAttention", ... (prefix of error messages)
  std::int64_t d_in = 0;
  std::int64_t num_heads = 1;
  std::int64_t head_dim = 0;
  std::int64_t context_length = 0;  ///< 0: no limit (unmasked modules)
  double dropout = 0.0;
  bool qkv_bias = false;
  bool causal = false;
  bool out_proj = false;
  DType weight_type = DType::f32;  ///< how the projection weights are packed; biases stay f32

  std::int64_t inner_dim() const noexcept { return num_heads * head_dim; }  ///< heads side by side
  std::int64_t output_dim() const noexcept { return inner_dim(); }
};

/// Weights in one canonical layout: nn.Linear [inner, d_in], heads stacked along the rows (head
/// h owns rows h*head_dim .. (h+1)*head_dim-1).
struct AttentionWeights {
  std::vector<float> wq, wk, wv;  ///< [inner, d_in]
  std::vector<float> bq, bk, bv;  ///< [inner], empty without qkv_bias
  std::vector<float> wo, bo;      ///< [inner, inner], [inner]; empty without out_proj
};

}  // namespace simdattn::detail
