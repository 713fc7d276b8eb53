// tools/cli/cmd_decode.cpp — `simdattn decode`: how fast a stack of attention layers generates,
// the way a GPT-style model runs them: one MultiHeadAttention (or, with --num-kv-heads, --rope
// or --head-dim, LlamaAttention) per layer, one KVCache per layer, a prompt prefilled in one
// call per layer, then new tokens one at a time through every layer. With --sequences N, N
// independent sequences with prompts of different lengths decode together as a server batches
// them: each has its own cache per layer, and each layer runs one forward_batch per step.
//
// What is being timed is the attention layers only. A real model has layer norms, MLPs and a
// sampler between them; here they are stood in for by one RMS normalisation of each layer's
// output before it enters the next layer (GPT-2 normalises every attention input the same way:
// it is pre-LN), and the next token's input is the normalised output of the top layer for the
// previous token (the first decoded token, with no prompt, is random). The normalisation keeps
// magnitudes steady however many layers and steps are run, so no step ever computes on
// subnormals; it costs O(B·d) per layer, nothing next to the attention.
//
// Per step, the library allocates only the Tensors forward() returns (the API returns tensors);
// the KV caches are preallocated at their full capacity (prompt + new tokens) before timing.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "cli.hpp"
#include "common.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/gpt2.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/runtime.hpp"
#include "simdattn/safetensors.hpp"
#include "stream_bandwidth.hpp"

