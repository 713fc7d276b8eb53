// src/drivers/attention_flash.cpp — blocking, workspace and threading of flash attention.
//
// Blocking (why these values, AVX2 numbers):
// - Query block = 8 panels of NR queries (192 on AVX2), 16 (384) for long sequences. The packed
//   Q^T block and the O^T accumulator are block x head_dim floats each (48 or 96 KiB at
//   hd = 64) and stay in L2 (512 KiB on Zen 3) for the whole key loop; all panels share each
//   K/V block fetch (and copy, below), which is what long sequences pay for: measured 51-61 vs
//   63-65 GFLOP/s per core at T = 4096 for 8 vs 16 panels. Capped so Q^T + O^T stay within
//   ~224 KiB at large head dims, and halved while there are fewer than two tasks per thread.
// - Key block = 128 keys: the per-panel score scratch (128 x 24 floats, 12 KiB) stays in L1
//   between the QK^T, softmax and P·V phases, and K/V blocks (2 x 32 KiB at hd = 64) stay in L2
//   while the panels of the query block stream them. Longer blocks amortise the O^T rescale
//   (one multiply per accumulator per block).
// - K/V block copy: the kernels walk K and V row by row, one row per inner-loop step of P·V. At
//   the modules' row stride (3 * inner floats, 9 KiB for GPT-2) every step touches a new 4 KiB
//   page and the L1 TLB (64 entries on Zen 3) thrashes: measured 36 vs 56 GFLOP/s per core. So
//   a block whose rows span more than 16 pages is first copied into contiguous rows (row-wise
//   memcpy: 3-8% of the attention time in profiles, where FastAttention's scratch also has
//   transparent huge pages; without them the misses it avoids cost far more); narrow strides
//   (a KV cache's [.., T, hd] rows) are read in place.
// - Prefetch: K/V rows of the next key block, and the first rows of the block the thread runs
//   next, are requested while the current block computes (spread over its panels).
// Work balance: a causal query block i needs i + 1 key blocks, so blocks i and n-1-i are paired
// into one task (n + 1 key blocks each); tasks are (batch, head, pair), statically partitioned
// so that each thread knows its next task (for the prefetch).
// Determinism: each output row is produced by exactly one task with a fixed reduction order, so
// the result is bitwise the same for any thread count and any scheduling.
#include "drivers/attention_flash.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "dispatch/kernel_table.hpp"
#include "drivers/parallel.hpp"
#include "drivers/scratch.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn::detail {
namespace {

constexpr std::int64_t kQueryPanels = 8;
constexpr std::int64_t kQueryPanelsLong = 16;
constexpr std::int64_t kLongSequence = 2048;
constexpr std::int64_t kQueryStateBytes = 224 * 1024;  ///< budget for Q^T + O^T
/// Copy K/V blocks whose rows span more than this many bytes (16 pages of 4 KiB).
constexpr std::int64_t kCopyBlockBytes = 16 * 4096;
constexpr std::int64_t kKeyBlock = 128;

std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

float* flash_scratch(std::int64_t n) {
  thread_local ScratchFloats scratch;
  return scratch.get(n);
}

struct Blocking {
  std::int64_t nr = 0, block_q = 0, block_k = 0, n_qblocks = 0;
};

/// A query block of one (batch, head).
struct BlockRef {
  std::int64_t b = -1, h = 0, qb = 0;
  bool valid() const { return b >= 0; }
};

/// Prefetch hints for the first reads of block `next`: its Q rows and its first K and V block.
void hints_for(const FlashProblem& p, const Blocking& bl, BlockRef next,
               FlashPrefetch (&out)[kFlashPrefetchSlots]) {
  const std::int64_t q0 = next.qb * bl.block_q;
  const std::int64_t rows = std::min(bl.block_q, p.q_len - q0);
  std::int64_t keys = p.kv_len;
  if (p.causal) keys = std::clamp<std::int64_t>(p.q_offset + q0 + rows - p.k_offset, 0, keys);
  keys = std::min(keys, bl.block_k);
  out[0] = {p.q + next.b * p.q_batch_stride + next.h * p.q_head_stride + q0 * p.q_row_stride,
            rows, p.q_row_stride, p.head_dim};
  std::int64_t first = 0;  // physical row of key 0 (a ring's start)
  if (p.kv_ring != 0) {
    first = p.kv_ring_start;
    keys = std::min(keys, p.kv_ring - first);
  }
  out[1] = {p.k + next.b * p.k_batch_stride + (next.h / p.kv_group) * p.k_head_stride + first * p.k_row_stride,
            keys, p.k_row_stride, p.head_dim};
  out[2] = {p.v + next.b * p.v_batch_stride + (next.h / p.kv_group) * p.v_head_stride + first * p.v_row_stride,
            keys, p.v_row_stride, p.head_dim};
}

/// One query block of (b, h): pack, then the key blocks up to the diagonal, then the output.
/// `next` is the block this thread computes next (if known): its first rows are prefetched
/// during the last key block, so no block starts on cold, page-scattered rows.
void run_query_block(const FlashProblem& p, const FlashKernels& fk, const Blocking& bl,
                     std::int64_t b, std::int64_t h, std::int64_t qb, BlockRef next) {
  const std::int64_t hd = p.head_dim, nr = bl.nr;
  const std::int64_t q0 = qb * bl.block_q;
  const std::int64_t rows = std::min(bl.block_q, p.q_len - q0);
  const std::int64_t ld = round_up(rows, nr);
  const bool dropout = p.dropout.active();

  // Workspace: O(block x head_dim) floats, 64-byte aligned pieces.
  const std::int64_t n_qt = round_up(ld * hd, 16), n_ot = n_qt;
  const std::int64_t n_s = round_up(bl.block_k * nr, 16), n_ml = round_up(ld, 16);
  const std::int64_t n_drop = dropout ? round_up(bl.block_k * ld, 16) : 0;
  const bool copy_k = bl.block_k * p.k_row_stride * 4 > kCopyBlockBytes && p.k_row_stride > hd;
  const bool copy_v = bl.block_k * p.v_row_stride * 4 > kCopyBlockBytes && p.v_row_stride > hd;
  const std::int64_t n_kv = round_up(bl.block_k * hd, 16);
  float* base = flash_scratch(n_qt + n_ot + n_s + 2 * n_ml + n_drop + (copy_k ? n_kv : 0) +
                              (copy_v ? n_kv : 0));
  float* qt = base;
  float* ot = qt + n_qt;
  float* s = ot + n_ot;
  float* m = s + n_s;
  float* l = m + n_ml;
  float* drop = l + n_ml;
  float* kcopy = drop + n_drop;
  float* vcopy = kcopy + (copy_k ? n_kv : 0);

  fk.pack({p.q + b * p.q_batch_stride + h * p.q_head_stride + q0 * p.q_row_stride,
           p.q_row_stride, rows, hd, p.scale, qt});
  std::fill(m, m + ld, -std::numeric_limits<float>::infinity());
  std::fill(l, l + ld, 0.0f);
  std::fill(ot, ot + ld * hd, 0.0f);

  const std::int64_t q_first = p.q_offset + q0, q_last = q_first + rows - 1;
  std::int64_t k_end = p.kv_len;  // keys [0, k_end) are visible to some query of the block
  if (p.causal) k_end = std::clamp<std::int64_t>(q_last - p.k_offset + 1, 0, p.kv_len);
  const float* kbase = p.k + b * p.k_batch_stride + (h / p.kv_group) * p.k_head_stride;
  const float* vbase = p.v + b * p.v_batch_stride + (h / p.kv_group) * p.v_head_stride;
  const float keep_scale = static_cast<float>(p.dropout.keep_scale());

  // Physical row of logical key j (a KV cache is a ring; see FlashProblem::kv_ring).
  auto row_of = [&](std::int64_t j) {
    if (p.kv_ring == 0) return j;
    const std::int64_t r = p.kv_ring_start + j;
    return r < p.kv_ring ? r : r - p.kv_ring;
  };
  // Rows from logical key j on that are contiguous in memory (up to n).
  auto run_of = [&](std::int64_t j, std::int64_t n) {
    return p.kv_ring == 0 ? n : std::min(n, p.kv_ring - row_of(j));
  };

  for (std::int64_t k0 = 0; k0 < k_end; k0 += bl.block_k) {
    const std::int64_t krows = std::min(bl.block_k, k_end - k0);
    FlashPrefetch prefetch[kFlashPrefetchSlots];
    if (k0 + bl.block_k < k_end) {  // the next K/V block streams in while this one computes
      const std::int64_t j = k0 + bl.block_k;
      const std::int64_t n = run_of(j, std::min(bl.block_k, k_end - j));
      prefetch[0] = {kbase + row_of(j) * p.k_row_stride, n, p.k_row_stride, hd};
      prefetch[1] = {vbase + row_of(j) * p.v_row_stride, n, p.v_row_stride, hd};
    } else if (next.valid()) {
      hints_for(p, bl, next, prefetch);
    }
    if (dropout) {
      // The mask hash is baseline integer code (common/dropout.hpp), so it is evaluated here
      // and handed to the kernel as multipliers: 0 (dropped) or 1/(1-p) (kept).
      for (std::int64_t k = 0; k < krows; ++k) {
        const std::int64_t kpos = p.k_offset + k0 + k;
        float* row = drop + k * ld;
        for (std::int64_t i = 0; i < ld; ++i) {
          const std::int64_t qpos = q_first + i;
          const bool kept = i < rows && !(p.causal && kpos > qpos) &&
                            dropout_keep(p.dropout, static_cast<std::uint64_t>(p.batch_index + b),
                                         static_cast<std::uint64_t>(h),
                                         static_cast<std::uint64_t>(qpos),
                                         static_cast<std::uint64_t>(kpos));
          row[i] = kept ? keep_scale : 0.0f;
        }
      }
    }
    // A block that wraps around the end of a ring is computed as two pieces: the online
    // softmax takes keys in any grouping.
    for (std::int64_t j0 = k0; j0 < k0 + krows;) {
      const std::int64_t n = run_of(j0, k0 + krows - j0);
      FlashBlockArgs a;
      if (j0 + n == k0 + krows)
        for (int i = 0; i < kFlashPrefetchSlots; ++i) a.prefetch[i] = prefetch[i];
      a.qt = qt;
      a.q_rows = rows;
      a.q_pos = q_first;
      a.k = kbase + row_of(j0) * p.k_row_stride;
      a.ldk = p.k_row_stride;
      a.v = vbase + row_of(j0) * p.v_row_stride;
      a.ldv = p.v_row_stride;
      if (copy_k) {
        for (std::int64_t r = 0; r < n; ++r)
          std::memcpy(kcopy + r * hd, a.k + r * a.ldk, static_cast<std::size_t>(hd) * sizeof(float));
        a.k = kcopy;
        a.ldk = hd;
      }
      if (copy_v) {
        for (std::int64_t r = 0; r < n; ++r)
          std::memcpy(vcopy + r * hd, a.v + r * a.ldv, static_cast<std::size_t>(hd) * sizeof(float));
        a.v = vcopy;
        a.ldv = hd;
      }
      a.k_rows = n;
      a.k_pos = p.k_offset + j0;
      a.head_dim = hd;
      a.causal = p.causal && a.k_pos + n - 1 > q_first;  // only blocks that cross the diagonal
      if (dropout) {
        a.drop = drop + (j0 - k0) * ld;
        a.ld_drop = ld;
      }
      a.s = s;
      a.m = m;
      a.l = l;
      a.ot = ot;
      a.ld_state = ld;
      fk.block(a);
      j0 += n;
    }
  }
  fk.finish({ot, l, ld, rows, hd,
             p.out + b * p.out_batch_stride + h * p.out_head_stride + q0 * p.out_row_stride,
             p.out_row_stride});
}

/// The book multiplies every weight with its value row, masked (zero) weights included, so a
/// non-finite V[j][c] turns column c NaN for queries that cannot see key j (0 * inf and
/// 0 * NaN are NaN). The kernel never lets a query read a key it cannot see; for plain
/// forwards (FlashProblem::propagate_masked_nonfinite) this restores the book's result. Cheap
/// in the common case: one look at the last query row (which sees every key it can) per head.
void propagate_masked_nonfinite(const FlashProblem& p) {
  assert(p.kv_ring == 0 && "plain forwards only");
  const std::int64_t hd = p.head_dim;
  for (std::int64_t b = 0; b < p.batch; ++b)
    for (std::int64_t h = 0; h < p.heads; ++h) {
      float* out = p.out + b * p.out_batch_stride + h * p.out_head_stride;
      const float* v = p.v + b * p.v_batch_stride + (h / p.kv_group) * p.v_head_stride;
      const std::int64_t last = p.q_len - 1;
      // Index of the last key the last query sees; keys after it are masked for everyone.
      const std::int64_t seen = std::min(p.q_offset + last - p.k_offset, p.kv_len - 1);
      bool suspect = false;
      for (std::int64_t c = 0; c < hd && !suspect; ++c)
        suspect = !std::isfinite(out[last * p.out_row_stride + c]);
      for (std::int64_t j = seen + 1; j < p.kv_len && !suspect; ++j)
        for (std::int64_t c = 0; c < hd && !suspect; ++c)
          suspect = !std::isfinite(v[j * p.v_row_stride + c]);
      if (!suspect) continue;
      for (std::int64_t c = 0; c < hd; ++c) {
        std::int64_t last_bad = -1;
        for (std::int64_t j = 0; j < p.kv_len; ++j)
          if (!std::isfinite(v[j * p.v_row_stride + c])) last_bad = j;
        // Query i sees keys up to q_offset + i - k_offset; it misses last_bad if that is less.
        for (std::int64_t i = 0; i < p.q_len; ++i)
          if (p.q_offset + i - p.k_offset < last_bad)
            out[i * p.out_row_stride + c] = std::numeric_limits<float>::quiet_NaN();
      }
    }
}

}  // namespace

