// src/drivers/parallel.hpp — the library's oneTBB arena and the one loop shape the drivers use:
// independent output blocks, statically partitioned. Threads never split a reduction, so
// results are bitwise identical for every thread count.
#pragma once

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include <cstdint>
#include <memory>

#include "simdattn/runtime.hpp"

namespace simdattn::detail {

/// An arena of exactly `threads` threads (clamped to tbb::info::default_concurrency()), shared
/// by all calls with the same count and re-created when the count changes. Holding the
/// shared_ptr keeps an arena alive across a concurrent change of num_threads().
std::shared_ptr<tbb::task_arena> library_arena(int threads);

/// Calls fn(i) for every i in [0, n) in the library's arena, inline with one thread or block.
template <class Partitioner, class Fn>
void parallel_for_partitioned(std::int64_t n, Fn&& fn) {
  if (n <= 0) return;
  const int threads = num_threads();
  if (threads <= 1 || n == 1) {
    for (std::int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  const std::shared_ptr<tbb::task_arena> arena = library_arena(threads);
  arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, n, 1),
        [&](const tbb::blocked_range<std::int64_t>& r) {
          for (std::int64_t i = r.begin(); i < r.end(); ++i) fn(i);
        },
        Partitioner());
  });
}

/// Calls fn(i) for every i in [0, n), spread over num_threads() threads of the library's arena
/// with a static partition (contiguous runs of blocks per thread, no stealing: deterministic
/// placement and good cache reuse for equal-sized blocks). Runs inline with one thread or one
/// block. fn must not throw.
template <class Fn>
void parallel_for_blocks(std::int64_t n, Fn&& fn) {
  parallel_for_partitioned<tbb::static_partitioner>(n, fn);
}

/// The same for blocks of very different cost (a batched decode's sequences of different
/// lengths): each thread takes the next block when it is done with one. Placement varies from
/// run to run; the results do not, as long as each block's output is its own.
template <class Fn>
void parallel_for_uneven_blocks(std::int64_t n, Fn&& fn) {
  parallel_for_partitioned<tbb::simple_partitioner>(n, fn);
}

}  // namespace simdattn::detail
