// src/modules/attention_module.cpp — the five chapter-3 modules: argument checks at
// construction and at forward(), then the chosen backend. Nothing here computes attention.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/validate.hpp"
#include "drivers/attention.hpp"
#include "modules/attention_core.hpp"
#include "reference/attention_reference.hpp"
#include "simdattn/attention.hpp"

namespace simdattn {
namespace {

using detail::AttentionCore;
using detail::AttentionSpec;
using detail::WeightNaming;

void check_dropout(const char* who, double p) {
  if (!(p >= 0.0 && p < 1.0)) detail::fail_arg(who, ": dropout (", p, ") must be in [0, 1)");
}

/// Every weight buffer must be addressable: d_in * inner elements (three of them side by side
/// in the fast path's packed QKV) and inner * inner for out_proj, counted in bytes.
void check_weight_sizes(const AttentionSpec& spec, const char* inner_name) {
  const char* who = spec.module_name.c_str();
  const std::string qkv = std::string(inner_name) + " * d_in";
  const std::int64_t per_matrix =
      detail::checked_mul(who, qkv.c_str(), spec.inner_dim(), spec.d_in);
  const std::int64_t qkv_elements = detail::checked_mul(who, ("3 * " + qkv).c_str(), 3, per_matrix);
  std::int64_t largest = qkv_elements;
  if (spec.out_proj) {
    const std::string proj = std::string(inner_name) + " * output width";
    largest = std::max(largest,
                       detail::checked_mul(who, proj.c_str(), spec.inner_dim(), spec.output_dim()));
  }
  constexpr auto max_elements =
      static_cast<std::int64_t>(std::numeric_limits<std::int64_t>::max() / sizeof(float));
  if (largest > max_elements)
    detail::fail_arg(who, ": weights of ", largest, " elements (d_in ", spec.d_in, ", ", inner_name,
                     " ", spec.inner_dim(), ") are too large");
}

std::unique_ptr<AttentionCore> make_core(AttentionSpec spec, const char* inner_name) {
  check_weight_sizes(spec, inner_name);
  return std::make_unique<AttentionCore>(std::move(spec));
}

AttentionSpec base_spec(const char* who, std::int64_t d_in, std::int64_t d_out) {
  detail::require_positive(who, "d_in", d_in);
  detail::require_positive(who, "d_out", d_out);
  AttentionSpec spec;
  spec.module_name = who;
  spec.d_in = d_in;
  spec.head_dim = d_out;
  return spec;
}

void make_causal(AttentionSpec& spec, std::int64_t context_length, double dropout) {
  const char* who = spec.module_name.c_str();
  detail::require_positive(who, "context_length", context_length);
  check_dropout(who, dropout);
  spec.causal = true;
  spec.context_length = context_length;
  spec.dropout = dropout;
}

std::unique_ptr<AttentionCore> v1_core(std::int64_t d_in, std::int64_t d_out) {
  AttentionSpec spec = base_spec("SelfAttentionV1", d_in, d_out);
  spec.naming = WeightNaming::v1;
  return make_core(std::move(spec), "d_out");
}

std::unique_ptr<AttentionCore> v2_core(std::int64_t d_in, std::int64_t d_out, bool qkv_bias) {
  AttentionSpec spec = base_spec("SelfAttentionV2", d_in, d_out);
  spec.qkv_bias = qkv_bias;
  return make_core(std::move(spec), "d_out");
}

std::unique_ptr<AttentionCore> causal_core(std::int64_t d_in, std::int64_t d_out,
                                           std::int64_t context_length, double dropout,
                                           bool qkv_bias) {
  AttentionSpec spec = base_spec("CausalAttention", d_in, d_out);
  make_causal(spec, context_length, dropout);
  spec.qkv_bias = qkv_bias;
  return make_core(std::move(spec), "d_out");
}

std::unique_ptr<AttentionCore> wrapper_core(std::int64_t d_in, std::int64_t d_out,
                                            std::int64_t context_length, double dropout,
                                            std::int64_t num_heads, bool qkv_bias) {
  AttentionSpec spec = base_spec("MultiHeadAttentionWrapper", d_in, d_out);
  make_causal(spec, context_length, dropout);
  detail::require_positive("MultiHeadAttentionWrapper", "num_heads", num_heads);
  // Each head is a CausalAttention of width d_out; their outputs sit side by side.
  detail::checked_mul("MultiHeadAttentionWrapper", "num_heads * d_out", num_heads, d_out);
  spec.num_heads = num_heads;
  spec.qkv_bias = qkv_bias;
  spec.naming = WeightNaming::wrapper;
  return make_core(std::move(spec), "num_heads * d_out");
}

std::unique_ptr<AttentionCore> mha_core(std::int64_t d_in, std::int64_t d_out,
                                        std::int64_t context_length, double dropout,
                                        std::int64_t num_heads, bool qkv_bias) {
  const char* who = "MultiHeadAttention";
  AttentionSpec spec = base_spec(who, d_in, d_out);
  make_causal(spec, context_length, dropout);
  detail::require_positive(who, "num_heads", num_heads);
  if (d_out % num_heads != 0)
    detail::fail_arg(who, ": d_out (", d_out, ") must be divisible by num_heads (", num_heads, ")");
  spec.num_heads = num_heads;
  spec.head_dim = d_out / num_heads;
  spec.qkv_bias = qkv_bias;
  spec.out_proj = true;
  return make_core(std::move(spec), "d_out");
}

std::unique_ptr<AttentionCore> llama_core(std::int64_t d_model, std::int64_t num_heads,
                                          std::int64_t num_kv_heads, std::int64_t head_dim,
                                          std::int64_t context_length, Rope rope,
                                          double rope_theta, bool qkv_bias, bool o_bias) {
  const char* who = "LlamaAttention";
  detail::require_positive(who, "d_model", d_model);
  detail::require_positive(who, "num_heads", num_heads);
  detail::require_positive(who, "num_kv_heads", num_kv_heads);
  detail::require_positive(who, "head_dim", head_dim);
  detail::require_positive(who, "context_length", context_length);
  if (num_heads % num_kv_heads != 0)
    detail::fail_arg(who, ": num_kv_heads (", num_kv_heads, ") must divide num_heads (", num_heads,
                     ")");
  if (rope != Rope::none && rope != Rope::halves && rope != Rope::interleaved)
    detail::fail_arg(who, ": rope (", static_cast<int>(rope), ") is not a Rope");
  if (rope != Rope::none) {
    if (head_dim % 2 != 0)
      detail::fail_arg(who, ": the rotary embedding turns pairs of dimensions; head_dim (",
                       head_dim, ") must be even");
    if (head_dim > 512)
      detail::fail(ErrorCode::unsupported, who, ": head_dim (", head_dim,
                   ") above 512 with a rotary embedding");
    if (!(rope_theta > 0.0) || !std::isfinite(rope_theta))
      detail::fail_arg(who, ": rope_theta (", rope_theta, ") must be positive and finite");
    // The module's table of cos/sin holds context_length * head_dim floats.
    if (detail::checked_mul(who, "context_length * head_dim", context_length, head_dim) >
        (std::int64_t{1} << 31))
      detail::fail_arg(who, ": context_length * head_dim (", context_length * head_dim,
                       ") is too large for the rotary table");
  }
  detail::checked_mul(who, "num_heads * head_dim", num_heads, head_dim);
  AttentionSpec spec;
  spec.module_name = who;
  spec.d_in = d_model;
  spec.num_heads = num_heads;
  spec.num_kv_heads = num_kv_heads;
  spec.head_dim = head_dim;
  spec.context_length = context_length;
  spec.causal = true;
  spec.qkv_bias = qkv_bias;
  spec.out_proj = true;
  spec.out_bias = o_bias;
  spec.out_features = d_model;
  spec.rope = rope;
  spec.rope_theta = rope_theta;
  spec.naming = WeightNaming::llama;
  return make_core(std::move(spec), "num_heads * head_dim");
}

/// x's batch and sequence length after checking it against the module.
struct InputShape {
  std::int64_t batch = 0;
  std::int64_t tokens = 0;
};

InputShape check_input(const AttentionSpec& spec, const Tensor& x) {
  const char* who = spec.module_name.c_str();
  if (x.rank() != 2 && x.rank() != 3)
    detail::fail_arg(who, ": x rank (", x.rank(), ") must be 2 ([T, d_in]) or 3 ([B, T, d_in]);",
                     " x has shape ", shape_to_string(x.shape()));
  const std::size_t r = x.rank();
  InputShape in;
  in.batch = r == 3 ? x.dim(0) : 1;
  in.tokens = x.dim(r - 2);
  const std::int64_t features = x.dim(r - 1);
  if (features != spec.d_in)
    detail::fail_arg(who, ": x feature size (", features, ") must equal d_in (", spec.d_in,
                     "); x has shape ", shape_to_string(x.shape()));
  detail::require_positive(who, "batch size B", in.batch);
  detail::require_positive(who, "sequence length T", in.tokens);
  if (spec.causal && in.tokens > spec.context_length)
    detail::fail_arg(who, ": sequence length T (", in.tokens, ") must be <= context_length (",
                     spec.context_length, ")");
  return in;
}

}  // namespace

AttentionModule::AttentionModule(std::unique_ptr<detail::AttentionCore> core)
    : core_(std::move(core)) {}
AttentionModule::~AttentionModule() = default;
AttentionModule::AttentionModule(AttentionModule&&) noexcept = default;
AttentionModule& AttentionModule::operator=(AttentionModule&&) noexcept = default;

Tensor AttentionModule::forward(const Tensor& x, const ForwardOptions& options) const {
  if (!core_) detail::fail_arg("AttentionModule::forward: the module was moved from");
  const AttentionSpec& spec = core_->spec();
  const char* who = spec.module_name.c_str();
  const InputShape in = check_input(spec, x);
  if (options.backend != Backend::fast && options.backend != Backend::reference)
    detail::fail_arg(who, ": options.backend (", static_cast<int>(options.backend),
                     ") is not a Backend");
  if (options.attn_weights != nullptr && spec.num_heads != 1)
    detail::fail_arg(who, ": options.attn_weights is only available with num_heads (",
                     spec.num_heads, ") == 1");

  const bool batched = x.rank() == 3;
  const std::int64_t rows = detail::checked_mul(who, "B * T", in.batch, in.tokens);
  detail::checked_mul(who, "B * T * output_dim", rows, spec.output_dim());
  Tensor y(batched ? std::vector<std::int64_t>{in.batch, in.tokens, spec.output_dim()}
                   : std::vector<std::int64_t>{in.tokens, spec.output_dim()});
  Tensor weights;
  if (options.attn_weights != nullptr) {
    detail::checked_mul(who, "B * T * T (attn_weights)", rows, in.tokens);
    weights = Tensor(batched ? std::vector<std::int64_t>{in.batch, in.tokens, in.tokens}
                             : std::vector<std::int64_t>{in.tokens, in.tokens});
  }
  float* weights_out = options.attn_weights != nullptr ? weights.data() : nullptr;
  // Dropout exists only in training mode; V1/V2 have p == 0 and never drop.
  const detail::DropoutParams dropout{options.train ? spec.dropout : 0.0, options.seed};

  if (options.backend == Backend::reference) {
    detail::AttentionWeights scratch;  // stays empty for f32 weights (no copy)
    detail::attention_forward_reference(spec, core_->weights(scratch), x.data(), in.batch,
                                        in.tokens, y.data(), dropout, weights_out);
  } else {
    core_->fast().forward(x.data(), in.batch, in.tokens, y.data(), dropout, weights_out);
  }

  // Assigned last so that attn_weights may alias x.
  if (options.attn_weights != nullptr) *options.attn_weights = std::move(weights);
  return y;
}

namespace {
const std::string& empty_name() {
  static const std::string name;
  return name;
}
}  // namespace

// The accessors are noexcept; on a moved-from module they report an empty, zero-sized module.
const std::string& AttentionModule::name() const noexcept {
  return core_ ? core_->spec().module_name : empty_name();
}
const detail::AttentionCore& AttentionModule::core() const {
  if (!core_) detail::fail_arg("AttentionModule: the module was moved from");
  return *core_;
}
std::int64_t AttentionModule::d_in() const noexcept { return core_ ? core_->spec().d_in : 0; }
std::int64_t AttentionModule::output_dim() const noexcept {
  return core_ ? core_->spec().output_dim() : 0;
}
std::int64_t AttentionModule::num_heads() const noexcept {
  return core_ ? core_->spec().num_heads : 0;
}
std::int64_t AttentionModule::head_dim() const noexcept {
  return core_ ? core_->spec().head_dim : 0;
}
std::int64_t AttentionModule::context_length() const noexcept {
  return core_ ? core_->spec().context_length : 0;
}
double AttentionModule::dropout() const noexcept { return core_ ? core_->spec().dropout : 0.0; }
bool AttentionModule::qkv_bias() const noexcept { return core_ && core_->spec().qkv_bias; }
bool AttentionModule::causal() const noexcept { return core_ && core_->spec().causal; }
std::int64_t AttentionModule::num_kv_heads() const noexcept {
  return core_ ? core_->spec().kv_heads() : 0;
}
Rope AttentionModule::rope() const noexcept { return core_ ? core_->spec().rope : Rope::none; }
double AttentionModule::rope_theta() const noexcept {
  return core_ ? core_->spec().rope_theta : 0.0;
}
void AttentionModule::set_weight_storage(DType type) {
  if (!core_) detail::fail_arg("AttentionModule: set_weight_storage: the module was moved from");
  core_->set_weight_type(type);
}
DType AttentionModule::weight_storage() const noexcept {
  return core_ ? core_->spec().weight_type : DType::f32;
}
std::int64_t AttentionModule::weight_bytes() const noexcept {
  return core_ ? core_->weight_bytes() : 0;
}

SelfAttentionV1::SelfAttentionV1(std::int64_t d_in, std::int64_t d_out)
    : AttentionModule(v1_core(d_in, d_out)) {}

SelfAttentionV2::SelfAttentionV2(std::int64_t d_in, std::int64_t d_out, bool qkv_bias)
    : AttentionModule(v2_core(d_in, d_out, qkv_bias)) {}

CausalAttention::CausalAttention(std::int64_t d_in, std::int64_t d_out, std::int64_t context_length,
                                 double dropout, bool qkv_bias)
    : AttentionModule(causal_core(d_in, d_out, context_length, dropout, qkv_bias)) {}

MultiHeadAttentionWrapper::MultiHeadAttentionWrapper(std::int64_t d_in, std::int64_t d_out,
                                                     std::int64_t context_length, double dropout,
                                                     std::int64_t num_heads, bool qkv_bias)
    : AttentionModule(wrapper_core(d_in, d_out, context_length, dropout, num_heads, qkv_bias)) {}

MultiHeadAttention::MultiHeadAttention(std::int64_t d_in, std::int64_t d_out,
                                       std::int64_t context_length, double dropout,
                                       std::int64_t num_heads, bool qkv_bias)
    : AttentionModule(mha_core(d_in, d_out, context_length, dropout, num_heads, qkv_bias)) {}

LlamaAttention::LlamaAttention(std::int64_t d_model, std::int64_t num_heads,
                               std::int64_t num_kv_heads, std::int64_t head_dim,
                               std::int64_t context_length, Rope rope, double rope_theta,
                               bool qkv_bias, bool o_bias)
    : AttentionModule(llama_core(d_model, num_heads, num_kv_heads, head_dim, context_length, rope,
                                 rope_theta, qkv_bias, o_bias)) {}

TensorMap hf_attention_state_dict(const TensorMap& checkpoint, std::int64_t layer) {
  const char* who = "hf_attention_state_dict";
  if (layer < 0) detail::fail_arg(who, ": layer (", layer, ") must be >= 0");
  const std::string prefix = "model.layers." + std::to_string(layer) + ".self_attn.";
  TensorMap out;
  for (auto it = checkpoint.lower_bound(prefix);
       it != checkpoint.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    out.emplace(it->first.substr(prefix.size()), it->second);
  if (out.empty())
    detail::fail_arg(who, ": the checkpoint has no tensors named \"", prefix, "*\"");
  return out;
}

}  // namespace simdattn
