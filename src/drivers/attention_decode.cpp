// src/drivers/attention_decode.cpp — the decode driver: visible keys per query (the causal
// limit by absolute position), the dropout multipliers of the row (computed here at baseline:
// dropout.hpp is shared inline code that must stay out of the ISA translation units), and
// oneTBB over (batch, head).
#include "drivers/attention_decode.hpp"

#include <algorithm>
#include <cassert>
#include <vector>

#include "dispatch/kernel_table.hpp"
#include "drivers/parallel.hpp"
#include "drivers/scratch.hpp"

namespace simdattn::detail {
namespace {

/// Per-thread scratch (scores and dropout multipliers), grow-only.
float* decode_scratch(std::int64_t n) {
  thread_local ScratchFloats scratch;
  return scratch.get(n);
}

}  // namespace

namespace {

/// The queries of query head h of batch entry b of p.
void decode_head(const FlashProblem& p, DecodeRowFn kernel, std::int64_t b, std::int64_t h) {
  const bool stored = p.kv_storage != WeightStorage::f32;
  const float keep_scale = static_cast<float>(p.dropout.keep_scale());
  const std::int64_t kvh = h / p.kv_group, kv_heads = p.heads / p.kv_group;
  float* scratch = decode_scratch(2 * p.kv_len);
  for (std::int64_t t = 0; t < p.q_len; ++t) {
    // Keys at absolute positions k_offset + j <= q_offset + t are visible.
    const std::int64_t visible =
        p.causal ? std::clamp<std::int64_t>(p.q_offset + t - p.k_offset + 1, 0, p.kv_len)
                 : p.kv_len;
    float* out = p.out + b * p.out_batch_stride + h * p.out_head_stride + t * p.out_row_stride;
    if (visible == 0) {
      std::fill(out, out + p.head_dim, 0.0f);
      continue;
    }
    float* keep = nullptr;
    if (p.dropout.active()) {
      keep = scratch + p.kv_len;
      for (std::int64_t j = 0; j < visible; ++j)
        keep[j] = dropout_keep(p.dropout, static_cast<std::uint64_t>(p.batch_index + b),
                               static_cast<std::uint64_t>(h),
                               static_cast<std::uint64_t>(p.q_offset + t),
                               static_cast<std::uint64_t>(p.k_offset + j))
                      ? keep_scale
                      : 0.0f;
    }
    DecodeRowArgs args;
    args.q = p.q + b * p.q_batch_stride + h * p.q_head_stride + t * p.q_row_stride;
    if (!stored) {
      const float* k = p.k + b * p.k_batch_stride + kvh * p.k_head_stride;
      const float* v = p.v + b * p.v_batch_stride + kvh * p.v_head_stride;
      args.k = k + p.kv_ring_start * p.k_row_stride;
      args.v = v + p.kv_ring_start * p.v_row_stride;
      args.k_wrap = k;
      args.v_wrap = v;
    }
    args.split = p.kv_ring == 0 ? visible : std::min(visible, p.kv_ring - p.kv_ring_start);
    args.kv_stride = p.k_row_stride;
    if (stored) {  // [batch][K/V heads][kv_ring] rows of kv_row_bytes
      const std::int64_t head = (b * kv_heads + kvh) * p.kv_ring * p.kv_row_bytes;
      args.kb_wrap = p.kb + head;
      args.vb_wrap = p.vb + head;
      args.kb = args.kb_wrap + p.kv_ring_start * p.kv_row_bytes;
      args.vb = args.vb_wrap + p.kv_ring_start * p.kv_row_bytes;
      args.row_bytes = p.kv_row_bytes;
    }
    args.keys = visible;
    args.head_dim = p.head_dim;
    args.scale = p.scale;
    args.keep = keep;
    args.scores = scratch;
    args.out = out;
    kernel(args);
  }
}

}  // namespace

void decode_attention(const FlashProblem* problems, std::int64_t count) {
  // Task index -> (problem, batch entry, K/V head): a prefix count of each problem's tasks,
  // the problems taken longest cache first (with uneven lengths, the long ones start early and
  // the short ones fill the gaps).
  thread_local std::vector<std::int64_t> order;
  order.resize(static_cast<std::size_t>(count));
  std::int64_t tasks = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    const FlashProblem& p = problems[i];
    assert(p.k_row_stride == p.v_row_stride && "the cache holds K and V rows alike");
    assert(p.heads % p.kv_group == 0);
    tasks += p.batch * (p.heads / p.kv_group);
    order[static_cast<std::size_t>(i)] = i;
  }
  // (std::sort with ties broken by index: stable_sort would allocate on every decode step.)
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return problems[a].kv_len != problems[b].kv_len ? problems[a].kv_len > problems[b].kv_len
                                                    : a < b;
  });
  // The workers read the calling thread's list (their own thread_local copies are not it).
  const std::int64_t* const by_length = order.data();
  auto run = [&](std::int64_t task) {
    std::int64_t i = 0;
    for (std::int64_t k = 0;; ++k) {
      i = by_length[k];
      const std::int64_t n = problems[i].batch * (problems[i].heads / problems[i].kv_group);
      if (task < n) break;
      task -= n;
    }
    const FlashProblem& p = problems[i];
    const bool stored = p.kv_storage != WeightStorage::f32;
    const DecodeRowFn kernel =
        stored ? kernels().decode.stored[static_cast<int>(p.kv_storage)] : kernels().decode.row;
    assert(kernel != nullptr);
    const std::int64_t kv_heads = p.heads / p.kv_group;
    const std::int64_t b = task / kv_heads, kvh = task % kv_heads;
    for (std::int64_t g = 0; g < p.kv_group; ++g) decode_head(p, kernel, b, kvh * p.kv_group + g);
  };
  // One sequence: equal tasks, a static split. Several: uneven tasks, taken as threads free up.
  if (count == 1)
    parallel_for_blocks(tasks, run);
  else
    parallel_for_uneven_blocks(tasks, run);
}

}  // namespace simdattn::detail
