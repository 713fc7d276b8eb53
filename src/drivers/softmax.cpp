// src/drivers/softmax.cpp — the fused causal softmax over many rows: row chunks spread over the
// library's threads. Rows are independent, so any split gives the same bits.
#include "drivers/softmax.hpp"

#include "dispatch/kernel_table.hpp"
#include "drivers/parallel.hpp"

namespace simdattn::detail {

void causal_softmax_fast(float* scores, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                         float scale, std::int64_t offset, bool causal) {
  const CausalSoftmaxRowsFn kernel = kernels().softmax.rows;
  // ~64K elements per chunk: large enough to amortise a task (~microseconds), small enough
  // that a [T, T] matrix of a few hundred rows still spreads over the threads.
  constexpr std::int64_t kChunkElements = 1 << 16;
  std::int64_t chunk_rows = kChunkElements / cols;
  if (chunk_rows < 1) chunk_rows = 1;
  const std::int64_t chunks = (rows + chunk_rows - 1) / chunk_rows;
  parallel_for_blocks(chunks, [&](std::int64_t c) {
    const std::int64_t r0 = c * chunk_rows;
    const std::int64_t n = rows - r0 < chunk_rows ? rows - r0 : chunk_rows;
    kernel(scores + r0 * ld, n, cols, ld, scale, offset + r0, causal);
  });
}

}  // namespace simdattn::detail
