// src/io/gpt2.cpp — maps one attention layer of a Hugging Face GPT-2 checkpoint onto the
// state_dict names and layouts of MultiHeadAttention(d, d, ..., qkv_bias=true).
#include "simdattn/gpt2.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/validate.hpp"

namespace simdattn {
namespace {

constexpr std::string_view kPrefix = "transformer.";
constexpr std::string_view kBlock = "h.";
constexpr std::string_view kQkvSuffix = ".attn.c_attn.weight";

/// The layer index of "[transformer.]h.{i}.attn.c_attn.weight", or nothing. Only canonical
/// decimals (no sign, no leading zero) count, so that the index formats back to the same key.
std::optional<std::int64_t> qkv_weight_layer(std::string_view key) {
  if (key.substr(0, kPrefix.size()) == kPrefix) key.remove_prefix(kPrefix.size());
  if (key.substr(0, kBlock.size()) != kBlock) return std::nullopt;
  key.remove_prefix(kBlock.size());
  if (key.size() <= kQkvSuffix.size() ||
      key.substr(key.size() - kQkvSuffix.size()) != kQkvSuffix)
    return std::nullopt;
  const std::string_view digits = key.substr(0, key.size() - kQkvSuffix.size());
  if (digits.empty() || digits.size() > 18 || (digits.size() > 1 && digits[0] == '0'))
    return std::nullopt;
  std::int64_t layer = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    layer = layer * 10 + (c - '0');
  }
  return layer;
}

std::set<std::int64_t> layers_of(const TensorMap& checkpoint) {
  std::set<std::int64_t> layers;
  for (const auto& kv : checkpoint)
    if (auto layer = qkv_weight_layer(kv.first)) layers.insert(*layer);
  return layers;
}

/// Finds `h.{layer}.attn.{leaf}` with or without the `transformer.` prefix.
TensorMap::const_iterator find_key(const TensorMap& checkpoint, const char* who,
                                   std::int64_t layer, const std::string& leaf) {
  const std::string key = "h." + std::to_string(layer) + ".attn." + leaf;
  const std::string prefixed = std::string(kPrefix) + key;
  const auto plain_it = checkpoint.find(key);
  const auto prefixed_it = checkpoint.find(prefixed);
  if (plain_it == checkpoint.end() && prefixed_it == checkpoint.end())
    detail::fail_arg(who, ": layer ", layer, ": tensor '", key, "' (or '", prefixed,
                     "') is missing");
  if (plain_it != checkpoint.end() && prefixed_it != checkpoint.end())
    detail::fail_arg(who, ": layer ", layer, ": both '", key, "' and '", prefixed,
                     "' are present; which one to use is ambiguous");
  return plain_it != checkpoint.end() ? plain_it : prefixed_it;
}

/// The tensor `h.{layer}.attn.{leaf}`, checked against `shape` (and its values against the shape,
/// since a TensorMap's tensors can be edited freely).
const Tensor& find_tensor(const TensorMap& checkpoint, const char* who, std::int64_t layer,
                          const std::string& leaf, const std::vector<std::int64_t>& shape) {
  const auto it = find_key(checkpoint, who, layer, leaf);
  const Tensor& t = it->second;
  if (t.shape() != shape)
    detail::fail_arg(who, ": layer ", layer, ": tensor '", it->first, "' has shape ",
                     shape_to_string(t.shape()), ", expected ", shape_to_string(shape));
  const std::int64_t numel = checked_numel(shape, who);
  if (static_cast<std::uint64_t>(t.values().size()) != static_cast<std::uint64_t>(numel))
    detail::fail_arg(who, ": layer ", layer, ": tensor '", it->first, "' holds ",
                     t.values().size(), " values, but its shape ", shape_to_string(shape),
                     " needs ", numel);
  return t;
}

/// Width d from c_attn.weight, which must be [d, 3d] with d >= 1.
std::int64_t model_dim(const TensorMap& checkpoint, const char* who, std::int64_t layer) {
  const std::int64_t n = gpt2_num_layers(checkpoint);
  if (layer < 0 || layer >= n)
    detail::fail_arg(who, ": layer (", layer, ") must be in [0, ", n, ") (the checkpoint has ",
                     n, " layers with an attn.c_attn.weight)");
  const auto it = find_key(checkpoint, who, layer, "c_attn.weight");
  const auto& shape = it->second.shape();
  if (shape.size() != 2 || shape[0] < 1 || shape[1] % 3 != 0 || shape[1] / 3 != shape[0])
    detail::fail_arg(who, ": layer ", layer, ": tensor '", it->first, "' has shape ",
                     shape_to_string(shape), ", expected [d, 3d] with d >= 1");
  return shape[0];
}

}  // namespace

std::int64_t gpt2_num_layers(const TensorMap& checkpoint) {
  return static_cast<std::int64_t>(layers_of(checkpoint).size());
}

std::int64_t gpt2_model_dim(const TensorMap& checkpoint, std::int64_t layer) {
  return model_dim(checkpoint, "gpt2_model_dim", layer);
}

TensorMap gpt2_attention_state_dict(const TensorMap& checkpoint, std::int64_t layer) {
  const char* who = "gpt2_attention_state_dict";
  const std::int64_t d = model_dim(checkpoint, who, layer);
  const Tensor& qkv_w = find_tensor(checkpoint, who, layer, "c_attn.weight", {d, 3 * d});
  const Tensor& qkv_b = find_tensor(checkpoint, who, layer, "c_attn.bias", {3 * d});
  const Tensor& proj_w = find_tensor(checkpoint, who, layer, "c_proj.weight", {d, d});
  const Tensor& proj_b = find_tensor(checkpoint, who, layer, "c_proj.bias", {d});

  // Conv1D stores [in, out] (y = x·W + b); nn.Linear stores [out, in] (y = x·Wᵀ + b). Q, K and V
  // sit side by side along c_attn's out axis, at column offsets 0, d and 2d.
  const auto transpose_columns = [d](const Tensor& w, std::int64_t row_stride,
                                     std::int64_t col0) {
    Tensor t({d, d});
    for (std::int64_t o = 0; o < d; ++o)
      for (std::int64_t i = 0; i < d; ++i) t[o * d + i] = w[i * row_stride + col0 + o];
    return t;
  };
  const auto slice = [d](const Tensor& b, std::int64_t begin) {
    Tensor t({d});
    for (std::int64_t i = 0; i < d; ++i) t[i] = b[begin + i];
    return t;
  };

  TensorMap out;
  const char* names[3] = {"W_query", "W_key", "W_value"};
  for (int p = 0; p < 3; ++p) {
    out.emplace(std::string(names[p]) + ".weight", transpose_columns(qkv_w, 3 * d, p * d));
    out.emplace(std::string(names[p]) + ".bias", slice(qkv_b, p * d));
  }
  out.emplace("out_proj.weight", transpose_columns(proj_w, d, 0));
  out.emplace("out_proj.bias", proj_b);
  return out;
}

}  // namespace simdattn
