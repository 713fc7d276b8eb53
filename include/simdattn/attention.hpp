// simdattn/attention.hpp — the attention mechanisms of chapter 3 of "Build a Large Language
// Model (From Scratch)", with the book's semantics, on a reference or a fast backend.
//
//   simdattn::MultiHeadAttention mha(/*d_in=*/768, /*d_out=*/768, /*context_length=*/1024,
//                                    /*dropout=*/0.0, /*num_heads=*/12, /*qkv_bias=*/true);
//   mha.load_state_dict(simdattn::load_safetensors("mha.safetensors"));
//   simdattn::Tensor y = mha.forward(x);   // x: [B, T, 768] or [T, 768]
//
// Thread safety: a constructed module's forward() is const and may be called from many threads
// at once, each call with its own output and KV cache. load_state_dict() and init_random() must
// not run concurrently with anything else on the same module.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "simdattn/dtype.hpp"
#include "simdattn/export.h"
#include "simdattn/rope.hpp"
#include "simdattn/safetensors.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn {

/// `reference`: naive loops accumulating in double (the oracle). `fast`: packed GEMMs and
/// flash-style attention on the active ISA, parallel with oneTBB.
enum class Backend { fast, reference };
SIMDATTN_API const char* backend_name(Backend backend) noexcept;  ///< "fast" or "reference"
SIMDATTN_API Backend parse_backend(const std::string& name);  ///< throws Error(invalid_argument)

/// Per-call options of forward().
struct ForwardOptions {
  Backend backend = Backend::fast;
  /// Training mode: dropout on the attention weights is applied (inverted dropout: kept weights
  /// are scaled by 1/(1-p)). Inference mode (the default) never drops anything.
  bool train = false;
  /// Seeds the dropout mask. The mask is a pure function of (seed, batch, head, query position,
  /// key position), so both backends, any thread count and any KV-cache split drop the same
  /// weights.
  std::uint64_t seed = 0;
  /// When non-null (single-head modules only), receives the attention weights after dropout:
  /// [B, T, T_keys], or [T, T_keys] for a rank-2 input.
  Tensor* attn_weights = nullptr;
};

enum class SoftmaxKind { stable, naive };

/// Self-attention without trainable weights (book §3.3): scores = X·Xᵀ (unscaled), softmax per
/// row, context = weights·X. x is [T, d] or [B, T, d]; the result has x's shape.
/// `naive` is the book's exp/sum softmax (overflows for large scores, as in the book); it is
/// available on the reference backend only.
SIMDATTN_API Tensor simple_attention(const Tensor& x, const ForwardOptions& options = {},
                                     SoftmaxKind softmax = SoftmaxKind::stable);

/// One learnable parameter: its state_dict() name and shape.
struct ParamInfo {
  std::string name;
  std::vector<std::int64_t> shape;
};

namespace detail {
class AttentionCore;
}
class KVCache;

/// Common interface of the five trainable modules. Weights start at zero; set them with
/// load_state_dict() (PyTorch state_dict() names and layouts) or init_random().
class SIMDATTN_API AttentionModule {
 public:
  virtual ~AttentionModule();
  AttentionModule(AttentionModule&&) noexcept;
  AttentionModule& operator=(AttentionModule&&) noexcept;
  AttentionModule(const AttentionModule&) = delete;
  AttentionModule& operator=(const AttentionModule&) = delete;

  /// x: [B, T, d_in] or [T, d_in]. Returns [B, T, output_dim()] (or [T, output_dim()]).
  /// Throws Error(invalid_argument) on a wrong rank or feature size, zero sizes, or
  /// T > context_length for the causal modules.
  Tensor forward(const Tensor& x, const ForwardOptions& options = {}) const;