namespace simdattn::cli {
namespace {

struct DecodeRequest {
  std::int64_t prompt_tokens = 0, new_tokens = 0, d_model = 0, heads = 0;
  std::int64_t batch = 1, layers = 1;
  std::optional<std::string> weights_path;
  std::int64_t gpt2_layer = 0;
  std::uint64_t seed = 0;
  Backend backend = Backend::fast;
  bool json = false;
  std::string weight_dtype = "auto";
  DType kv_dtype = DType::f32;
  // LlamaAttention layers (any of these given): G, head_dim, rotary layout and theta.
  bool llama = false;
  std::int64_t kv_heads = 0, head_dim = 0;
  Rope rope = Rope::halves;
  double rope_theta = 10000.0;
  std::int64_t sequences = 0;  ///< 0: one cache of batch B; N: N sequences of batch 1
};

DecodeRequest parse_decode_flags(Args& args) {
  DecodeRequest r;
  r.prompt_tokens = args.take_int("prompt-tokens", -1, 0);
  if (r.prompt_tokens < 0) throw UsageError{"missing required flag --prompt-tokens"};
  r.new_tokens = args.take_int("new-tokens", 0, 1);
  if (r.new_tokens < 1) throw UsageError{"missing required flag --new-tokens"};
  const auto d_model = args.take_optional_int("d-model", 1);
  const auto heads = args.take_optional_int("heads", 1);
  r.batch = args.take_int("batch", 1, 1, 1 << 20);
  r.layers = args.take_int("layers", 1, 1, 1 << 16);
  r.weights_path = args.take_optional_string("weights");
  const auto gpt2_layer = args.take_optional_int("gpt2-layer", 0);
  r.seed = static_cast<std::uint64_t>(args.take_int("seed", 0, 0));
  r.backend = parse_backend_flag(args.take_string("backend", "fast"));
  r.json = args.take_flag("json");
  r.weight_dtype = take_weight_dtype(args);
  r.kv_dtype = parse_kv_dtype(args.take_string("kv-dtype", "f32"));
  const auto kv_heads = args.take_optional_int("num-kv-heads", 1);
  const auto head_dim = args.take_optional_int("head-dim", 1);
  const auto rope = args.take_optional_string("rope");
  const auto theta = args.take_optional_double("rope-theta");
  const auto sequences = args.take_optional_int("sequences", 1, 1 << 16);
  apply_runtime_flags(args);
  args.finish();

  r.llama = kv_heads || head_dim || rope || theta;
  if (rope) {
    if (*rope != "halves" && *rope != "interleaved" && *rope != "none")
      throw UsageError{"--rope: expected halves, interleaved or none, got '" + *rope + "'"};
    r.rope = parse_rope(*rope);
  }
  if (theta) {
    if (!(*theta > 0.0 && std::isfinite(*theta)))
      throw UsageError{"--rope-theta must be positive and finite"};
    r.rope_theta = *theta;
  }
  r.kv_heads = kv_heads.value_or(0);
  r.head_dim = head_dim.value_or(0);
  if (r.llama && gpt2_layer)
    throw UsageError{"--num-kv-heads, --head-dim, --rope and --rope-theta make LlamaAttention "
                     "layers with random weights; --weights/--gpt2-layer load GPT-2's"};
  if (sequences) {
    if (r.batch != 1)
      throw UsageError{"--sequences and --batch exclude each other: --batch B is one cache of B "
                       "equal sequences, --sequences N is N sequences with their own caches"};
    r.sequences = *sequences;
  }

  if (!heads) throw UsageError{"missing required flag --heads"};
  r.heads = *heads;
  if (r.weights_path.has_value() != gpt2_layer.has_value())
    throw UsageError{"--weights and --gpt2-layer go together: --weights is a GPT-2 checkpoint "
                     "and --gpt2-layer picks the layer whose attention every layer runs"};
  r.gpt2_layer = gpt2_layer.value_or(0);
  if (!d_model && !r.weights_path)
    throw UsageError{"missing required flag --d-model (or give --weights and --gpt2-layer)"};
  r.d_model = d_model.value_or(0);  // 0: from the checkpoint
  if (r.prompt_tokens > (std::int64_t{1} << 30) || r.new_tokens > (std::int64_t{1} << 30))
    throw UsageError{"--prompt-tokens and --new-tokens must each be at most 2^30"};
  return r;
}

/// Seeded values in [-1, 1).
Tensor random_tensor(std::vector<std::int64_t> shape, std::uint64_t seed) {
  Tensor t(std::move(shape));
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : t.values()) v = dist(gen);
  return t;
}

/// Every row of h [B, T, d] scaled to unit root-mean-square (the stand-in for a layer norm).
void rms_normalise(Tensor& h) {
  const std::int64_t d = h.dim(h.rank() - 1);
  for (std::int64_t r = 0; r < h.numel() / d; ++r) {
    float* row = h.data() + r * d;
    double ss = 0.0;
    for (std::int64_t c = 0; c < d; ++c) ss += double(row[c]) * row[c];
    const double rms = std::sqrt(ss / static_cast<double>(d));
    const float inv = rms > 0.0 && std::isfinite(rms) ? static_cast<float>(1.0 / rms) : 1.0f;
    for (std::int64_t c = 0; c < d; ++c) row[c] *= inv;
  }
}

/// The last token of each sequence of h [B, T, d]: [B, 1, d].
Tensor last_token(const Tensor& h) {
  const std::int64_t batch = h.dim(0), tokens = h.dim(1), d = h.dim(2);
  Tensor out({batch, 1, d});
  for (std::int64_t b = 0; b < batch; ++b)
    std::copy_n(h.data() + (b * tokens + tokens - 1) * d, d, out.data() + b * d);
  return out;
}

/// Prompt length of sequence i of n: 64 + (P - 64) i / (n - 1) tokens (the shortest 64, the
/// longest P), or P for a single sequence; P itself when P < 64.
std::int64_t prompt_of(std::int64_t p, std::int64_t i, std::int64_t n) {
  if (n <= 1 || p <= 64) return p;
  return 64 + (p - 64) * i / (n - 1);
}

int decode_command(Args& args) {
  const DecodeRequest r = parse_decode_flags(args);
  const std::int64_t context = r.prompt_tokens + r.new_tokens;
  const bool per_sequence = r.sequences > 0;
  const std::int64_t n_seq = per_sequence ? r.sequences : r.batch;

  // The layers: random weights (seed + layer), or one GPT-2 layer's attention repeated.
  std::optional<TensorMap> gpt2_state;
  std::int64_t d = r.d_model;
  if (r.weights_path) {
    const TensorMap ckpt = load_safetensors(*r.weights_path);
    const std::int64_t ckpt_d = gpt2_model_dim(ckpt, r.gpt2_layer);
    if (d != 0 && d != ckpt_d)
      throw UsageError{"--d-model (" + std::to_string(d) + ") does not match the checkpoint's (" +
                       std::to_string(ckpt_d) + ")"};
    d = ckpt_d;
    gpt2_state = gpt2_attention_state_dict(ckpt, r.gpt2_layer);
  }
  const DType weight_type =
      resolve_weight_dtype(r.weight_dtype, r.weights_path ? &*r.weights_path : nullptr);
  const std::int64_t kv_heads = r.kv_heads > 0 ? r.kv_heads : r.heads;
  std::int64_t head_dim = r.head_dim;
  if (r.llama && head_dim == 0) {
    if (d % r.heads != 0)
      throw UsageError{"--d-model (" + std::to_string(d) + ") is not a multiple of --heads (" +
                       std::to_string(r.heads) + "); pass --head-dim"};
    head_dim = d / r.heads;
  }
  std::vector<std::unique_ptr<AttentionModule>> layers;
  std::int64_t weight_bytes = 0;
  for (std::int64_t l = 0; l < r.layers; ++l) {
    if (r.llama)
      layers.push_back(std::make_unique<LlamaAttention>(d, r.heads, kv_heads, head_dim, context,
                                                        r.rope, r.rope_theta));
    else
      layers.push_back(std::make_unique<MultiHeadAttention>(d, d, context, 0.0, r.heads,
                                                            /*qkv_bias=*/true));
    layers.back()->set_weight_storage(weight_type);
    if (gpt2_state)
      layers.back()->load_state_dict(*gpt2_state);
    else
      layers.back()->init_random(r.seed + static_cast<std::uint64_t>(l));
    weight_bytes += layers.back()->weight_bytes();
  }
  // caches[l][i]: layer l, sequence i (per_sequence), or caches[l][0] of batch B.
  std::vector<std::vector<KVCache>> caches(layers.size());
  std::int64_t kv_bytes = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    for (std::int64_t i = 0; i < (per_sequence ? n_seq : 1); ++i) {
      caches[l].emplace_back(*layers[l], per_sequence ? 1 : r.batch, 0, false, r.kv_dtype);
      kv_bytes += caches[l].back().bytes();
    }
  }
  // Bytes of one cached token's K and V in one layer, over all its K/V heads.
  const double kv_token_bytes =
      static_cast<double>(caches[0][0].bytes()) /
      static_cast<double>(caches[0][0].capacity() * caches[0][0].batch());
  std::vector<std::int64_t> prompts;
  for (std::int64_t i = 0; i < n_seq; ++i)
    prompts.push_back(per_sequence ? prompt_of(r.prompt_tokens, i, n_seq) : r.prompt_tokens);

