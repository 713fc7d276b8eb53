// tools/cli/difftest_oracle.hpp — difftest's own oracle: the chapter's attention recomputed in
// double from a case's inputs, with a rounding-error bound for every output element derived
// from that case's data. It shares no code with either backend (only the dropout hash, which
// the unit suite checks against an independent table), so a fault in code the reference and the
// fast path share (the KV cache's window, say) still shows.
#pragma once

#include <cstdint>
#include <vector>

#include "simdattn/dtype.hpp"
#include "simdattn/rope.hpp"

#include "common/dropout.hpp"

namespace simdattn::cli {

/// What the oracle needs of a case, as plain data. Weights in nn.Linear layout [inner, d_in],
/// heads stacked along the rows; no weights (wq empty) means book §3.3: q = k = v = x.
struct OracleProblem {
  std::int64_t batch = 1, tokens = 1, d_in = 1, heads = 1, head_dim = 1;
  bool causal = false;
  double scale = 1.0;
  const float* x = nullptr;  ///< [batch, tokens, d_in]
  const float *wq = nullptr, *wk = nullptr, *wv = nullptr;  ///< [inner, d_in] each
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr;  ///< [inner] or null
  const float *wo = nullptr, *bo = nullptr;                 ///< [out, inner], [out] or null
  /// LlamaAttention: K/V heads (query head h reads K/V head h / (heads / kv_heads); 0: heads,
  /// and wk/wv, bk/bv are then [kv_heads * head_dim, ...]), the rotary embedding of q and k at
  /// each token's position t, and out_proj's width (0: inner).
  std::int64_t kv_heads = 0;
  Rope rope = Rope::none;
  double rope_theta = 10000.0;
  std::int64_t out_dim = 0;
  /// First key position each query position sees (causal only; empty: 0). A sliding-window
  /// cache makes it grow.
  std::vector<std::int64_t> window_lo;
  /// A plain forward (the book's attn_weights @ values): masked keys' weights are 0, and
  /// 0 * NaN or 0 * inf in their values still reaches the row. false: through a KV cache, a
  /// query reads only the keys it sees.
  bool book_masking = true;
  detail::DropoutParams dropout;
  /// How the KV cache stores K and V (cached cases): each stored value may then lie a storage
  /// step from the backend's float value, which the bound adds to dk and dv (per value for
  /// f16/bf16, per 32-value block of head_dim for q8_0).
  DType kv_type = DType::f32;
};

/// Per output element [batch, tokens, output dim]: the value in double and the largest error a
/// correct float implementation can have there. A non-finite value means the element must come
/// out non-finite.
struct OracleResult {
  std::vector<double> y, bound;
  std::int64_t capped = 0;  ///< elements whose bound was capped (see the .cpp)
  /// Per element (attention cases; empty otherwise): 1 where an infinite value sits under a
  /// softmax weight that may come out below FLT_MIN in float. Exact arithmetic gives +-inf
  /// there (the weight is positive), float arithmetic may give 0 * inf = NaN (the fast path,
  /// float32 PyTorch); the reference, in double, gives +-inf.
  std::vector<unsigned char> underflow;
};

OracleResult attention_oracle(const OracleProblem& p);

/// The public causal softmax of rows x cols scores (stride ld), as causal_softmax documents.
OracleResult softmax_oracle(const float* scores, std::int64_t rows, std::int64_t cols,
                            std::int64_t ld, double scale, std::int64_t offset, bool causal);

/// exp of n arguments, each within the kernels' documented 2 ULP of float.
OracleResult exp_oracle(const float* x, std::int64_t n);

/// First visible key per query position of a sliding-window cache of `capacity` fed the
/// chunks in order: before a chunk of n tokens, the cache keeps its most recent capacity - n.
std::vector<std::int64_t> sliding_window_lo(const std::vector<std::int64_t>& chunks,
                                            std::int64_t capacity);

}  // namespace simdattn::cli
