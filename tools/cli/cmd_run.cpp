// tools/cli/cmd_run.cpp — `simdattn run`: one forward of a chapter-3 module on tensors read from
// safetensors files, the output written to another.
//
// The command is four steps, each its own function: parse (every flag, cross-checked) → load the
// weights (a state dict, or with --gpt2-layer one layer of a GPT-2 checkpoint converted by
// gpt2_attention_state_dict) → forward (one call, or with --prefill the first P tokens as a
// prompt through a KVCache and the rest one token at a time) → write. Nothing is written until
// the forward has succeeded, and save_safetensors() renames a temporary file into place, so a
// failure never leaves an output file behind.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "common.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/gpt2.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/safetensors.hpp"

namespace simdattn::cli {
namespace {

struct RunRequest {
  ModuleKind kind = ModuleKind::simple;
  std::string input_path;
  std::string output_path;
  std::optional<std::string> weights_path;
  ModuleFlags module_flags;
  Backend backend = Backend::fast;
  bool train = false;
  std::uint64_t seed = 0;
  /// --prefill P: the first P tokens in one call through a KVCache, then calls of --chunk C
  /// tokens (1 by default; the last may be shorter).
  std::optional<std::int64_t> prefill;
  std::int64_t chunk = 1;
  /// --gpt2-layer N: --weights is a GPT-2 checkpoint; run its layer N's attention.
  std::optional<std::int64_t> gpt2_layer;
  /// --weight-dtype: how the module stores its projection weights (auto: the file's type).
  std::string weight_dtype = "auto";
  /// --kv-dtype (with --prefill): how the KV cache stores keys and values.
  DType kv_dtype = DType::f32;
};

RunRequest parse_run_flags(Args& args) {
  RunRequest r;
  r.kind = parse_module_kind(args.take_string("module"));
  r.input_path = args.take_string("input");
  r.output_path = args.take_string("output");
  r.weights_path = args.take_optional_string("weights");
  r.module_flags = take_module_flags(args);
  r.backend = parse_backend_flag(args.take_string("backend", "fast"));
  r.train = args.take_flag("train");
  const auto seed = args.take_optional_int("seed", 0);
  r.prefill = args.take_optional_int("prefill", 0);
  const auto chunk = args.take_optional_int("chunk", 1);
  r.gpt2_layer = args.take_optional_int("gpt2-layer", 0);
  r.weight_dtype = take_weight_dtype(args);
  const auto kv = args.take_optional_string("kv-dtype");
  apply_runtime_flags(args);
  args.finish();

  if (r.input_path.empty()) throw UsageError{"--input must not be empty"};
  if (r.output_path.empty()) throw UsageError{"--output must not be empty"};
  if (r.train && !r.module_flags.dropout)
    throw UsageError{"--train needs --dropout (the probability to train with)"};
  if (seed && !r.train) throw UsageError{"--seed only applies with --train"};
  r.seed = static_cast<std::uint64_t>(seed.value_or(0));
  if (has_weights(r.kind) && !r.weights_path)
    throw UsageError{std::string("module '") + module_kind_name(r.kind) +
                     "' needs --weights (its parameters would otherwise be all zero)"};
  if (!has_weights(r.kind) && r.weights_path)
    throw UsageError{"module 'simple' has no weights; drop --weights"};
  if (!has_weights(r.kind) && r.weight_dtype != "auto")
    throw UsageError{"module 'simple' has no weights; drop --weight-dtype"};
  if (r.prefill && !is_causal(r.kind))
    throw UsageError{std::string("--prefill needs a causal module (causal_attention, "
                                 "mha_wrapper or mha); module '") +
                     module_kind_name(r.kind) + "' has no KV cache"};
  if (chunk && !r.prefill) throw UsageError{"--chunk only applies with --prefill"};
  if (kv) {
    if (!r.prefill) throw UsageError{"--kv-dtype only applies with --prefill (the KV cache)"};
    r.kv_dtype = parse_kv_dtype(*kv);
  }
  r.chunk = chunk.value_or(1);
  if (r.gpt2_layer && r.kind != ModuleKind::mha)
    throw UsageError{std::string("--gpt2-layer needs --module mha (a GPT-2 layer is a "
                                 "MultiHeadAttention), not '") +
                     module_kind_name(r.kind) + "'"};
  return r;
}

/// Checks what needs the input: the prompt cannot be longer than the sequence.
void check_against_input(const RunRequest& r, std::int64_t tokens) {
  if (r.prefill && *r.prefill > tokens)
    throw UsageError{"--prefill (" + std::to_string(*r.prefill) +
                     ") must not exceed the input's sequence length T (" +
                     std::to_string(tokens) + ")"};
}

/// The state dict to load, or nothing for `simple`. With --gpt2-layer, the checkpoint's layer
/// as MultiHeadAttention names (d and qkv_bias are then inferred from them as usual).
std::optional<TensorMap> load_run_weights(const RunRequest& r) {
  if (!r.weights_path) return std::nullopt;
  TensorMap weights = load_safetensors(*r.weights_path);
  if (r.gpt2_layer) return gpt2_attention_state_dict(weights, *r.gpt2_layer);
  return weights;
}

/// Tokens [t0, t0 + n) of x ([T, d] or [B, T, d]), with x's rank.
Tensor slice_tokens(const Tensor& x, std::int64_t t0, std::int64_t n) {
  const std::size_t r = x.rank();
  const std::int64_t batch = r == 3 ? x.dim(0) : 1, tokens = x.dim(r - 2), d = x.dim(r - 1);
  Tensor out(r == 3 ? std::vector<std::int64_t>{batch, n, d} : std::vector<std::int64_t>{n, d});
  for (std::int64_t b = 0; b < batch; ++b)
    std::copy_n(x.data() + (b * tokens + t0) * d, n * d, out.data() + b * n * d);
  return out;
}

/// The forward as a generator runs it: the first `prefill` tokens of every sequence in one call
/// (none when 0), then calls of `chunk` tokens, all through one KVCache (capacity: the module's
/// context_length). Any split gives the same y, NaN and Inf included: a token reaches only the
/// rows that can see it.
Tensor forward_through_cache(const AttentionModule& module, const Tensor& x, std::int64_t prefill,
                             std::int64_t chunk, DType kv_dtype, const ForwardOptions& options) {
  const std::size_t r = x.rank();
  const std::int64_t batch = r == 3 ? x.dim(0) : 1, tokens = x.dim(r - 2);
  const std::int64_t d_out = module.output_dim();
  KVCache cache(module, batch, 0, false, kv_dtype);
  Tensor y(r == 3 ? std::vector<std::int64_t>{batch, tokens, d_out}
                  : std::vector<std::int64_t>{tokens, d_out});
  for (std::int64_t t = 0; t < tokens;) {
    const std::int64_t n = (t == 0 && prefill > 0) ? prefill : std::min(chunk, tokens - t);
    const Tensor part = module.forward(slice_tokens(x, t, n), cache, options);
    for (std::int64_t b = 0; b < batch; ++b)
      std::copy_n(part.data() + b * n * d_out, n * d_out, y.data() + (b * tokens + t) * d_out);
    t += n;
  }
  return y;
}

/// y and, for the single-head mechanisms, attn_weights, both with x's rank. Through a KV cache
/// (--prefill) only y: the weights of a token-by-token forward are never materialised.
TensorMap run_forward(const RunRequest& r, const ModuleConfig& config,
                      const AttentionModule* module, const Tensor& x) {
  ForwardOptions options;
  options.backend = r.backend;
  options.train = r.train;
  options.seed = r.seed;
  if (r.prefill) {
    if (module == nullptr) throw UsageError{"internal: --prefill without a module"};
    TensorMap out;
    out["y"] = forward_through_cache(*module, x, *r.prefill, r.chunk, r.kv_dtype, options);
    return out;
  }
  Tensor attn_weights;
  if (is_single_head(config.kind)) options.attn_weights = &attn_weights;
  TensorMap out;
  out["y"] = forward_module(config, module, x, options);
  if (is_single_head(config.kind)) out["attn_weights"] = std::move(attn_weights);
  return out;
}

int run_command(Args& args) {
  const RunRequest r = parse_run_flags(args);
  const Tensor x = load_input_tensor(r.input_path);
  const std::optional<TensorMap> weights = load_run_weights(r);
  const std::int64_t tokens = x.dim(x.rank() - 2);
  const std::int64_t features = x.dim(x.rank() - 1);
  check_against_input(r, tokens);
  const ModuleConfig config = resolve_module_config(r.kind, r.module_flags,
                                                    weights ? &*weights : nullptr, features, tokens);
  std::unique_ptr<AttentionModule> module;
  if (has_weights(config.kind)) {
    module = make_module(config);
    // Stored before loading, so the weights are packed once, straight into their type.
    module->set_weight_storage(
        resolve_weight_dtype(r.weight_dtype, r.weights_path ? &*r.weights_path : nullptr));
    module->load_state_dict(*weights);
  }
  const TensorMap out = run_forward(r, config, module.get(), x);
  save_safetensors(r.output_path, out);
  return 0;
}

const bool registered = register_command(
    {"run",
     "run --module simple|self_attention_v1|self_attention_v2|causal_attention|mha_wrapper|mha "
     "--input X --output Y [--weights W (all but simple)] [--num-heads N (required for mha)] "
     "[--d-in N] [--d-out N] [--context-length N (default T)] [--qkv-bias] "
     "[--dropout P [--train [--seed S]]] [--prefill P (causal: P prompt tokens through a KV "
     "cache, then one at a time, or C at a time with --chunk C; writes y only)] [--gpt2-layer N (mha: --weights is a GPT-2 "
     "checkpoint)] [--weight-dtype f32|f16|bf16|q8_0|auto (default auto: the weights file's "
     "type)] [--kv-dtype f32|f16|bf16|q8_0 (with --prefill)] [--backend fast|reference] [--isa I] "
     "[--threads N]",
     run_command});

}  // namespace
}  // namespace simdattn::cli