  ForwardOptions options;
  options.backend = r.backend;
  using clock = std::chrono::steady_clock;
  auto seconds_since = [](clock::time_point t0) {
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  std::vector<std::vector<AttentionModule::SequenceStep>> steps(layers.size());

  // Prefill: the prompt through every layer, each layer's normalised output the next's input
  // (per sequence: one ragged forward_batch per layer).
  Tensor token = per_sequence ? random_tensor({n_seq, d}, r.seed ^ 0x5eedULL)
                              : random_tensor({r.batch, 1, d}, r.seed ^ 0x5eedULL);
  double prefill_s = 0.0;
  if (r.prompt_tokens > 0) {
    std::int64_t rows = 0;
    for (std::int64_t p : prompts) rows += p;
    Tensor h = per_sequence ? random_tensor({rows, d}, r.seed ^ 0x9e3779b97f4a7c15ULL)
                            : random_tensor({r.batch, r.prompt_tokens, d}, r.seed ^ 0x9e3779b97f4a7c15ULL);
    const auto t0 = clock::now();
    for (std::size_t l = 0; l < layers.size(); ++l) {
      if (per_sequence) {
        for (std::int64_t i = 0; i < n_seq; ++i)
          steps[l].push_back({&caches[l][static_cast<std::size_t>(i)], prompts[static_cast<std::size_t>(i)]});
        Tensor next;
        layers[l]->forward_batch(h, steps[l], next, options);
        h = std::move(next);
      } else {
        h = layers[l]->forward(h, caches[l][0], options);
      }
      rms_normalise(h);
    }
    if (per_sequence) {  // each sequence's last prompt token
      std::int64_t row = -1;
      for (std::int64_t i = 0; i < n_seq; ++i) {
        row += prompts[static_cast<std::size_t>(i)];
        std::copy_n(h.data() + row * d, d, token.data() + i * d);
      }
    } else {
      token = last_token(h);
    }
    prefill_s = seconds_since(t0);
  }
  for (std::size_t l = 0; l < layers.size(); ++l) {  // decode: one token per sequence per step
    steps[l].clear();
    for (std::int64_t i = 0; i < (per_sequence ? n_seq : 0); ++i)
      steps[l].push_back({&caches[l][static_cast<std::size_t>(i)], 1});
  }

  // Decode: one token per step through every layer.
  std::vector<double> step_s, step_bytes;
  step_s.reserve(static_cast<std::size_t>(r.new_tokens));
  Progress progress("decode", r.new_tokens);
  std::vector<Tensor> outs(layers.size());
  for (std::int64_t step = 0; step < r.new_tokens; ++step) {
    const auto t0 = clock::now();
    for (std::size_t l = 0; l < layers.size(); ++l) {
      if (per_sequence)
        layers[l]->forward_batch(token, steps[l], outs[l], options);
      else
        layers[l]->forward_into(token, caches[l][0], outs[l], options);
      token = outs[l];
      rms_normalise(token);
    }
    step_s.push_back(seconds_since(t0));
    // What the step had to read: every layer's weights, and the K/V of every held token
    // (including the one it appended) of every sequence.
    double held = 0.0;
    for (std::int64_t p : prompts) held += static_cast<double>(p + step + 1);
    step_bytes.push_back(static_cast<double>(weight_bytes) +
                         held * kv_token_bytes * static_cast<double>(layers.size()));
    progress.update(step + 1);
  }
  progress.finish();

  double decode_s = 0.0;
  for (double s : step_s) decode_s += s;
  const double median_ms = 1e3 * quantile(step_s, 0.5);
  const double p90_ms = 1e3 * quantile(step_s, 0.9);
  const double tokens_per_s = static_cast<double>(n_seq * r.new_tokens) / decode_s;
  double checksum = 0.0;  // the last token's values, so nothing can be optimised away
  for (float v : token.values()) checksum += v;
  // The floor: each step's bytes over the streaming bandwidth measured now, at this thread count.
  const double bandwidth = bench::stream_bandwidth(num_threads());
  std::vector<double> x_floor;
  for (std::size_t i = 0; i < step_s.size(); ++i) x_floor.push_back(step_s[i] / (step_bytes[i] / bandwidth));
  const double median_bytes = quantile(step_bytes, 0.5);
  const double median_x = quantile(x_floor, 0.5);

  if (r.json) {
    nlohmann::json out;
    out["prefill_s"] = prefill_s;
    out["decode_median_ms"] = median_ms;
    out["decode_p90_ms"] = p90_ms;
    out["decode_total_s"] = decode_s;
    out["tokens_per_s"] = tokens_per_s;
    out["step_bytes"] = median_bytes;  // the median step's reads: weights + every held K/V row
    out["stream_GBps"] = bandwidth / 1e9;
    out["x_of_floor"] = median_x;      // median over steps of step time / (bytes / bandwidth)
    out["config"] = {{"prompt_tokens", r.prompt_tokens}, {"new_tokens", r.new_tokens},
                     {"d_model", d},                     {"heads", r.heads},
                     {"kv_heads", kv_heads},             {"module", r.llama ? "llama" : "mha"},
                     {"rope", r.llama ? rope_name(r.rope) : "none"},
                     {"batch", r.batch},                 {"layers", r.layers},
                     {"sequences", per_sequence ? nlohmann::json(n_seq) : nlohmann::json()},
                     {"prompts", prompts},
                     {"backend", backend_name(r.backend)}, {"seed", r.seed},
                     {"weights", r.weights_path ? nlohmann::json(*r.weights_path) : nlohmann::json()},
                     {"gpt2_layer", r.weights_path ? nlohmann::json(r.gpt2_layer) : nlohmann::json()}};
    if (r.llama) out["config"]["head_dim"] = head_dim;
    out["isa"] = isa_name(active_isa());
    out["threads"] = num_threads();
    out["weight_dtype"] = dtype_name(weight_type);
    out["weight_bytes"] = weight_bytes;  // all layers: packed matrices + f32 biases
    out["kv_dtype"] = dtype_name(r.kv_dtype);
    out["kv_bytes"] = kv_bytes;  // all layers' caches, preallocated (prompt + new tokens)
    out["checksum"] = std::isfinite(checksum) ? nlohmann::json(checksum) : nlohmann::json();
    std::cout << out.dump() << "\n";
  } else {
    std::printf("decode: %lld layer(s) of %s(d=%lld, heads=%lld, kv_heads=%lld), %s %lld, "
                "%s backend, isa %s, %d thread(s), %s weights (%.1f MB), %s KV cache (%.1f MB)\n",
                static_cast<long long>(r.layers), r.llama ? "LlamaAttention" : "MultiHeadAttention",
                static_cast<long long>(d), static_cast<long long>(r.heads),
                static_cast<long long>(kv_heads), per_sequence ? "sequences" : "batch",
                static_cast<long long>(n_seq), backend_name(r.backend), isa_name(active_isa()),
                num_threads(), dtype_name(weight_type), 1e-6 * static_cast<double>(weight_bytes),
                dtype_name(r.kv_dtype), 1e-6 * static_cast<double>(kv_bytes));
    std::printf("  prefill  %lld token(s)%s: %.3f ms\n", static_cast<long long>(r.prompt_tokens),
                per_sequence && n_seq > 1 ? " (longest prompt)" : "", 1e3 * prefill_s);
    std::printf("  decode   %lld token(s): median %.3f ms/step, p90 %.3f ms/step, "
                "%.1f tokens/s (sequences x new tokens / decode time)\n",
                static_cast<long long>(r.new_tokens), median_ms, p90_ms, tokens_per_s);
    std::printf("  floor    %.1f MB per step at %.1f GB/s streaming (measured now): the step "
                "takes %.2fx its floor\n",
                1e-6 * median_bytes, bandwidth / 1e9, median_x);
  }
  return 0;
}

const bool registered = register_command(
    {"decode",
     "decode --prompt-tokens P --new-tokens N --heads H (--d-model D | --weights W --gpt2-layer I "
     "[--d-model D]) [--batch B | --sequences N (N sequences, own caches, prompts 64 .. P)] "
     "[--num-kv-heads G] [--head-dim D] [--rope halves|interleaved|none] [--rope-theta T] "
     "(any of these: LlamaAttention layers) [--layers L] [--seed S] "
     "[--weight-dtype f32|f16|bf16|q8_0|q4_0|auto] [--kv-dtype f32|f16|bf16|q8_0] "
     "[--backend fast|reference] [--isa I] [--threads N] [--json]",
     decode_command});

}  // namespace
}  // namespace simdattn::cli
