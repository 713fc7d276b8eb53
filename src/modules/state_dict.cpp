// src/modules/state_dict.cpp — the modules' parameters under their PyTorch names and layouts:
// load_state_dict, state_dict, parameters and init_random, all driven by one table that maps
// each named tensor onto a block of the canonical AttentionWeights.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/dropout.hpp"
#include "common/validate.hpp"
#include "modules/attention_core.hpp"
#include "simdattn/attention.hpp"

namespace simdattn {
namespace {

using detail::AttentionSpec;
using detail::AttentionWeights;
using detail::WeightNaming;

enum class Slot { wq, wk, wv, bq, bk, bv, wo, bo };

/// One PyTorch tensor and where it lives in the canonical weights: rows first_row .. of the
/// slot's [inner, cols] matrix (or [inner] vector). V1's tensors are the transpose, [d_in, d_out].
struct ParamDesc {
  std::string name;
  std::vector<std::int64_t> shape;  ///< PyTorch shape
  Slot slot;
  std::int64_t first_row = 0;
  bool transposed = false;
  std::int64_t fan_in = 0;  ///< nn.Linear init bound 1/sqrt(fan_in)
};

std::vector<float>& slot_data(AttentionWeights& w, Slot slot) {
  switch (slot) {
    case Slot::wq:
      return w.wq;
    case Slot::wk:
      return w.wk;
    case Slot::wv:
      return w.wv;
    case Slot::bq:
      return w.bq;
    case Slot::bk:
      return w.bk;
    case Slot::bv:
      return w.bv;
    case Slot::wo:
      return w.wo;
    case Slot::bo:
      return w.bo;
  }
  return w.wq;  // unreachable
}

const std::vector<float>& slot_data(const AttentionWeights& w, Slot slot) {
  return slot_data(const_cast<AttentionWeights&>(w), slot);
}

/// The parameters in PyTorch's named_parameters() order.
std::vector<ParamDesc> describe(const AttentionSpec& spec) {
  const std::int64_t d_in = spec.d_in, inner = spec.inner_dim(), hd = spec.head_dim;
  struct Projection {
    const char* name;
    Slot weight, bias;
  };
  const Projection qkv[] = {{"W_query", Slot::wq, Slot::bq},
                            {"W_key", Slot::wk, Slot::bk},
                            {"W_value", Slot::wv, Slot::bv}};
  std::vector<ParamDesc> out;
  switch (spec.naming) {
    case WeightNaming::v1:  // nn.Parameter(torch.rand(d_in, d_out)): x @ W
      for (const Projection& p : qkv)
        out.push_back({p.name, {d_in, inner}, p.weight, 0, true, d_in});
      break;
    case WeightNaming::linear:
      for (const Projection& p : qkv) {
        const std::string n = p.name;
        out.push_back({n + ".weight", {inner, d_in}, p.weight, 0, false, d_in});
        if (spec.qkv_bias) out.push_back({n + ".bias", {inner}, p.bias, 0, false, d_in});
      }
      if (spec.out_proj) {
        out.push_back({"out_proj.weight", {spec.output_dim(), inner}, Slot::wo, 0, false, inner});
        if (spec.out_bias) out.push_back({"out_proj.bias", {spec.output_dim()}, Slot::bo, 0, false, inner});
      }
      break;
    case WeightNaming::llama: {  // Hugging Face LlamaAttention / Qwen2Attention
      const std::int64_t kv = spec.kv_dim();
      const struct {
        const char* name;
        Slot weight, bias;
        std::int64_t rows;
      } proj[] = {{"q_proj", Slot::wq, Slot::bq, inner},
                  {"k_proj", Slot::wk, Slot::bk, kv},
                  {"v_proj", Slot::wv, Slot::bv, kv}};
      for (const auto& p : proj) {
        const std::string n = p.name;
        out.push_back({n + ".weight", {p.rows, d_in}, p.weight, 0, false, d_in});
        if (spec.qkv_bias) out.push_back({n + ".bias", {p.rows}, p.bias, 0, false, d_in});
      }
      out.push_back({"o_proj.weight", {spec.output_dim(), inner}, Slot::wo, 0, false, inner});
      if (spec.out_bias) out.push_back({"o_proj.bias", {spec.output_dim()}, Slot::bo, 0, false, inner});
      break;
    }
    case WeightNaming::wrapper:  // nn.ModuleList of CausalAttention: heads.{h}.W_query.weight
      for (std::int64_t h = 0; h < spec.num_heads; ++h)
        for (const Projection& p : qkv) {
          const std::string n = "heads." + std::to_string(h) + "." + p.name;
          out.push_back({n + ".weight", {hd, d_in}, p.weight, h * hd, false, d_in});
          if (spec.qkv_bias) out.push_back({n + ".bias", {hd}, p.bias, h * hd, false, d_in});
        }
      break;
  }
  return out;
}

/// `mask` buffers (the causal mask PyTorch keeps in the state_dict) are rebuilt, not loaded.
bool is_ignored_key(const AttentionSpec& spec, const std::string& key) {
  if (key == "mask") return true;
  // Older Hugging Face checkpoints keep the rotary inverse frequencies as a buffer; they are
  // computed from rope_theta instead.
  if (spec.naming == WeightNaming::llama) return key == "rotary_emb.inv_freq";
  if (spec.naming != WeightNaming::wrapper) return false;
  const std::string prefix = "heads.", suffix = ".mask";
  if (key.size() <= prefix.size() + suffix.size() || key.compare(0, prefix.size(), prefix) != 0 ||
      key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string digits = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
  if (digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos ||
      (digits.size() > 1 && digits[0] == '0'))
    return false;
  return std::stoll(digits) < spec.num_heads;
}

std::int64_t block_size(const ParamDesc& d) {
  std::int64_t n = 1;
  for (std::int64_t e : d.shape) n *= e;
  return n;
}

/// Copies a PyTorch-layout tensor into its block of the canonical weights.
void copy_in(const ParamDesc& d, const float* src, AttentionWeights& w) {
  std::vector<float>& dst = slot_data(w, d.slot);
  if (d.transposed) {  // src [d_in, d_out] -> dst [d_out, d_in]
    const std::int64_t rows = d.shape[0], cols = d.shape[1];
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c)
        dst[static_cast<std::size_t>(c * rows + r)] = src[r * cols + c];
    return;
  }
  const std::int64_t row_width = d.shape.size() == 2 ? d.shape[1] : 1;
  const std::int64_t n = block_size(d);
  for (std::int64_t i = 0; i < n; ++i)
    dst[static_cast<std::size_t>(d.first_row * row_width + i)] = src[i];
}

Tensor copy_out(const ParamDesc& d, const AttentionWeights& w) {
  const std::vector<float>& src = slot_data(w, d.slot);
  Tensor t(d.shape);
  float* dst = t.data();
  if (d.transposed) {
    const std::int64_t rows = d.shape[0], cols = d.shape[1];
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c)
        dst[r * cols + c] = src[static_cast<std::size_t>(c * rows + r)];
    return t;
  }
  const std::int64_t row_width = d.shape.size() == 2 ? d.shape[1] : 1;
  const std::int64_t n = block_size(d);
  for (std::int64_t i = 0; i < n; ++i)
    dst[i] = src[static_cast<std::size_t>(d.first_row * row_width + i)];
  return t;
}

const detail::AttentionCore& require_core(const detail::AttentionCore* core, const char* what) {
  if (core == nullptr) detail::fail_arg("AttentionModule::", what, ": the module was moved from");
  return *core;
}

}  // namespace

