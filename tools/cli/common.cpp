// tools/cli/common.cpp — module names, dimension flags and their inference from weight shapes,
// module construction and input loading, shared by the subcommands.
#include "common.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <charconv>
#include <sstream>

#include "simdattn/error.hpp"

namespace simdattn::cli {

namespace {

struct KindInfo {
  ModuleKind kind;
  const char* name;
};

constexpr std::array<KindInfo, 7> kKinds{{
    {ModuleKind::simple, "simple"},
    {ModuleKind::self_attention_v1, "self_attention_v1"},
    {ModuleKind::self_attention_v2, "self_attention_v2"},
    {ModuleKind::causal_attention, "causal_attention"},
    {ModuleKind::mha_wrapper, "mha_wrapper"},
    {ModuleKind::mha, "mha"},
    {ModuleKind::llama, "llama"},
}};

const Tensor* find_matrix(const TensorMap* weights, const std::string& key) {
  if (weights == nullptr) return nullptr;
  auto it = weights->find(key);
  if (it == weights->end() || it->second.rank() != 2) return nullptr;
  return &it->second;
}

bool has_key(const TensorMap* weights, const std::string& key) {
  return weights != nullptr && weights->count(key) != 0;
}

/// Number of heads of a wrapper's state dict: one past the largest i of the `heads.{i}.` keys.
/// Gaps are left for load_state_dict() to report as missing tensors.
std::int64_t count_wrapper_heads(const TensorMap& weights) {
  std::int64_t heads = 0;
  const std::string prefix = "heads.";
  for (const auto& [key, tensor] : weights) {
    if (key.rfind(prefix, 0) != 0) continue;
    const char* first = key.data() + prefix.size();
    const char* last = key.data() + key.size();
    std::int64_t i = -1;
    auto [ptr, ec] = std::from_chars(first, last, i);
    if (ec == std::errc() && ptr != first && ptr != last && *ptr == '.' && i >= 0 &&
        i < (std::int64_t{1} << 20))
      heads = std::max(heads, i + 1);
  }
  return heads;
}

void reject(const char* flag, bool given, ModuleKind kind) {
  if (given)
    throw UsageError{std::string("--") + flag + " does not apply to module '" +
                     module_kind_name(kind) + "'"};
}

}  // namespace

const char* module_kind_name(ModuleKind kind) noexcept {
  for (const auto& k : kKinds)
    if (k.kind == kind) return k.name;
  return "?";
}

const char* module_kind_names() noexcept {
  return "simple, self_attention_v1, self_attention_v2, causal_attention, mha_wrapper, mha, llama";
}

ModuleKind parse_module_kind(const std::string& name) {
  for (const auto& k : kKinds)
    if (name == k.name) return k.kind;
  throw UsageError{"unknown module '" + name + "' (expected one of: " + module_kind_names() + ")"};
}

bool has_weights(ModuleKind kind) noexcept { return kind != ModuleKind::simple; }

bool is_causal(ModuleKind kind) noexcept {
  return kind == ModuleKind::causal_attention || kind == ModuleKind::mha_wrapper ||
         kind == ModuleKind::mha || kind == ModuleKind::llama;
}

bool is_single_head(ModuleKind kind) noexcept {
  return kind == ModuleKind::simple || kind == ModuleKind::self_attention_v1 ||
         kind == ModuleKind::self_attention_v2 || kind == ModuleKind::causal_attention;
}

ModuleFlags take_module_flags(Args& args) {
  ModuleFlags f;
  f.d_in = args.take_optional_int("d-in", 1);
  f.d_out = args.take_optional_int("d-out", 1);
  f.context_length = args.take_optional_int("context-length", 1);
  f.num_heads = args.take_optional_int("num-heads", 1);
  f.dropout = args.take_optional_double("dropout");
  f.qkv_bias = args.take_flag("qkv-bias");
  f.num_kv_heads = args.take_optional_int("num-kv-heads", 1);
  f.head_dim = args.take_optional_int("head-dim", 1);
  f.rope = args.take_optional_string("rope");
  f.rope_theta = args.take_optional_double("rope-theta");
  if (f.rope && *f.rope != "halves" && *f.rope != "interleaved" && *f.rope != "none")
    throw UsageError{"--rope: expected halves, interleaved or none, got '" + *f.rope + "'"};
  if (f.rope_theta && !(*f.rope_theta > 0.0 && std::isfinite(*f.rope_theta)))
    throw UsageError{"--rope-theta must be positive and finite"};
  if (f.dropout && !(*f.dropout >= 0.0 && *f.dropout < 1.0))
    throw UsageError{"--dropout (" + (std::ostringstream() << *f.dropout).str() +
                     ") must be in [0, 1)"};
  return f;
}

namespace {

ModuleConfig resolve_llama_config(const ModuleFlags& flags, const TensorMap* weights,
                                  std::int64_t tokens) {
  ModuleConfig c;
  c.kind = ModuleKind::llama;
  if (!flags.num_heads)
    throw UsageError{"module 'llama' needs --num-heads (the weights do not record it)"};
  c.num_heads = *flags.num_heads;
  const Tensor* wq = find_matrix(weights, "q_proj.weight");
  const Tensor* wk = find_matrix(weights, "k_proj.weight");
  if (wq == nullptr)
    throw UsageError{"module 'llama': the weights have no 2-D 'q_proj.weight' (a Hugging Face "
                     "checkpoint needs --hf-layer N)"};
  c.d_in = flags.d_in.value_or(wq->dim(1));
  if (flags.head_dim) {
    c.head_dim = *flags.head_dim;
  } else {
    if (wq->dim(0) % c.num_heads != 0)
      throw UsageError{"cannot infer --head-dim: q_proj.weight has " + std::to_string(wq->dim(0)) +
                       " rows, not a multiple of --num-heads (" + std::to_string(c.num_heads) + ")"};
    c.head_dim = wq->dim(0) / c.num_heads;
  }
  if (flags.num_kv_heads) {
    c.num_kv_heads = *flags.num_kv_heads;
  } else {
    if (wk == nullptr || wk->dim(0) % c.head_dim != 0)
      throw UsageError{"cannot infer --num-kv-heads from k_proj.weight; pass --num-kv-heads"};
    c.num_kv_heads = wk->dim(0) / c.head_dim;
  }
  c.rope = flags.rope ? parse_rope(*flags.rope) : Rope::halves;
  c.rope_theta = flags.rope_theta.value_or(10000.0);
  c.qkv_bias = has_key(weights, "q_proj.bias");
  c.o_bias = has_key(weights, "o_proj.bias");
  c.context_length = flags.context_length ? *flags.context_length : tokens;
  return c;
}

}  // namespace

ModuleConfig resolve_module_config(ModuleKind kind, const ModuleFlags& flags,
                                   const TensorMap* weights, std::int64_t input_features,
                                   std::int64_t tokens) {
  ModuleConfig c;
  c.kind = kind;
  const char* name = module_kind_name(kind);

  // Flags that have no meaning for the module are errors rather than silently ignored.
  if (!has_weights(kind)) {
    if (weights != nullptr)
      throw UsageError{std::string("module '") + name + "' has no weights; drop --weights"};
    reject("d-out", flags.d_out.has_value(), kind);
    reject("qkv-bias", flags.qkv_bias, kind);
  }
  if (kind == ModuleKind::self_attention_v1) reject("qkv-bias", flags.qkv_bias, kind);
  if (!is_causal(kind)) {
    reject("context-length", flags.context_length.has_value(), kind);
    reject("dropout", flags.dropout.has_value(), kind);
  }
  if (kind != ModuleKind::mha_wrapper && kind != ModuleKind::mha && kind != ModuleKind::llama)
    reject("num-heads", flags.num_heads.has_value(), kind);
  if (kind != ModuleKind::llama) {
    reject("num-kv-heads", flags.num_kv_heads.has_value(), kind);
    reject("head-dim", flags.head_dim.has_value(), kind);
    reject("rope", flags.rope.has_value(), kind);
    reject("rope-theta", flags.rope_theta.has_value(), kind);
  } else {
    reject("d-out", flags.d_out.has_value(), kind);        // o_proj maps back to d_model
    reject("dropout", flags.dropout.has_value(), kind);    // inference attention: no dropout
    reject("qkv-bias", flags.qkv_bias, kind);              // read from the weights
    return resolve_llama_config(flags, weights, tokens);
  }

  if (kind == ModuleKind::simple) {
    if (flags.d_in && *flags.d_in != input_features)
      throw UsageError{"--d-in (" + std::to_string(*flags.d_in) +
                       ") does not match the input's feature size (" +
                       std::to_string(input_features) + ")"};
    c.d_in = c.d_out = input_features;
    return c;
  }

  // The query projection tells d_in and d_out; its bias tells qkv_bias.
  std::string query_key;
  bool transposed = true;  // nn.Linear layout [d_out, d_in]
  switch (kind) {
    case ModuleKind::self_attention_v1: query_key = "W_query"; transposed = false; break;
    case ModuleKind::mha_wrapper: query_key = "heads.0.W_query.weight"; break;
    default: query_key = "W_query.weight"; break;
  }
  const Tensor* wq = find_matrix(weights, query_key);
  auto infer = [&](const std::optional<std::int64_t>& given, const char* flag,
                   std::size_t axis) -> std::int64_t {
    if (given) return *given;
    if (wq == nullptr)
      throw UsageError{std::string("cannot infer --") + flag + ": " +
                       (weights ? "the weights have no 2-D '" + query_key + "'"
                                : std::string("no --weights given")) +
                       "; pass --" + flag};
    return wq->dim(axis);
  };
  c.d_in = infer(flags.d_in, "d-in", transposed ? 1 : 0);
  c.d_out = infer(flags.d_out, "d-out", transposed ? 0 : 1);

  const std::string bias_key =
      kind == ModuleKind::mha_wrapper ? "heads.0.W_query.bias" : "W_query.bias";
  c.qkv_bias = flags.qkv_bias || (kind != ModuleKind::self_attention_v1 && has_key(weights, bias_key));

  if (kind == ModuleKind::mha_wrapper) {
    if (flags.num_heads) {
      c.num_heads = *flags.num_heads;
    } else {
      c.num_heads = weights ? count_wrapper_heads(*weights) : 0;
      if (c.num_heads == 0)
        throw UsageError{"cannot infer --num-heads: the weights have no 'heads.{i}.' tensors; "
                         "pass --num-heads"};
    }
  } else if (kind == ModuleKind::mha) {
    if (!flags.num_heads)
      throw UsageError{"module 'mha' needs --num-heads (its state dict does not record it)"};
    c.num_heads = *flags.num_heads;
  }

  if (is_causal(kind)) {
    c.context_length = flags.context_length ? *flags.context_length : tokens;
    c.dropout = flags.dropout.value_or(0.0);
  }
  return c;
}

std::unique_ptr<AttentionModule> make_module(const ModuleConfig& c) {
  switch (c.kind) {
    case ModuleKind::simple:
      throw UsageError{"module 'simple' has no weights and no module object"};
    case ModuleKind::self_attention_v1:
      return std::make_unique<SelfAttentionV1>(c.d_in, c.d_out);
    case ModuleKind::self_attention_v2:
      return std::make_unique<SelfAttentionV2>(c.d_in, c.d_out, c.qkv_bias);
    case ModuleKind::causal_attention:
      return std::make_unique<CausalAttention>(c.d_in, c.d_out, c.context_length, c.dropout,
                                               c.qkv_bias);
    case ModuleKind::mha_wrapper:
      return std::make_unique<MultiHeadAttentionWrapper>(c.d_in, c.d_out, c.context_length,
                                                         c.dropout, c.num_heads, c.qkv_bias);
    case ModuleKind::mha:
      return std::make_unique<MultiHeadAttention>(c.d_in, c.d_out, c.context_length, c.dropout,
                                                  c.num_heads, c.qkv_bias);
    case ModuleKind::llama:
      return std::make_unique<LlamaAttention>(c.d_in, c.num_heads, c.num_kv_heads, c.head_dim,
                                              c.context_length, c.rope, c.rope_theta, c.qkv_bias,
                                              c.o_bias);
  }
  throw UsageError{"unknown module kind"};
}

Tensor forward_module(const ModuleConfig& config, const AttentionModule* module, const Tensor& x,
                      const ForwardOptions& options) {
  if (config.kind == ModuleKind::simple) return simple_attention(x, options);
  if (module == nullptr) throw UsageError{"internal: no module to run"};
  return module->forward(x, options);
}

Tensor load_input_tensor(const std::string& path, const std::string& name) {
  TensorMap tensors = load_safetensors(path);
  auto it = tensors.find(name);
  if (it == tensors.end())
    throw Error(ErrorCode::invalid_argument, path + ": no tensor '" + name + "'");
  Tensor x = std::move(it->second);
  if (x.rank() != 2 && x.rank() != 3)
    throw Error(ErrorCode::invalid_argument, path + ": '" + name + "' has shape " +
                                                 shape_to_string(x.shape()) +
                                                 ", expected [T, d] or [B, T, d]");
  if (x.numel() == 0)
    throw Error(ErrorCode::invalid_argument,
                path + ": '" + name + "' is empty (shape " + shape_to_string(x.shape()) + ")");
  return x;
}

Backend parse_backend_flag(const std::string& value) {
  if (value == "fast") return Backend::fast;
  if (value == "reference") return Backend::reference;
  throw UsageError{"--backend expects 'fast' or 'reference', got '" + value + "'"};
}

std::string take_weight_dtype(Args& args, const std::string& fallback) {
  const std::string v = args.take_string("weight-dtype", fallback);
  if (v == "auto") return v;
  try {
    (void)parse_dtype(v);
  } catch (const Error&) {
    throw UsageError{"--weight-dtype: expected f32, f16, bf16, q8_0, q4_0 or auto, got '" + v + "'"};
  }
  return v;
}

DType resolve_weight_dtype(const std::string& choice, const std::string* weights_path) {
  if (choice != "auto") return parse_dtype(choice);
  return weights_path != nullptr ? safetensors_storage(*weights_path) : DType::f32;
}

DType parse_kv_dtype(const std::string& value) {
  DType t = DType::q4_0;  // a weight type only: refused below like an unknown name
  try {
    t = parse_dtype(value);
  } catch (const Error&) {
  }
  if (t == DType::q4_0)
    throw UsageError{"--kv-dtype: expected f32, f16, bf16 or q8_0, got '" + value + "'"};
  return t;
}

}  // namespace simdattn::cli
