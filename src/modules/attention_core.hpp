// src/modules/attention_core.hpp — the one engine behind all five trainable chapter-3 modules.
//
// Every module is "H heads of width head_dim, projections from d_in, optional causal mask,
// optional out_proj": SelfAttentionV1/V2 are one unmasked head, CausalAttention one masked
// head, the wrapper H masked heads of width d_out with no out_proj, MultiHeadAttention H heads
// of width d_out/H with out_proj. Only the naming and layout of the weights in a state_dict
// differ, which `naming` records.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/dropout.hpp"

namespace simdattn::detail {

enum class WeightNaming {
  v1,       ///< W_query [d_in, d_out] (x·W)
  linear,   ///< W_query.weight [d_out, d_in] (+ W_query.bias), out_proj.* when out_proj
  wrapper,  ///< heads.{i}.W_query.weight [d_out, d_in] (+ bias)
};

struct AttentionSpec {
  std::string module_name;     ///< "CausalAttention", ... (prefix of error messages)
  std::int64_t d_in = 0;
  std::int64_t num_heads = 1;
  std::int64_t head_dim = 0;
  std::int64_t context_length = 0;  ///< 0: no limit (unmasked modules)
  double dropout = 0.0;
  bool qkv_bias = false;
  bool causal = false;
  bool out_proj = false;
  WeightNaming naming = WeightNaming::linear;

  std::int64_t inner_dim() const noexcept { return num_heads * head_dim; }  ///< heads side by side
  std::int64_t output_dim() const noexcept { return inner_dim(); }
};

/// Weights in one canonical layout whatever the naming: nn.Linear [inner, d_in], heads stacked
/// along the rows (head h owns rows h*head_dim .. (h+1)*head_dim-1). v1 weights are transposed
/// on load.
struct AttentionWeights {
  std::vector<float> wq, wk, wv;  ///< [inner, d_in]
  std::vector<float> bq, bk, bv;  ///< [inner], empty without qkv_bias
  std::vector<float> wo, bo;      ///< [inner, inner], [inner]; empty without out_proj
};

class FastAttention;  // src/drivers/attention.hpp

class AttentionCore {
 public:
  explicit AttentionCore(AttentionSpec spec);
  ~AttentionCore();

  const AttentionSpec& spec() const noexcept { return spec_; }
  const AttentionWeights& weights() const noexcept { return weights_; }
  /// Replaces the weights and rebuilds the fast path's packed form.
  void set_weights(AttentionWeights weights);
  const FastAttention& fast() const noexcept { return *fast_; }
  /// Unique for the life of the process (never reused, unlike an address): what a KVCache
  /// records to know which module it belongs to.
  std::uint64_t id() const noexcept { return id_; }

 private:
  std::uint64_t id_;
  AttentionSpec spec_;
  AttentionWeights weights_;
  std::unique_ptr<FastAttention> fast_;
};

/// Book §3.3 on the reference path: x [B, T, d] -> y [B, T, d], scores X·Xᵀ unscaled and
/// unmasked, the book's naive exp/sum softmax (float exps, so it overflows above ~88 as the book
/// does) or the max-subtracted one in double; attn_weights (nullable) receives [B, T, T].
/// Defined in src/reference/attention_reference.cpp beside attention_forward_reference; declared
/// in this header, which both the modules and the reference include. Arguments are already
/// validated.
void simple_attention_reference(const float* x, std::int64_t batch, std::int64_t tokens,
                                std::int64_t dim, float* y, float* attn_weights,
                                bool naive_softmax);

}  // namespace simdattn::detail
