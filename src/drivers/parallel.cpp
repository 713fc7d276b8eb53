// src/drivers/parallel.cpp — owns the library's task_arena (see parallel.hpp).
#include "drivers/parallel.hpp"

#include <oneapi/tbb/info.h>

#include <mutex>

namespace simdattn::detail {

std::shared_ptr<tbb::task_arena> library_arena(int threads) {
  const int hw = tbb::info::default_concurrency();
  if (threads > hw) threads = hw;
  if (threads < 1) threads = 1;
  static std::mutex mutex;
  static std::shared_ptr<tbb::task_arena> arena;
  static int arena_threads = 0;
  std::lock_guard<std::mutex> lock(mutex);
  if (!arena || arena_threads != threads) {
    arena = std::make_shared<tbb::task_arena>(threads);  // the old one dies with its last user
    arena_threads = threads;
  }
  return arena;
}

}  // namespace simdattn::detail
