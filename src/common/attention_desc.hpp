// src/common/attention_desc.hpp — the plain descriptor of one attention layer and its weights,
// as the drivers and the reference take them. No module knowledge: how a state_dict names the
// weights (modules/attention_core.hpp's WeightNaming) stays with the modules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "simdattn/dtype.hpp"
#include "simdattn/rope.hpp"

namespace simdattn::detail {

/// H query heads of width head_dim over inputs of width d_in, G key/value heads (query head h
/// reads K/V head h / (H / G)), optional rotary embedding of Q and K, optional causal mask,
/// optional out_proj: every chapter-3 module and LlamaAttention is one of these.
struct AttentionDesc {
  std::string module_name;     ///< "CausalAttention", ... (prefix of error messages)
  std::int64_t d_in = 0;
  std::int64_t num_heads = 1;
  std::int64_t num_kv_heads = 0;    ///< G, dividing num_heads; 0: G = H (multi-head attention)
  std::int64_t head_dim = 0;
  std::int64_t context_length = 0;  ///< 0: no limit (unmasked modules)
  double dropout = 0.0;
  bool qkv_bias = false;
  bool causal = false;
  bool out_proj = false;
  bool out_bias = true;             ///< out_proj has a bias (LlamaAttention: o_bias)
  std::int64_t out_features = 0;    ///< out_proj's output width; 0: inner_dim()
  Rope rope = Rope::none;           ///< rotary embedding of Q and K by absolute position
  double rope_theta = 10000.0;
  DType weight_type = DType::f32;  ///< how the projection weights are packed; biases stay f32

  std::int64_t inner_dim() const noexcept { return num_heads * head_dim; }  ///< heads side by side
  std::int64_t kv_heads() const noexcept { return num_kv_heads > 0 ? num_kv_heads : num_heads; }
  std::int64_t kv_dim() const noexcept { return kv_heads() * head_dim; }  ///< K (or V) row width
  std::int64_t group() const noexcept { return num_heads / kv_heads(); }  ///< query heads per K/V head
  std::int64_t qkv_dim() const noexcept { return inner_dim() + 2 * kv_dim(); }
  std::int64_t output_dim() const noexcept {
    return out_proj && out_features > 0 ? out_features : inner_dim();
  }
};

/// Weights in one canonical layout: nn.Linear [out, d_in], heads stacked along the rows (head
/// h owns rows h*head_dim .. (h+1)*head_dim-1).
struct AttentionWeights {
  std::vector<float> wq;          ///< [inner, d_in]
  std::vector<float> wk, wv;      ///< [kv_dim, d_in]
  std::vector<float> bq;          ///< [inner], empty without qkv_bias
  std::vector<float> bk, bv;      ///< [kv_dim], empty without qkv_bias
  std::vector<float> wo, bo;      ///< [output_dim, inner], [output_dim]; empty without out_proj
                                  ///< (bo also without out_bias)
};

}  // namespace simdattn::detail
