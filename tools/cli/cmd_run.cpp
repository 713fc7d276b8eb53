// tools/cli/cmd_run.cpp — `simdattn run`: one forward of a chapter-3 module on tensors read from
// safetensors files, the output written to another.
//
// The command is four steps, each its own function so that later flags slot into one place:
// parse (every flag, cross-checked) → load the weights (the place for --gpt2-layer, which will
// convert a checkpoint's layer with gpt2_attention_state_dict) → forward (the place for
// --prefill, which will run the first P tokens as a whole and the rest through a KVCache) →
// write. Nothing is written until the forward has succeeded, and save_safetensors() renames a
// temporary file into place, so a failure never leaves an output file behind.
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

#include "cli.hpp"
#include "common.hpp"
#include "simdattn/attention.hpp"
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
  return r;
}

/// The state dict to load, or nothing for `simple`.
std::optional<TensorMap> load_run_weights(const RunRequest& r) {
  if (!r.weights_path) return std::nullopt;
  return load_safetensors(*r.weights_path);
}

/// y and, for the single-head mechanisms, attn_weights, both with x's rank.
TensorMap run_forward(const RunRequest& r, const ModuleConfig& config,
                      const AttentionModule* module, const Tensor& x) {
  ForwardOptions options;
  options.backend = r.backend;
  options.train = r.train;
  options.seed = r.seed;
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
  const ModuleConfig config = resolve_module_config(r.kind, r.module_flags,
                                                    weights ? &*weights : nullptr, features, tokens);
  std::unique_ptr<AttentionModule> module;
  if (has_weights(config.kind)) {
    module = make_module(config);
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
     "[--dropout P [--train [--seed S]]] [--backend fast|reference] [--isa I] [--threads N]",
     run_command});

}  // namespace
}  // namespace simdattn::cli
