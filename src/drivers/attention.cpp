// src/drivers/attention.cpp — the fast path of the attention modules: weights packed once at
// construction, then per forward one QKV GEMM, flash attention, one out_proj GEMM.
//
// Layout: the QKV GEMM writes Q, K and V head-major, [B][3 * heads][T][head_dim] (Q heads,
// then K heads, then V heads), straight from its register tiles: a tile of NR columns lies in
// one head when NR divides head_dim, so the driver only points each tile's store at its head's
// [T, head_dim] matrix (GemmArgs::c_group). The attention kernels then read every head's K and
// V as contiguous rows. Measured at T = 2048 before this layout: the flash driver spent ~9% of
// its time copying K/V blocks out of the [T, 3 * inner] rows (9 KiB apart for GPT-2 small,
// one TLB entry per row). One GEMM per batch row keeps the head matrices' row index simple;
// short sequences (T < kHeadMajorMinTokens) and head dims that tiles would straddle keep the
// natural [B*T, 3 * inner] output, read in place with strides.
#include "drivers/attention.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "common/half.hpp"
#include "common/validate.hpp"
#include "dispatch/kernel_table.hpp"
#include "drivers/attention_decode.hpp"
#include "drivers/attention_flash.hpp"
#include "drivers/gemm.hpp"
#include "drivers/parallel.hpp"
#include "drivers/scratch.hpp"
#include "drivers/softmax.hpp"
#include "simdattn/gemm.hpp"
#include "simdattn/reference.hpp"