  /// Incremental forward through a KV cache (causal modules only): x holds the next T tokens of
  /// each of the cache's B sequences; their K and V are appended and they attend to everything
  /// cached. Equals the matching rows of a full forward over the whole sequence.
  Tensor forward(const Tensor& x, KVCache& cache, const ForwardOptions& options = {}) const;
  /// The same, writing into `y`: when y already has the output's shape its storage is reused,
  /// so a decode loop that keeps one y per layer allocates nothing per step. Otherwise y is
  /// resized. y must not alias x.
  void forward_into(const Tensor& x, KVCache& cache, Tensor& y,
                    const ForwardOptions& options = {}) const;

  /// Strict load: every parameter must be present with its exact shape; a `mask` buffer is
  /// ignored; any other unknown key is an error. Throws Error(invalid_argument) naming the key.
  void load_state_dict(const TensorMap& state);
  TensorMap state_dict() const;
  std::vector<ParamInfo> parameters() const;
  /// PyTorch's nn.Linear default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from a seed.
  void init_random(std::uint64_t seed);

  /// How the projection matrices are stored (simdattn/dtype.hpp); biases stay f32. Repacks the
  /// current weights, and every later load_state_dict() / init_random() packs in that type.
  /// Both backends and state_dict() then see the stored values (e.g. f16-rounded): the fast
  /// path reads them as stored and computes in f32, the reference decodes them exactly, so the
  /// two agree to the usual tolerance. Throws Error(unsupported) for q8_0 or q4_0 when d_in (or, with
  /// out_proj, d_out) is not a multiple of 32, and Error(invalid_argument) when a weight does
  /// not fit the type (|w| > 65504 for f16); the module is unchanged then.
  void set_weight_storage(DType type);
  DType weight_storage() const noexcept;  ///< f32 unless set
  /// Bytes held for the weights: packed projection matrices (padded to 16 columns) plus f32
  /// biases. No f32 copy of stored weights is kept.
  std::int64_t weight_bytes() const noexcept;

  /// Many sequences in one call, each with its own KVCache (batch 1) and its own position:
  /// the serving loop of a continuous-batching server. x is [R, d_in] with R = the sum of
  /// steps[i].tokens: sequence 0's new tokens first, then sequence 1's, and so on; y receives
  /// [R, output_dim()] in the same order (its storage is reused when the shape matches, so a
  /// loop that keeps y allocates nothing per step). The projections run once over all R rows
  /// (the weights stream once per step, not once per sequence); attention runs per sequence
  /// over its own cache. Each sequence's rows are bitwise what a forward of that sequence alone
  /// would give, on the fast backend at any thread count, whatever else is in the batch.
  /// Sequences may join (a fresh or reset cache) and leave (omit them) between calls. Errors
  /// (before anything changes): a cache made for another module or with batch != 1, the same
  /// cache twice, tokens < 1, R != x's rows, a full non-sliding cache.
  struct SequenceStep {
    KVCache* cache = nullptr;
    std::int64_t tokens = 1;
  };
  void forward_batch(const Tensor& x, const std::vector<SequenceStep>& steps, Tensor& y,
                     const ForwardOptions& options = {}) const;

  const std::string& name() const noexcept;  ///< e.g. "CausalAttention"
  std::int64_t d_in() const noexcept;
  std::int64_t output_dim() const noexcept;   ///< feature size of forward()'s result
  std::int64_t num_heads() const noexcept;
  std::int64_t head_dim() const noexcept;
  std::int64_t context_length() const noexcept;  ///< 0 for the unmasked modules (no limit)
  double dropout() const noexcept;
  bool qkv_bias() const noexcept;
  bool causal() const noexcept;
  std::int64_t num_kv_heads() const noexcept;  ///< K/V heads (num_heads() but for LlamaAttention)
  Rope rope() const noexcept;                  ///< Rope::none but for LlamaAttention
  double rope_theta() const noexcept;

  /// The engine behind the module (internal). Error(invalid_argument) on a moved-from module.
  const detail::AttentionCore& core() const;

 protected:
  explicit AttentionModule(std::unique_ptr<detail::AttentionCore> core);

 private:
  std::unique_ptr<detail::AttentionCore> core_;
};

