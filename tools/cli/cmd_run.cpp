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
  /// --hf-layer N: --weights is a Hugging Face Llama-family checkpoint; run layer N's self_attn.
  std::optional<std::int64_t> hf_layer;
  /// --lengths L1,L2,...: sequence b is x[b, :L_b]; y's rows past L_b are 0.
  std::vector<std::int64_t> lengths;
  /// --weight-dtype: how the module stores its projection weights (auto: the file's type).
  std::string weight_dtype = "auto";
  /// --kv-dtype (with --prefill): how the KV cache stores keys and values.
  DType kv_dtype = DType::f32;
};

std::vector<std::int64_t> parse_lengths(const std::string& text) {
  std::vector<std::int64_t> out;
  std::size_t at = 0;
  while (true) {
    const std::size_t comma = text.find(',', at);
    const std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size())
      throw UsageError{"--lengths expects comma-separated integers, got '" + text + "'"};
    out.push_back(v);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

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
  r.hf_layer = args.take_optional_int("hf-layer", 0);
  const auto lengths = args.take_optional_string("lengths");
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
                                 "mha_wrapper, mha or llama); module '") +
                     module_kind_name(r.kind) + "' has no KV cache"};
  if (lengths) {
    if (!is_causal(r.kind))
      throw UsageError{std::string("--lengths needs a causal module (each sequence runs through "
                                   "its own KV cache); module '") +
                       module_kind_name(r.kind) + "' has none"};
    r.lengths = parse_lengths(*lengths);
  }
  if (r.hf_layer && r.kind != ModuleKind::llama)
    throw UsageError{std::string("--hf-layer needs --module llama, not '") +
                     module_kind_name(r.kind) + "'"};
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

/// Checks what needs the input: the prompt cannot be longer than the sequence, and --lengths
/// gives one length in [1, T] per batch entry.
void check_against_input(const RunRequest& r, const Tensor& x) {
  const std::int64_t tokens = x.dim(x.rank() - 2), batch = x.rank() == 3 ? x.dim(0) : 1;
  if (r.prefill && *r.prefill > tokens)
    throw UsageError{"--prefill (" + std::to_string(*r.prefill) +
                     ") must not exceed the input's sequence length T (" +
                     std::to_string(tokens) + ")"};
  if (r.lengths.empty()) return;
  if (static_cast<std::int64_t>(r.lengths.size()) != batch)
    throw UsageError{"--lengths gives " + std::to_string(r.lengths.size()) +
                     " lengths; the input has B = " + std::to_string(batch) + " sequences"};
  for (std::int64_t L : r.lengths)
    if (L < 1 || L > tokens)
      throw UsageError{"--lengths: " + std::to_string(L) + " is not in [1, T = " +
                       std::to_string(tokens) + "]"};
}

/// The state dict to load, or nothing for `simple`. With --gpt2-layer, the checkpoint's layer
/// as MultiHeadAttention names (d and qkv_bias are then inferred from them as usual).
std::optional<TensorMap> load_run_weights(const RunRequest& r) {
  if (!r.weights_path) return std::nullopt;
  TensorMap weights = load_safetensors(*r.weights_path);
  if (r.gpt2_layer) return gpt2_attention_state_dict(weights, *r.gpt2_layer);
  if (r.hf_layer) return hf_attention_state_dict(weights, *r.hf_layer);
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

/// The B sequences of x, sequence b being x[b, :lengths[b]], each through its own KVCache and
/// all advancing together, one forward_batch call per step: with prefill P, first min(P, L_b)
/// tokens of each, then `chunk` at a time (a sequence that is done leaves the batch); without
/// prefill (0), each sequence whole in one call (a ragged prefill). Rows of y past L_b are 0.
Tensor forward_sequences(const AttentionModule& module, const Tensor& x,
                         std::vector<std::int64_t> lengths, std::int64_t prefill,
                         std::int64_t chunk, DType kv_dtype, const ForwardOptions& options) {
  const std::size_t r = x.rank();
  const std::int64_t batch = r == 3 ? x.dim(0) : 1, tokens = x.dim(r - 2), d = x.dim(r - 1);
  const std::int64_t d_out = module.output_dim();
  if (lengths.empty()) lengths.assign(static_cast<std::size_t>(batch), tokens);
  std::vector<KVCache> caches;
  for (std::int64_t b = 0; b < batch; ++b) caches.emplace_back(module, 1, 0, false, kv_dtype);
  Tensor y(r == 3 ? std::vector<std::int64_t>{batch, tokens, d_out}
                  : std::vector<std::int64_t>{tokens, d_out});  // zeros
  std::vector<std::int64_t> done(static_cast<std::size_t>(batch), 0);
  Tensor step_y;
  for (bool first = true;; first = false) {
    std::vector<AttentionModule::SequenceStep> steps;
    std::vector<std::int64_t> who;
    std::vector<float> rows;
    for (std::int64_t b = 0; b < batch; ++b) {
      const std::int64_t left = lengths[static_cast<std::size_t>(b)] - done[static_cast<std::size_t>(b)];
      if (left == 0) continue;
      const std::int64_t want = first ? (prefill > 0 ? prefill : left) : chunk;
      const std::int64_t n = std::min(want, left);
      steps.push_back({&caches[static_cast<std::size_t>(b)], n});
      who.push_back(b);
      const float* src = x.data() + (b * tokens + done[static_cast<std::size_t>(b)]) * d;
      rows.insert(rows.end(), src, src + n * d);
    }
    if (steps.empty()) break;
    const auto n_rows = static_cast<std::int64_t>(rows.size()) / d;
    module.forward_batch(Tensor({n_rows, d}, std::move(rows)), steps, step_y, options);
    std::int64_t row = 0;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const std::int64_t b = who[i], n = steps[i].tokens;
      std::copy_n(step_y.data() + row * d_out, n * d_out,
                  y.data() + (b * tokens + done[static_cast<std::size_t>(b)]) * d_out);
      done[static_cast<std::size_t>(b)] += n;
      row += n;
    }
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
  // With --lengths (any causal module) or llama with --prefill, the sequences run as a server
  // runs them: each through its own cache, one batched call per step.
  if (!r.lengths.empty() || (config.kind == ModuleKind::llama && r.prefill)) {
    if (module == nullptr) throw UsageError{"internal: no module"};
    TensorMap out;
    out["y"] = forward_sequences(*module, x, r.lengths, r.prefill.value_or(0), r.chunk,
                                 r.kv_dtype, options);
    return out;
  }
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
  check_against_input(r, x);
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
     "checkpoint)] [--weight-dtype f32|f16|bf16|q8_0|q4_0|auto (default auto: the weights file's "
     "type)] [--kv-dtype f32|f16|bf16|q8_0 (with --prefill)] [--lengths L1,L2,... (causal: "
     "sequence b is x[b, :L_b], each through its own KV cache in one batched call per step; y's "
     "rows past L_b are 0)] [--backend fast|reference] [--isa I] [--threads N]\n"
     "  run --module llama --num-heads H [--num-kv-heads G] [--head-dim D] "
     "[--rope halves|interleaved|none (default halves)] [--rope-theta T (default 10000)] "
     "[--context-length N] --weights W [--hf-layer N (W is a Hugging Face checkpoint)] "
     "--input X --output Y [--prefill P [--chunk C]] [--lengths L1,L2,...] [--weight-dtype ...] "
     "[--kv-dtype ...] [--backend ...] [--isa ...] [--threads ...] (d_model and head_dim from "
     "q_proj.weight and H, G from k_proj.weight, biases when present)",
     run_command});

}  // namespace
}  // namespace simdattn::cli
