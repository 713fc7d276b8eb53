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
#include "common/rope.hpp"
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

/// The per-call lists of a cached forward (per thread, grow-only).
CachedSequence* sequence_scratch(std::int64_t n) {
  thread_local std::vector<CachedSequence> scratch;
  if (static_cast<std::int64_t>(scratch.size()) < n) scratch.resize(static_cast<std::size_t>(n));
  return scratch.data();
}
FlashProblem* problem_scratch(std::int64_t n) {
  thread_local std::vector<FlashProblem> scratch;
  if (static_cast<std::int64_t>(scratch.size()) < n) scratch.resize(static_cast<std::size_t>(n));
  return scratch.data();
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

/// The rotary embedding as the QKV GEMM's block hook (GemmBlockHook): each finished block of
/// Q and K columns is rotated by its rows' positions while it is still in cache, so RoPE costs
/// no pass over memory of its own. Row r of the GEMM is the token at position
/// row_positions[r] when given, else base + r % period.
struct RopeHook {
  const RopeTable* table = nullptr;
  std::int64_t head_dim = 0;
  std::int64_t rotated = 0;  ///< columns [0, rotated) are Q and K heads; V is left alone
  const std::int64_t* row_positions = nullptr;
  std::int64_t base = 0, period = 1;

  static void run(const void* ctx, const GemmArgs& args, std::int64_t row0, std::int64_t rows,
                  std::int64_t col0, std::int64_t cols) {
    const RopeHook& h = *static_cast<const RopeHook*>(ctx);
    const std::int64_t hd = h.head_dim;
    const std::int64_t c1 = std::min(col0 + cols, h.rotated);
    float spill[512];  // pairs * 2 <= head_dim floats; head_dim <= 512 (checked at construction)
    for (std::int64_t r = row0; r < row0 + rows; ++r) {
      const std::int64_t pos = h.row_positions != nullptr ? h.row_positions[r] : h.base + r % h.period;
      for (std::int64_t c = col0; c < c1; c += hd) h.table->rotate(args.c_at(r, c), pos, spill);
    }
  }
};

std::int64_t gcd(std::int64_t a, std::int64_t b) { return b == 0 ? a : gcd(b, a % b); }

/// Positions of a cached call's GEMM rows (per thread, grow-only: a decode step allocates
/// nothing once warm).
std::int64_t* position_scratch(std::int64_t n) {
  thread_local std::vector<std::int64_t> scratch;
  if (static_cast<std::int64_t>(scratch.size()) < n) scratch.resize(static_cast<std::size_t>(n));
  return scratch.data();
}

}  // namespace

struct FastAttention::State {
  AttentionDesc spec;
  PackedMatrix wqkv;          ///< op(B) = [Wq; Wk; Wv]ᵀ: d_in x (inner + 2 * kv_dim)
  std::vector<float> bqkv;    ///< [bq | bk | bv], empty without qkv_bias
  PackedMatrix wo;            ///< op(B) = Woᵀ: inner x output_dim, empty without out_proj
  std::vector<float> bo;      ///< empty without out_proj or out_bias
  RopeTable rope;             ///< cos/sin per position up to context_length (RoPE modules)

  /// The QKV projection of m rows of x into qkv (GemmArgs layout fields set by the caller),
  /// with the rotary embedding applied by the GEMM's block hook.
  void project_qkv(GemmArgs args, const RopeHook& hook) const {
    args.bias = bqkv.empty() ? nullptr : bqkv.data();
    const KernelTable& table = kernels();
    if (rope.active()) {
      args.hook.fn = &RopeHook::run;
      args.hook.ctx = &hook;
      // Blocks of whole heads, on the tile grid: lcm(head_dim, NR) columns.
      const std::int64_t nr = table.gemm.nr, hd = spec.head_dim;
      args.hook.col_align = hd / gcd(hd, nr) * nr;
    }
    gemm_packed(table, args, wqkv.packed().view);
  }
  void project_out(std::int64_t m, const float* ctx, float* y, bool whole_depth = false) const {
    GemmArgs args = gemm_args(m, 1.0f, ctx, spec.inner_dim(), 0.0f, y, spec.output_dim(),
                              bo.empty() ? nullptr : bo.data());
    args.whole_depth = whole_depth;
    gemm_packed(kernels(), args, wo.packed().view);
  }
};

