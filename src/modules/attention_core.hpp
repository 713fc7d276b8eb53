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

#include "common/attention_desc.hpp"
#include "common/dropout.hpp"

namespace simdattn::detail {

enum class WeightNaming {
  v1,       ///< W_query [d_in, d_out] (x·W)
  linear,   ///< W_query.weight [d_out, d_in] (+ W_query.bias), out_proj.* when out_proj
  wrapper,  ///< heads.{i}.W_query.weight [d_out, d_in] (+ bias)
  llama,    ///< Hugging Face's: q_proj.weight [H*hd, d_in], k_proj/v_proj [G*hd, d_in], o_proj
};

/// The layer's descriptor (common/attention_desc.hpp) plus what only the modules need.
struct AttentionSpec : AttentionDesc {
  WeightNaming naming = WeightNaming::linear;
};

// AttentionWeights (common/attention_desc.hpp): one canonical layout whatever the naming; v1
// weights are transposed on load.

class FastAttention;  // src/drivers/attention.hpp

class AttentionCore {
 public:
  explicit AttentionCore(AttentionSpec spec);
  ~AttentionCore();

  const AttentionSpec& spec() const noexcept { return spec_; }
  /// The weights as the module holds them: for a storage type other than f32, the values the
  /// packed matrices decode to (nothing else keeps an f32 copy of them), so both backends and
  /// state_dict() see the same stored weights.
  AttentionWeights weights() const;
  /// The same without a copy for f32 (the held weights); stored weights are decoded into
  /// `scratch`, which the result then refers to. For per-call readers (the reference backend).
  const AttentionWeights& weights(AttentionWeights& scratch) const;
  /// Replaces the weights and rebuilds the fast path's packed form (in spec().weight_type).
  void set_weights(AttentionWeights weights);
  /// Repacks the current weights in `type`. Error(unsupported) for q8_0/q4_0 when d_in (or, with
  /// out_proj, the inner width) is not a multiple of 32.
  void set_weight_type(DType type);
  std::int64_t weight_bytes() const noexcept;
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

}  // namespace simdattn::detail