void AttentionModule::load_state_dict(const TensorMap& state) {
  const detail::AttentionCore& core = require_core(core_.get(), "load_state_dict");
  const AttentionSpec& spec = core.spec();
  const char* who = spec.module_name.c_str();
  const std::vector<ParamDesc> params = describe(spec);

  // Check everything before touching anything: a failed load leaves the module unchanged.
  for (const ParamDesc& d : params) {
    const auto it = state.find(d.name);
    if (it == state.end())
      detail::fail_arg(who, ": load_state_dict: missing key \"", d.name, "\" (expected shape ",
                       shape_to_string(d.shape), ")");
    if (it->second.shape() != d.shape)
      detail::fail_arg(who, ": load_state_dict: key \"", d.name, "\" has shape ",
                       shape_to_string(it->second.shape()), ", expected ",
                       shape_to_string(d.shape));
  }
  std::set<std::string> expected;
  for (const ParamDesc& d : params) expected.insert(d.name);
  for (const auto& entry : state)
    if (expected.count(entry.first) == 0 && !is_ignored_key(spec, entry.first))
      detail::fail_arg(who, ": load_state_dict: unexpected key \"", entry.first, "\"");

  AttentionWeights weights = core.weights();  // same sizes; every element is overwritten below
  for (const ParamDesc& d : params) copy_in(d, state.at(d.name).data(), weights);
  core_->set_weights(std::move(weights));
}

TensorMap AttentionModule::state_dict() const {
  const detail::AttentionCore& core = require_core(core_.get(), "state_dict");
  TensorMap out;
  const AttentionWeights weights = core.weights();  // decoded once for stored weights
  for (const ParamDesc& d : describe(core.spec())) out.emplace(d.name, copy_out(d, weights));
  return out;
}

std::vector<ParamInfo> AttentionModule::parameters() const {
  const detail::AttentionCore& core = require_core(core_.get(), "parameters");
  std::vector<ParamInfo> out;
  for (ParamDesc& d : describe(core.spec())) out.push_back({std::move(d.name), std::move(d.shape)});
  return out;
}

void AttentionModule::init_random(std::uint64_t seed) {
  const detail::AttentionCore& core = require_core(core_.get(), "init_random");
  const std::vector<ParamDesc> params = describe(core.spec());
  TensorMap state;
  for (std::size_t p = 0; p < params.size(); ++p) {
    const ParamDesc& d = params[p];
    // nn.Linear's reset_parameters: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
    // The draws are splitmix64 from a state that depends on (seed, parameter index), so every
    // platform and compiler produces the same weights (std::uniform_real_distribution does not).
    const double bound = 1.0 / std::sqrt(static_cast<double>(d.fan_in));
    std::uint64_t state_word =
        detail::mix64(detail::mix64(seed ^ 0x6a09e667f3bcc908ULL) ^ (p * 0xd1b54a32d192ed03ULL));
    Tensor t(d.shape);
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      state_word += 0x9e3779b97f4a7c15ULL;
      const double u = static_cast<double>(detail::mix64(state_word) >> 11) * 0x1p-53;  // [0, 1)
      t[i] = static_cast<float>(bound * (2.0 * u - 1.0));
    }
    state.emplace(d.name, std::move(t));
  }
  load_state_dict(state);
}

}  // namespace simdattn