FastAttention::FastAttention(const AttentionDesc& spec, const AttentionWeights& weights)
    : state_(std::make_unique<State>()) {
  State& st = *state_;
  st.spec = spec;
  const std::int64_t inner = spec.inner_dim(), kv_dim = spec.kv_dim(), d_in = spec.d_in;
  const auto q_block = static_cast<std::size_t>(inner * d_in);
  const auto kv_block = static_cast<std::size_t>(kv_dim * d_in);
  // Rows [0, inner) Wq, then kv_dim rows of Wk, then Wv: one [inner + 2 kv_dim, d_in]
  // nn.Linear-layout matrix.
  std::vector<float> wqkv(q_block + 2 * kv_block);
  std::copy(weights.wq.begin(), weights.wq.end(), wqkv.begin());
  std::copy(weights.wk.begin(), weights.wk.end(), wqkv.begin() + static_cast<std::ptrdiff_t>(q_block));
  std::copy(weights.wv.begin(), weights.wv.end(),
            wqkv.begin() + static_cast<std::ptrdiff_t>(q_block + kv_block));
  st.wqkv = PackedMatrix(wqkv.data(), d_in, Transpose::yes, d_in, spec.qkv_dim(), spec.weight_type);
  if (spec.qkv_bias) {
    st.bqkv.reserve(static_cast<std::size_t>(spec.qkv_dim()));
    st.bqkv.insert(st.bqkv.end(), weights.bq.begin(), weights.bq.end());
    st.bqkv.insert(st.bqkv.end(), weights.bk.begin(), weights.bk.end());
    st.bqkv.insert(st.bqkv.end(), weights.bv.begin(), weights.bv.end());
  }
  if (spec.out_proj) {
    st.wo = PackedMatrix(weights.wo.data(), inner, Transpose::yes, inner, spec.output_dim(),
                         spec.weight_type);
    st.bo = weights.bo;
  }
  if (spec.rope != Rope::none)
    st.rope = RopeTable(spec.rope, spec.head_dim, spec.rope_theta, spec.context_length);
}

FastAttention::~FastAttention() = default;

