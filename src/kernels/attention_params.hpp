// src/kernels/attention_params.hpp — the calling convention of the flash-attention and softmax
// kernels: argument structs and pointer types. Plain declarations only: this header is included
// by baseline and per-ISA code alike.
//
// The flash kernels are "query-vectorised": a SIMD register holds consecutive *queries*, so the
// online-softmax statistics (running max m, running sum l, rescale factor alpha) of NR queries
// are plain vertical vector operations, never horizontal reductions. To get there the query
// block is packed once, transposed and pre-scaled ([head_dim][NR] panels); K and V are read in
// place, row by row (each row is head_dim contiguous floats at any row stride), and the output
// accumulator is kept transposed (O^T, [head_dim][queries]) until the block is finished.
#pragma once

#include <cstdint>

namespace simdattn::detail {

/// Tile of the flash kernels of one ISA. query_tile (NR) queries share a vector group: the
/// packed-query panel width and the granularity at which a query block is padded; key_tile (MR)
/// keys (or head-dim rows) form one register-blocked micro-tile.
struct FlashTileShape {
  std::int64_t query_tile = 0;  ///< NR
  std::int64_t key_tile = 0;    ///< MR
};

/// Packs rows [0, rows) of a query block into panels of NR queries: panel p holds
/// scale * q[(p*NR + j) * ldq + d] at qt[p * head_dim * NR + d * NR + j]; queries past `rows`
/// are zero. The softmax scale is folded in here so that scores come out scaled.
struct FlashPackArgs {
  const float* q = nullptr;
  std::int64_t ldq = 0;
  std::int64_t rows = 0;
  std::int64_t head_dim = 0;
  float scale = 1.0f;
  float* qt = nullptr;  ///< ceil(rows / NR) * head_dim * NR floats
};

/// Rows the kernel should request into the cache while it computes (the next K/V block, the
/// next query block): `rows` rows of `row_floats` floats, `stride` floats apart. The rows are
/// pages apart, where hardware prefetchers do not follow, and issuing them all at once would
/// stall on full miss buffers, so the block kernel spreads them over its panels.
struct FlashPrefetch {
  const float* base = nullptr;
  std::int64_t rows = 0;
  std::int64_t stride = 0;
  std::int64_t row_floats = 0;
};
inline constexpr int kFlashPrefetchSlots = 3;

/// One (query block, key block) step of the online softmax. State, per query column of the
/// block (stride ld_state = padded block width): m (running max, -inf initially), l (running
/// sum of un-dropped probabilities, 0 initially) and ot (O^T [head_dim][ld_state], 0 initially).
struct FlashBlockArgs {
  const float* qt = nullptr;      ///< packed queries (FlashPackArgs::qt)
  std::int64_t q_rows = 0;        ///< valid queries in the block
  std::int64_t q_pos = 0;         ///< absolute position of the block's first query
  const float* k = nullptr;       ///< first key row of the key block
  std::int64_t ldk = 0;
  const float* v = nullptr;       ///< first value row of the key block
  std::int64_t ldv = 0;
  std::int64_t k_rows = 0;        ///< keys in the block
  std::int64_t k_pos = 0;         ///< absolute position of the block's first key
  std::int64_t head_dim = 0;
  bool causal = false;            ///< mask key position > query position
  /// Inverted-dropout multipliers (0 or 1/(1-p)) for [k_rows][ld_drop], query columns; null
  /// when dropout is off. Filled by the driver: the mask hash is baseline code (dropout.hpp).
  const float* drop = nullptr;
  std::int64_t ld_drop = 0;
  float* s = nullptr;             ///< scratch, k_rows * NR floats
  float* m = nullptr;
  float* l = nullptr;
  float* ot = nullptr;
  std::int64_t ld_state = 0;      ///< padded block width (multiple of NR)
  FlashPrefetch prefetch[kFlashPrefetchSlots];  ///< optional hints (base == nullptr: none)
};

/// Writes out[i * ldo + d] = ot[d][i] / l[i] for i < rows, d < head_dim; a row with l == 0
/// (nothing to attend to) becomes zeros.
struct FlashFinishArgs {
  const float* ot = nullptr;
  const float* l = nullptr;
  std::int64_t ld_state = 0;
  std::int64_t rows = 0;
  std::int64_t head_dim = 0;
  float* out = nullptr;
  std::int64_t ldo = 0;
};

using FlashPackFn = void (*)(const FlashPackArgs& args);
using FlashBlockFn = void (*)(const FlashBlockArgs& args);
using FlashFinishFn = void (*)(const FlashFinishArgs& args);

/// The decode kernel (src/kernels/attention_decode.hpp): softmax(scale q·K[0..keys)ᵀ) ·
/// V[0..keys) for ONE query. Key row j is at k + j * kv_stride for j < split, and at k_wrap + (j - split) * kv_stride after (a KV cache's ring wraps
/// around; likewise v). keep (nullable) multiplies each normalised weight (inverted dropout: 0
/// or 1/(1-p)). As the reference: a NaN score makes the row NaN; an all -inf row weights
/// nothing.
struct DecodeRowArgs {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const float* k_wrap = nullptr;
  const float* v_wrap = nullptr;
  std::int64_t split = 0;  ///< keys before the wrap (== keys when there is none)
  std::int64_t kv_stride = 0;
  std::int64_t keys = 0;  ///< >= 1
  std::int64_t head_dim = 0;
  float scale = 1.0f;
  const float* keep = nullptr;
  float* scores = nullptr;  ///< scratch of >= keys floats
  float* out = nullptr;     ///< head_dim floats
  /// A cache stored in another type (DecodeRowStoredFn only): row j at kb + j * row_bytes
  /// before the split and kb_wrap + (j - split) * row_bytes after; likewise v. k, v and
  /// kv_stride are unused then.
  const unsigned char* kb = nullptr;
  const unsigned char* vb = nullptr;
  const unsigned char* kb_wrap = nullptr;
  const unsigned char* vb_wrap = nullptr;
  std::int64_t row_bytes = 0;
};
using DecodeRowFn = void (*)(const DecodeRowArgs&);
/// The same over a stored cache: each K and V vector is converted in registers to the exact
/// decoded values and used as the f32 kernel uses its rows, so the bits are those of the f32
/// kernel on the decoded cache.
using DecodeRowStoredFn = void (*)(const DecodeRowArgs&);

/// KV rows (head_dim values each) of a stored cache decoded into f32 rows, `count` rows from
/// src (row_bytes apart) to dst (head_dim apart).
using KvDequantRowsFn = void (*)(const unsigned char* src, std::int64_t row_bytes,
                                 std::int64_t count, std::int64_t head_dim, float* dst);

}  // namespace simdattn::detail