namespace simdattn::detail {
namespace {

/// Below this many tokens one GEMM over all B*T rows beats B per-batch GEMMs (each would
/// stream the whole weight), and the K/V blocks are short enough to read in place.
constexpr std::int64_t kHeadMajorMinTokens = 64;

/// Activation scratch (QKV and the context) of the calling thread. Large buffers ask for
/// transparent huge pages: when the attention reads Q/K/V through strides (short sequences),
/// rows are 3*inner floats apart and with 4 KiB pages nearly every row is its own TLB entry.
float* forward_scratch(std::int64_t n) {
  thread_local ScratchFloats scratch(/*huge_pages=*/true);
  return scratch.get(n);
}

/// The f32 copy of a stored cache's held rows for one flash-path call (its own buffer: the
/// forward scratch above is in use for Q and the context meanwhile).
float* stored_kv_scratch(std::int64_t n) {
  thread_local ScratchFloats scratch(/*huge_pages=*/true);
  return scratch.get(n);
}

/// The materialising path, only when attention weights are asked for (single head):
/// W = causal_softmax(scale Q Kᵀ) with dropout, context = W V, one batch at a time.
void attention_with_weights(const float* q, const float* k, const float* v, std::int64_t ld_qkv,
                            std::int64_t batch_stride, std::int64_t batch, std::int64_t tokens,
                            std::int64_t hd, float scale, bool causal,
                            const DropoutParams& dropout, float* weights, float* ctx,
                            std::int64_t ld_ctx, std::int64_t ctx_batch_stride) {
  const float keep_scale = static_cast<float>(dropout.keep_scale());
  for (std::int64_t b = 0; b < batch; ++b) {
    float* w = weights + b * tokens * tokens;
    const float* qb = q + b * batch_stride;
    sgemm(Transpose::yes, tokens, tokens, hd, scale, qb, ld_qkv, k + b * batch_stride, ld_qkv,
          0.0f, w, tokens);
    causal_softmax_fast(w, tokens, tokens, tokens, 1.0f, 0, causal);
    if (dropout.active())
      parallel_for_blocks(tokens, [&](std::int64_t i) {
        float* row = w + i * tokens;
        for (std::int64_t j = 0; j < tokens; ++j)
          row[j] *= dropout_keep(dropout, static_cast<std::uint64_t>(b), 0,
                                 static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(j))
                        ? keep_scale
                        : 0.0f;  // a multiplier, as torch: a dropped NaN weight stays NaN
      });
    sgemm(Transpose::no, tokens, hd, tokens, 1.0f, w, tokens, v + b * batch_stride, ld_qkv, 0.0f,
          ctx + b * ctx_batch_stride, ld_ctx);
  }
}

}  // namespace

struct FastAttention::State {
  AttentionDesc spec;
  PackedMatrix wqkv;          ///< op(B) = [Wq; Wk; Wv]ᵀ: d_in x 3*inner
  std::vector<float> bqkv;    ///< [bq | bk | bv], empty without qkv_bias
  PackedMatrix wo;            ///< op(B) = Woᵀ: inner x inner, empty without out_proj
  std::vector<float> bo;
};

FastAttention::FastAttention(const AttentionDesc& spec, const AttentionWeights& weights)
    : state_(std::make_unique<State>()) {
  State& st = *state_;
  st.spec = spec;
  const std::int64_t inner = spec.inner_dim(), d_in = spec.d_in;
  const auto block = static_cast<std::size_t>(inner * d_in);
  // Rows [0, inner) Wq, then Wk, then Wv: one [3*inner, d_in] nn.Linear-layout matrix.
  std::vector<float> wqkv(3 * block);
  std::copy(weights.wq.begin(), weights.wq.end(), wqkv.begin());
  std::copy(weights.wk.begin(), weights.wk.end(), wqkv.begin() + static_cast<std::ptrdiff_t>(block));
  std::copy(weights.wv.begin(), weights.wv.end(), wqkv.begin() + static_cast<std::ptrdiff_t>(2 * block));
  st.wqkv = PackedMatrix(wqkv.data(), d_in, Transpose::yes, d_in, 3 * inner, spec.weight_type);
  if (spec.qkv_bias) {
    st.bqkv.reserve(static_cast<std::size_t>(3 * inner));
    st.bqkv.insert(st.bqkv.end(), weights.bq.begin(), weights.bq.end());
    st.bqkv.insert(st.bqkv.end(), weights.bk.begin(), weights.bk.end());
    st.bqkv.insert(st.bqkv.end(), weights.bv.begin(), weights.bv.end());
  }
  if (spec.out_proj) {
    st.wo = PackedMatrix(weights.wo.data(), inner, Transpose::yes, inner, inner, spec.weight_type);
    st.bo = weights.bo;
  }
}

FastAttention::~FastAttention() = default;

AttentionWeights FastAttention::stored_weights(const AttentionWeights& biases) const {
  const State& st = *state_;
  const std::int64_t inner = st.spec.inner_dim(), d_in = st.spec.d_in;
  AttentionWeights w;
  // op(B) = [Wq; Wk; Wv]ᵀ is [d_in, 3 * inner]: element (c, r) is W(r, c).
  const std::vector<float> qkv = reference::stored_values(st.wqkv);
  for (std::vector<float>* dst : {&w.wq, &w.wk, &w.wv}) dst->resize(static_cast<std::size_t>(inner * d_in));
  for (std::int64_t c = 0; c < d_in; ++c)
    for (std::int64_t r = 0; r < 3 * inner; ++r) {
      std::vector<float>& dst = r < inner ? w.wq : (r < 2 * inner ? w.wk : w.wv);
      dst[static_cast<std::size_t>((r % inner) * d_in + c)] =
          qkv[static_cast<std::size_t>(c * 3 * inner + r)];
    }
  if (st.spec.out_proj) {
    const std::vector<float> wo = reference::stored_values(st.wo);  // Woᵀ
    w.wo.resize(static_cast<std::size_t>(inner * inner));
    for (std::int64_t c = 0; c < inner; ++c)
      for (std::int64_t r = 0; r < inner; ++r)
        w.wo[static_cast<std::size_t>(r * inner + c)] = wo[static_cast<std::size_t>(c * inner + r)];
  }
  w.bq = biases.bq;
  w.bk = biases.bk;
  w.bv = biases.bv;
  w.bo = biases.bo;
  return w;
}

std::int64_t FastAttention::weight_bytes() const noexcept {
  const State& st = *state_;
  const auto bias_bytes = static_cast<std::int64_t>((st.bqkv.size() + st.bo.size()) * sizeof(float));
  return st.wqkv.resident_bytes() + st.wo.resident_bytes() + bias_bytes;
}

void FastAttention::forward(const float* x, std::int64_t batch, std::int64_t tokens, float* y,
                            const DropoutParams& dropout, float* attn_weights) const {
  const State& st = *state_;
  const AttentionDesc& spec = st.spec;
  const std::int64_t inner = spec.inner_dim(), hd = spec.head_dim, n3 = 3 * inner;
  const std::int64_t m = batch * tokens;
  if (attn_weights != nullptr && spec.num_heads != 1)
    fail_arg(spec.module_name, ": attention weights are only available for a single head (",
             "num_heads is ", spec.num_heads, ")");

  float* qkv = forward_scratch(m * n3 + (spec.out_proj ? m * inner : 0));
  float* ctx = spec.out_proj ? qkv + m * n3 : y;  // without out_proj the context is the output
  const float* bqkv = st.bqkv.empty() ? nullptr : st.bqkv.data();
  const KernelTable& table = kernels();
  // table.gemm.nr is a whole number of panels, so whole tiles per head suffices.
  const bool head_major =
      attn_weights == nullptr && tokens >= kHeadMajorMinTokens && hd % table.gemm.nr == 0;
  if (head_major) {
    for (std::int64_t b = 0; b < batch; ++b) {
      GemmArgs args;
      args.m = tokens;
      args.a = x + b * tokens * spec.d_in;
      args.lda = spec.d_in;
      args.c = qkv + b * tokens * n3;
      args.ldc = hd;
      args.bias = bqkv;
      args.c_group = hd;
      args.c_group_stride = tokens * hd;
      gemm_packed(table, args, st.wqkv.packed().view);
    }
  } else {
    sgemm_packed(m, 1.0f, x, spec.d_in, st.wqkv, 0.0f, qkv, n3, bqkv);
  }

  // Book: scores / sqrt(keys.shape[-1]), keys.shape[-1] being the width of one head.
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  if (attn_weights != nullptr) {
    attention_with_weights(qkv, qkv + inner, qkv + 2 * inner, n3, tokens * n3, batch, tokens, hd,
                           scale, spec.causal, dropout, attn_weights, ctx, inner,
                           tokens * inner);
  } else {
    FlashProblem p;
    p.batch = batch;
    p.heads = spec.num_heads;
    p.q_len = p.kv_len = tokens;
    p.head_dim = hd;
    p.q = qkv;
    p.q_batch_stride = p.k_batch_stride = p.v_batch_stride = tokens * n3;
    if (head_major) {  // [B][3H][T][hd]
      p.k = qkv + inner * tokens;
      p.v = qkv + 2 * inner * tokens;
      p.q_head_stride = p.k_head_stride = p.v_head_stride = tokens * hd;
      p.q_row_stride = p.k_row_stride = p.v_row_stride = hd;
    } else {  // [B][T][3 * inner]
      p.k = qkv + inner;
      p.v = qkv + 2 * inner;
      p.q_head_stride = p.k_head_stride = p.v_head_stride = hd;
      p.q_row_stride = p.k_row_stride = p.v_row_stride = n3;
    }
    p.out = ctx;
    p.out_batch_stride = tokens * inner;
    p.out_head_stride = hd;
    p.out_row_stride = inner;
    p.scale = scale;
    p.causal = spec.causal;
    p.propagate_masked_nonfinite = true;  // the book's attn_weights @ values: 0 * NaN is NaN
    p.dropout = dropout;
    flash_attention(p);
  }
  if (spec.out_proj)
    sgemm_packed(m, 1.0f, ctx, inner, st.wo, 0.0f, y, inner, st.bo.data());
}

void FastAttention::forward_cached(const float* x, std::int64_t batch, std::int64_t tokens,
                                   float* y, const DropoutParams& dropout,
                                   const KVRing& cache) const {
  const State& st = *state_;
  const AttentionDesc& spec = st.spec;
  const std::int64_t inner = spec.inner_dim(), hd = spec.head_dim, n3 = 3 * inner;
  const std::int64_t heads = spec.num_heads, m = batch * tokens, held = cache.length;

  float* qkv = forward_scratch(m * n3 + (spec.out_proj ? m * inner : 0));
  float* ctx = spec.out_proj ? qkv + m * n3 : y;
  // Small m (a decode step) takes the GEMM's streaming small-M path on the packed weight.
  sgemm_packed(m, 1.0f, x, spec.d_in, st.wqkv, 0.0f, qkv, n3,
               st.bqkv.empty() ? nullptr : st.bqkv.data());

  // Append the new keys and values: the cache is head-major so that the attention below reads
  // each head's keys as contiguous rows, whatever the projection's layout; a stored cache
  // encodes them into its type here, once (the reference encodes with the same definition).
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = 0; t < tokens; ++t) {
      const float* src = qkv + (b * tokens + t) * n3;
      for (std::int64_t h = 0; h < heads; ++h) {
        kv_encode_row(src + inner + h * hd, hd, cache.storage, cache.k_bytes(b, h, held + t));
        kv_encode_row(src + 2 * inner + h * hd, hd, cache.storage, cache.v_bytes(b, h, held + t));
      }
    }
  const bool stored = cache.storage != DType::f32;