/// Book §3.4.1: weights stored [d_in, d_out] (x·W), keys `W_query`, `W_key`, `W_value`.
/// Scores scaled by 1/sqrt(d_out); no mask, no dropout.
class SIMDATTN_API SelfAttentionV1 : public AttentionModule {
 public:
  SelfAttentionV1(std::int64_t d_in, std::int64_t d_out);
};

/// Book §3.4.2: nn.Linear layout [d_out, d_in] (x·Wᵀ), keys `W_query.weight` (+ `.bias`), ...
class SIMDATTN_API SelfAttentionV2 : public AttentionModule {
 public:
  SelfAttentionV2(std::int64_t d_in, std::int64_t d_out, bool qkv_bias = false);
};

/// Book §3.5.3: causal mask, scale 1/sqrt(d_out), softmax, dropout(p), weights·V.
class SIMDATTN_API CausalAttention : public AttentionModule {
 public:
  CausalAttention(std::int64_t d_in, std::int64_t d_out, std::int64_t context_length,
                  double dropout, bool qkv_bias = false);
};

/// Book §3.6.1: num_heads independent CausalAttention heads (keys `heads.{i}.W_query.weight`,
/// ...), outputs concatenated: [B, T, num_heads * d_out]. No output projection.
class SIMDATTN_API MultiHeadAttentionWrapper : public AttentionModule {
 public:
  MultiHeadAttentionWrapper(std::int64_t d_in, std::int64_t d_out, std::int64_t context_length,
                            double dropout, std::int64_t num_heads, bool qkv_bias = false);
};

/// Book §3.6.2: d_out divisible by num_heads, head_dim = d_out / num_heads, per-head scale
/// 1/sqrt(head_dim), heads concatenated then `out_proj` [d_out, d_out] with bias.
class SIMDATTN_API MultiHeadAttention : public AttentionModule {
 public:
  MultiHeadAttention(std::int64_t d_in, std::int64_t d_out, std::int64_t context_length,
                     double dropout, std::int64_t num_heads, bool qkv_bias = false);
};

/// The attention of the Llama family (Llama 2/3, Mistral, Qwen2, ...), as Hugging Face's
/// LlamaAttention computes it: num_heads query heads and num_kv_heads (G, dividing num_heads)
/// key/value heads of width head_dim, grouped-query attention (query head h reads K/V head
/// h / (num_heads / G); G = num_heads is multi-head, G = 1 multi-query attention), the rotary
/// embedding of Q and K at each token's absolute position, scores scaled by 1/sqrt(head_dim),
/// a causal mask, and o_proj. No dropout (attention_dropout is 0 at inference).
/// State-dict keys are Hugging Face's: q_proj.weight [H*hd, d_model], k_proj.weight and
/// v_proj.weight [G*hd, d_model], o_proj.weight [d_model, H*hd], and with qkv_bias (Qwen2)
/// q_proj.bias, k_proj.bias, v_proj.bias, with o_bias o_proj.bias. A `rotary_emb.inv_freq`
/// buffer is ignored: the frequencies come from rope_theta. Load one layer of a Hugging Face
/// checkpoint with hf_attention_state_dict (below).
class SIMDATTN_API LlamaAttention : public AttentionModule {
 public:
  LlamaAttention(std::int64_t d_model, std::int64_t num_heads, std::int64_t num_kv_heads,
                 std::int64_t head_dim, std::int64_t context_length, Rope rope = Rope::halves,
                 double rope_theta = 10000.0, bool qkv_bias = false, bool o_bias = false);
};

/// The `model.layers.{layer}.self_attn.*` tensors of a Hugging Face Llama-family checkpoint
/// (as load_safetensors reads it), under LlamaAttention's names. Error(invalid_argument) when
/// the layer has no self_attn tensors, naming the prefix it looked for.
SIMDATTN_API TensorMap hf_attention_state_dict(const TensorMap& checkpoint, std::int64_t layer);

}  // namespace simdattn