AttentionWeights FastAttention::stored_weights(const AttentionWeights& biases) const {
  const State& st = *state_;
  const std::int64_t inner = st.spec.inner_dim(), kv_dim = st.spec.kv_dim(), d_in = st.spec.d_in;
  const std::int64_t n = st.spec.qkv_dim(), out = st.spec.output_dim();
  AttentionWeights w;
  // op(B) = [Wq; Wk; Wv]ᵀ is [d_in, n]: element (c, r) is W(r, c).
  const std::vector<float> qkv = reference::stored_values(st.wqkv);
  w.wq.resize(static_cast<std::size_t>(inner * d_in));
  w.wk.resize(static_cast<std::size_t>(kv_dim * d_in));
  w.wv.resize(static_cast<std::size_t>(kv_dim * d_in));
  for (std::int64_t c = 0; c < d_in; ++c)
    for (std::int64_t r = 0; r < n; ++r) {
      std::vector<float>& dst = r < inner ? w.wq : (r < inner + kv_dim ? w.wk : w.wv);
      const std::int64_t row = r < inner ? r : (r - inner) % kv_dim;
      dst[static_cast<std::size_t>(row * d_in + c)] = qkv[static_cast<std::size_t>(c * n + r)];
    }
  if (st.spec.out_proj) {
    const std::vector<float> wo = reference::stored_values(st.wo);  // Woᵀ [inner, out]
    w.wo.resize(static_cast<std::size_t>(out * inner));
    for (std::int64_t c = 0; c < inner; ++c)
      for (std::int64_t r = 0; r < out; ++r)
        w.wo[static_cast<std::size_t>(r * inner + c)] = wo[static_cast<std::size_t>(c * out + r)];
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
  const std::int64_t inner = spec.inner_dim(), kv_dim = spec.kv_dim(), hd = spec.head_dim;
  const std::int64_t n3 = spec.qkv_dim();
  const std::int64_t m = batch * tokens;
  if (attn_weights != nullptr && spec.num_heads != 1)
    fail_arg(spec.module_name, ": attention weights are only available for a single head (",
             "num_heads is ", spec.num_heads, ")");

  float* qkv = forward_scratch(m * n3 + (spec.out_proj ? m * inner : 0));
  float* ctx = spec.out_proj ? qkv + m * n3 : y;  // without out_proj the context is the output
  const KernelTable& table = kernels();
  // table.gemm.nr is a whole number of panels, so whole tiles per head suffices.
  const bool head_major =
      attn_weights == nullptr && tokens >= kHeadMajorMinTokens && hd % table.gemm.nr == 0;
  RopeHook hook;  // a plain forward's token t sits at position t of its sequence
  hook.table = &st.rope;
  hook.head_dim = hd;
  hook.rotated = inner + kv_dim;
  hook.period = tokens;
  if (head_major) {
    for (std::int64_t b = 0; b < batch; ++b) {
      GemmArgs args;
      args.m = tokens;
      args.a = x + b * tokens * spec.d_in;
      args.lda = spec.d_in;
      args.c = qkv + b * tokens * n3;
      args.ldc = hd;
      args.c_group = hd;
      args.c_group_stride = tokens * hd;
      st.project_qkv(args, hook);
    }
  } else {
    st.project_qkv(gemm_args(m, 1.0f, x, spec.d_in, 0.0f, qkv, n3, nullptr), hook);
  }

  // Book: scores / sqrt(keys.shape[-1]), keys.shape[-1] being the width of one head.
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  if (attn_weights != nullptr) {
    attention_with_weights(qkv, qkv + inner, qkv + inner + kv_dim, n3, tokens * n3, batch, tokens,
                           hd, scale, spec.causal, dropout, attn_weights, ctx, inner,
                           tokens * inner);
  } else {
    FlashProblem p;
    p.batch = batch;
    p.heads = spec.num_heads;
    p.kv_group = spec.group();
    p.q_len = p.kv_len = tokens;
    p.head_dim = hd;
    p.q = qkv;
    p.q_batch_stride = p.k_batch_stride = p.v_batch_stride = tokens * n3;
    if (head_major) {  // [B][H + 2G][T][hd]
      p.k = qkv + inner * tokens;
      p.v = qkv + (inner + kv_dim) * tokens;
      p.q_head_stride = p.k_head_stride = p.v_head_stride = tokens * hd;
      p.q_row_stride = p.k_row_stride = p.v_row_stride = hd;
    } else {  // [B][T][inner + 2 kv_dim]
      p.k = qkv + inner;
      p.v = qkv + inner + kv_dim;
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
  if (spec.out_proj) st.project_out(m, ctx, y);
}

void FastAttention::forward_cached(const float* x, std::int64_t batch, std::int64_t tokens,
                                   float* y, const DropoutParams& dropout,
                                   const KVRing& cache) const {
  CachedSequence* seqs = sequence_scratch(batch);
  for (std::int64_t b = 0; b < batch; ++b) seqs[b] = CachedSequence{cache, b, tokens, b * tokens};
  forward_sequences(x, y, dropout, seqs, batch);
}

namespace {

/// FlashProblem fields of sequence s's cache as the attention reads it: its queries are `rows`
/// rows of the QKV scratch from `row` on; K/V are the ring's (b, *) heads.
FlashProblem cached_problem(const AttentionDesc& spec, const CachedSequence& s, const float* qkv,
                            float* ctx, const DropoutParams& dropout) {
  const KVRing& cache = s.cache;
  const std::int64_t inner = spec.inner_dim(), hd = spec.head_dim, n3 = spec.qkv_dim();
  const std::int64_t kv_heads = spec.kv_heads();
  FlashProblem p;
  p.batch = 1;
  p.heads = spec.num_heads;
  p.kv_group = spec.group();
  p.q_len = s.tokens;
  p.kv_len = cache.length + s.tokens;
  p.head_dim = hd;
  p.q = qkv + s.row * n3;
  p.q_batch_stride = s.tokens * n3;
  p.q_head_stride = hd;
  p.q_row_stride = n3;
  p.batch_index = s.b;
  if (cache.storage == DType::f32) {
    p.k = cache.k + cache.head_offset(s.b, 0);
    p.v = cache.v + cache.head_offset(s.b, 0);
  } else {
    p.kv_storage = weight_storage(cache.storage);
    p.kb = cache.kb + s.b * kv_heads * cache.capacity * cache.row_bytes;
    p.vb = cache.vb + s.b * kv_heads * cache.capacity * cache.row_bytes;
    p.kv_row_bytes = cache.row_bytes;
  }
  p.kv_ring = cache.capacity;
  p.kv_ring_start = cache.start;
  p.k_batch_stride = p.v_batch_stride = kv_heads * cache.capacity * hd;
  p.k_head_stride = p.v_head_stride = cache.capacity * hd;
  p.k_row_stride = p.v_row_stride = hd;
  p.out = ctx + s.row * inner;
  p.out_batch_stride = s.tokens * inner;
  p.out_head_stride = hd;
  p.out_row_stride = inner;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  p.causal = true;
  p.q_offset = cache.position;
  p.k_offset = cache.first_position();
  p.dropout = dropout;
  return p;
}

}  // namespace

void FastAttention::forward_sequences(const float* x, float* y, const DropoutParams& dropout,
                                      const CachedSequence* seqs, std::int64_t count) const {
  const State& st = *state_;
  const AttentionDesc& spec = st.spec;
  const std::int64_t inner = spec.inner_dim(), kv_dim = spec.kv_dim(), hd = spec.head_dim;
  const std::int64_t n3 = spec.qkv_dim(), kv_heads = spec.kv_heads();
  std::int64_t m = 0;
  for (std::int64_t i = 0; i < count; ++i) m = std::max(m, seqs[i].row + seqs[i].tokens);

  float* qkv = forward_scratch(m * n3 + (spec.out_proj ? m * inner : 0));
  float* ctx = spec.out_proj ? qkv + m * n3 : y;
  // One projection for every sequence's rows: the weights stream once for all of them (a
  // decode step of N sequences is the small-M GEMM with M = N), and the GEMM's arithmetic
  // per row does not depend on M, so a sequence gets the same bits in any batch.
  RopeHook hook;
  hook.table = &st.rope;
  hook.head_dim = hd;
  hook.rotated = inner + kv_dim;
  if (st.rope.active()) {
    std::int64_t* pos = position_scratch(m);
    for (std::int64_t i = 0; i < count; ++i)
      for (std::int64_t t = 0; t < seqs[i].tokens; ++t) pos[seqs[i].row + t] = seqs[i].cache.position + t;
    hook.row_positions = pos;
  }
  GemmArgs args = gemm_args(m, 1.0f, x, spec.d_in, 0.0f, qkv, n3, nullptr);
  args.whole_depth = true;
  st.project_qkv(args, hook);

  // Append the new keys and values: the cache is head-major so that the attention below reads
  // each head's keys as contiguous rows, whatever the projection's layout; a stored cache
  // encodes them into its type here, once (the reference encodes with the same definition).
  for (std::int64_t i = 0; i < count; ++i) {
    const CachedSequence& s = seqs[i];
    for (std::int64_t t = 0; t < s.tokens; ++t) {
      const float* src = qkv + (s.row + t) * n3;
      for (std::int64_t g = 0; g < kv_heads; ++g) {
        const std::int64_t slot = s.cache.length + t;
        kv_encode_row(src + inner + g * hd, hd, s.cache.storage, s.cache.k_bytes(s.b, g, slot));
        kv_encode_row(src + inner + kv_dim + g * hd, hd, s.cache.storage,
                      s.cache.v_bytes(s.b, g, slot));
      }
    }
  }

  // A decode step (one or two queries per head) is a pass over the cache: the head_dim-wise
  // kernel keeps it memory-bound, where the query-vectorised flash kernel would idle its lanes.
  // Every sequence's decode runs in one parallel loop over (sequence, K/V head).
  FlashProblem* problems = problem_scratch(count);
  std::int64_t decodes = 0;
  for (std::int64_t i = 0; i < count; ++i)
    if (seqs[i].tokens <= 2) problems[decodes++] = cached_problem(spec, seqs[i], qkv, ctx, dropout);
  if (decodes > 0) decode_attention(problems, decodes);
  for (std::int64_t i = 0; i < count; ++i) {
    if (seqs[i].tokens <= 2) continue;
    FlashProblem p = cached_problem(spec, seqs[i], qkv, ctx, dropout);
    if (p.kv_storage == WeightStorage::f32) {
      flash_attention(p);
      continue;
    }
    // Flash attention over a stored cache: the held rows of every K/V head, oldest first,
    // dequantized once per call into a per-thread f32 copy (not kept: the next call reuses
    // it), which the flash kernels then read as a plain, unwrapped K/V.
    const KVRing& cache = seqs[i].cache;
    const std::int64_t b = seqs[i].b, kv = p.kv_len;
    float* kf = stored_kv_scratch(2 * kv_heads * kv * hd);
    float* vf = kf + kv_heads * kv * hd;
    const KvDequantRowsFn dequant = kernels().decode.kv_dequant[static_cast<int>(p.kv_storage)];
    parallel_for_blocks(kv_heads, [&](std::int64_t g) {
      float* kd = kf + g * kv * hd;
      float* vd = vf + g * kv * hd;
      // Logical slots [0, kv) sit at physical [start, capacity) then [0, ...): two runs.
      const std::int64_t first_run = std::min(kv, cache.capacity - cache.start);
      dequant(cache.k_bytes(b, g, 0), cache.row_bytes, first_run, hd, kd);
      dequant(cache.v_bytes(b, g, 0), cache.row_bytes, first_run, hd, vd);
      if (kv > first_run) {
        dequant(cache.k_bytes(b, g, first_run), cache.row_bytes, kv - first_run, hd,
                kd + first_run * hd);
        dequant(cache.v_bytes(b, g, first_run), cache.row_bytes, kv - first_run, hd,
                vd + first_run * hd);
      }
    });
    p.k = kf;
    p.v = vf;
    p.kv_ring = 0;
    p.kv_ring_start = 0;
    p.kv_storage = WeightStorage::f32;
    p.k_batch_stride = p.v_batch_stride = kv_heads * kv * hd;
    p.k_head_stride = p.v_head_stride = kv * hd;
    flash_attention(p);
  }

  if (spec.out_proj) st.project_out(m, ctx, y, /*whole_depth=*/true);
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
