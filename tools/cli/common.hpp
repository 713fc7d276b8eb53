// tools/cli/common.hpp — what several subcommands share: naming the chapter-3 modules, taking
// their dimension flags, inferring the rest from a weights file, building the module, and
// reading/writing the tensors a command consumes and produces.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cli.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/safetensors.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::cli {

/// The six mechanisms, by their CLI names.
enum class ModuleKind { simple, self_attention_v1, self_attention_v2, causal_attention, mha_wrapper, mha, llama };

/// "simple", "self_attention_v1", ..., "mha", "llama".
const char* module_kind_name(ModuleKind kind) noexcept;
/// Inverse of module_kind_name; throws UsageError listing the accepted names.
ModuleKind parse_module_kind(const std::string& name);
/// "simple, self_attention_v1, ..., mha" (for synopses and error messages).
const char* module_kind_names() noexcept;

bool has_weights(ModuleKind kind) noexcept;  ///< every module but `simple`
bool is_causal(ModuleKind kind) noexcept;    ///< causal_attention, mha_wrapper, mha
/// The modules whose forward can report attention weights (one head).
bool is_single_head(ModuleKind kind) noexcept;

/// Module flags as given on the command line; nullopt (or false) when absent.
struct ModuleFlags {
  std::optional<std::int64_t> d_in, d_out, context_length, num_heads;
  std::optional<double> dropout;
  bool qkv_bias = false;
  // llama only
  std::optional<std::int64_t> num_kv_heads, head_dim;
  std::optional<std::string> rope;
  std::optional<double> rope_theta;
};

/// Takes --d-in, --d-out, --context-length, --num-heads, --dropout and --qkv-bias, and for
/// llama --num-kv-heads, --head-dim, --rope and --rope-theta.
ModuleFlags take_module_flags(Args& args);

/// A complete description of a module: enough to construct it.
struct ModuleConfig {
  ModuleKind kind = ModuleKind::simple;
  std::int64_t d_in = 0;
  std::int64_t d_out = 0;           ///< per head for the wrapper, total for mha
  std::int64_t context_length = 0;  ///< 0 for the unmasked modules
  std::int64_t num_heads = 1;
  double dropout = 0.0;
  bool qkv_bias = false;
  // llama: d_in is d_model; num_heads H, num_kv_heads G, head_dim; o_bias
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  Rope rope = Rope::halves;
  double rope_theta = 10000.0;
  bool o_bias = false;
};

/// Completes `flags` into a config. A flag that does not apply to `kind` is a UsageError (so is
/// a `simple` with weights). What is not given is inferred:
///   d_in, d_out   from the query weight: `W_query` [d_in, d_out] (v1), `W_query.weight`
///                 [d_out, d_in] (v2, causal, mha), `heads.0.W_query.weight` (wrapper);
///                 for `simple`, d_in = d_out = the input's feature size;
///   qkv_bias      true when the weights hold the query bias;
///   num_heads     the number of `heads.{i}.` groups (wrapper); mha has no way to tell, so
///                 --num-heads is required there;
///   context_length  `tokens` (the input's T) for the causal modules;
///   llama         d_model from `q_proj.weight` [H*hd, d_model] (--num-heads is required),
///                 head_dim from its rows / H, num_kv_heads from `k_proj.weight`'s rows /
///                 head_dim, qkv_bias from `q_proj.bias`, o_bias from `o_proj.bias`.
/// Values that disagree with the weights are left for load_state_dict() to report, naming the
/// tensor. `weights` is null when there are none.
ModuleConfig resolve_module_config(ModuleKind kind, const ModuleFlags& flags,
                                   const TensorMap* weights, std::int64_t input_features,
                                   std::int64_t tokens);

/// Constructs the module of `config` (weights zero). Throws UsageError for `simple`, which is a
/// function, not a module, and Error(invalid_argument) for sizes the library rejects.
std::unique_ptr<AttentionModule> make_module(const ModuleConfig& config);

/// One forward of `config`'s mechanism: simple_attention() for `simple` (module unused, may be
/// null), module.forward() otherwise.
Tensor forward_module(const ModuleConfig& config, const AttentionModule* module, const Tensor& x,
                      const ForwardOptions& options);

/// Reads tensor `name` from a safetensors file and checks that it is [T, d] or [B, T, d] with
/// no zero extent. Other tensors in the file are ignored.
Tensor load_input_tensor(const std::string& path, const std::string& name = "x");

/// "--backend" value to a Backend; UsageError on anything else.
Backend parse_backend_flag(const std::string& value);

/// --weight-dtype f32|f16|bf16|q8_0|q4_0|auto (default `fallback`), as given; UsageError otherwise.
std::string take_weight_dtype(Args& args, const std::string& fallback = "auto");
/// The storage type `choice` names; `auto` is the weights file's own type
/// (safetensors_storage: f16/bf16 checkpoints stay so) or f32 without a file.
DType resolve_weight_dtype(const std::string& choice, const std::string* weights_path);

/// --kv-dtype's value: f32, f16, bf16 or q8_0; UsageError otherwise.
DType parse_kv_dtype(const std::string& value);

}  // namespace simdattn::cli