  FlashProblem p;
  p.batch = batch;
  p.heads = heads;
  p.q_len = tokens;
  p.kv_len = held + tokens;
  p.head_dim = hd;
  p.q = qkv;
  p.q_batch_stride = tokens * n3;
  p.q_head_stride = hd;
  p.q_row_stride = n3;
  p.k = cache.k;
  p.v = cache.v;
  p.kv_ring = cache.capacity;
  p.kv_ring_start = cache.start;
  if (stored) {
    p.kv_storage = weight_storage(cache.storage);
    p.kb = cache.kb;
    p.vb = cache.vb;
    p.kv_row_bytes = cache.row_bytes;
  }
  p.k_batch_stride = p.v_batch_stride = heads * cache.capacity * hd;
  p.k_head_stride = p.v_head_stride = cache.capacity * hd;
  p.k_row_stride = p.v_row_stride = hd;
  p.out = ctx;
  p.out_batch_stride = tokens * inner;
  p.out_head_stride = hd;
  p.out_row_stride = inner;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  p.causal = true;
  p.q_offset = cache.position;
  p.k_offset = cache.first_position();
  p.dropout = dropout;
  // A decode step (one or two queries per head) is a pass over the cache: the head_dim-wise
  // kernel keeps it memory-bound, where the query-vectorised flash kernel would idle its lanes.
  if (tokens <= 2) {
    decode_attention(p);
  } else if (!stored) {
    flash_attention(p);
  } else {
    // Flash attention over a stored cache: the held rows of every (batch, head), oldest first,
    // dequantized once per call into a per-thread f32 copy (not kept: the next call reuses
    // it), which the flash kernels then read as a plain, unwrapped K/V.
    const std::int64_t kv = held + tokens;
    float* kf = stored_kv_scratch(2 * batch * heads * kv * hd);
    float* vf = kf + batch * heads * kv * hd;
    const KvDequantRowsFn dequant = kernels().decode.kv_dequant[static_cast<int>(p.kv_storage)];
    parallel_for_blocks(batch * heads, [&](std::int64_t task) {
      const std::int64_t b = task / heads, h = task % heads;
      float* kd = kf + task * kv * hd;
      float* vd = vf + task * kv * hd;
      // Logical slots [0, kv) sit at physical [start, capacity) then [0, ...): two runs.
      const std::int64_t first_run = std::min(kv, cache.capacity - cache.start);
      dequant(cache.k_bytes(b, h, 0), cache.row_bytes, first_run, hd, kd);
      dequant(cache.v_bytes(b, h, 0), cache.row_bytes, first_run, hd, vd);
      if (kv > first_run) {
        dequant(cache.k_bytes(b, h, first_run), cache.row_bytes, kv - first_run, hd,
                kd + first_run * hd);
        dequant(cache.v_bytes(b, h, first_run), cache.row_bytes, kv - first_run, hd,
                vd + first_run * hd);
      }
    });
    p.k = kf;
    p.v = vf;
    p.kv_ring = 0;
    p.kv_ring_start = 0;
    p.kv_storage = WeightStorage::f32;
    p.k_batch_stride = p.v_batch_stride = heads * kv * hd;
    p.k_head_stride = p.v_head_stride = kv * hd;
    flash_attention(p);
  }

  if (spec.out_proj)
    sgemm_packed(m, 1.0f, ctx, inner, st.wo, 0.0f, y, inner, st.bo.data());
}

void simple_attention_fast(const float* x, std::int64_t batch, std::int64_t tokens,
                           std::int64_t dim, float* y, float* attn_weights) {
  if (attn_weights != nullptr) {
    attention_with_weights(x, x, x, dim, tokens * dim, batch, tokens, dim, 1.0f, false,
                           DropoutParams{}, attn_weights, y, dim, tokens * dim);
    return;
  }
  FlashProblem p;
  p.batch = batch;
  p.heads = 1;
  p.q_len = p.kv_len = tokens;
  p.head_dim = dim;
  p.q = p.k = p.v = x;
  p.q_batch_stride = p.k_batch_stride = p.v_batch_stride = tokens * dim;
  p.q_row_stride = p.k_row_stride = p.v_row_stride = dim;
  p.out = y;
  p.out_batch_stride = tokens * dim;
  p.out_row_stride = dim;
  p.scale = 1.0f;  // book §3.3: unscaled scores
  flash_attention(p);
}

}  // namespace simdattn::detail