void flash_attention(const FlashProblem& p) {
  assert(p.batch >= 1 && p.heads >= 1 && p.q_len >= 1 && p.kv_len >= 1 && p.head_dim >= 1);
  assert(p.q && p.k && p.v && p.out);
  const FlashKernels& fk = kernels().flash;
  Blocking bl;
  bl.nr = fk.tile.query_tile;
  bl.block_k = round_up(kKeyBlock, fk.tile.key_tile);
  const int threads = num_threads();
  std::int64_t panels = kQueryPanels;
  if (p.q_len >= kLongSequence && kQueryPanelsLong * bl.nr * p.head_dim * 8 <= kQueryStateBytes)
    panels = kQueryPanelsLong;
  auto count_tasks = [&](std::int64_t n) {
    const std::int64_t blocks = (p.q_len + n * bl.nr - 1) / (n * bl.nr);
    return p.batch * p.heads * ((blocks + 1) / 2);
  };
  while (panels > 2 && count_tasks(panels) < 2 * threads) panels /= 2;
  bl.block_q = panels * bl.nr;
  bl.n_qblocks = (p.q_len + bl.block_q - 1) / bl.block_q;
  const std::int64_t pairs = (bl.n_qblocks + 1) / 2;
  const std::int64_t tasks = p.batch * p.heads * pairs;

  // Task t = (b, h, pair): query blocks `pair` and its mirror n-1-pair.
  auto block_of = [&](std::int64_t t, int second) {
    const std::int64_t pair = t % pairs, bh = t / pairs;
    return BlockRef{bh / p.heads, bh % p.heads, second ? bl.n_qblocks - 1 - pair : pair};
  };
  auto has_second = [&](std::int64_t t) { return bl.n_qblocks - 1 - t % pairs != t % pairs; };
  // Runs tasks [t0, t1) in order; each block prefetches the next one's first rows.
  auto run_tasks = [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const BlockRef first = block_of(t, 0);
      const BlockRef after_task = t + 1 < t1 ? block_of(t + 1, 0) : BlockRef{};
      if (has_second(t)) {
        const BlockRef second = block_of(t, 1);
        run_query_block(p, fk, bl, first.b, first.h, first.qb, second);
        run_query_block(p, fk, bl, second.b, second.h, second.qb, after_task);
      } else {
        run_query_block(p, fk, bl, first.b, first.h, first.qb, after_task);
      }
    }
  };

  if (threads <= 1 || tasks == 1) {
    run_tasks(0, tasks);
  } else {
    // Static partition: each thread runs a contiguous run of near-equal tasks, so it knows the
    // task it computes next and can prefetch its rows (the rows are pages apart and would
    // otherwise arrive one miss at a time). Placement never changes the bits (top comment).
    library_arena(threads)->execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<std::int64_t>(0, tasks, 1),
          [&](const tbb::blocked_range<std::int64_t>& r) { run_tasks(r.begin(), r.end()); },
          tbb::static_partitioner());
    });
  }
  if (p.causal && p.propagate_masked_nonfinite) propagate_masked_nonfinite(p);
}

}  // namespace simdattn::detail
