// tests/unit/test_no_allocation.cpp — "a decode loop allocates nothing per step": once the
// per-thread workspaces have grown, forward_into through a KV cache makes no C++ heap
// allocation. Counted by replacing the global operator new of this test binary (every form that
// allocates: plain, array, aligned, nothrow); the count is only read around the steps.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "simdattn/attention.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/runtime.hpp"

namespace {
std::atomic<long> g_allocations{0};

void* counted(std::size_t n, std::size_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (n == 0) n = 1;
  void* p = align > alignof(std::max_align_t)
                ? std::aligned_alloc(align, (n + align - 1) / align * align)
                : std::malloc(n);
  return p;
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted(n, 0)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (void* p = counted(n, static_cast<std::size_t>(a))) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted(n, 0); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace simdattn {
namespace {

TEST(NoAllocation, DecodeStepsThroughForwardIntoAllocateNothing) {
  set_num_threads(1);  // oneTBB's own task storage is not ours to count
  const Isa saved = active_isa();
  for (Isa isa : usable_isas()) {
    set_isa(isa);
    for (bool sliding : {false, true}) {
      MultiHeadAttention m(64, 64, 256, 0.0, 4, true);
      m.init_random(5);
      KVCache cache(m, 1, sliding ? 40 : 0, sliding);
      Tensor prompt({1, 30, 64});
      for (std::int64_t i = 0; i < prompt.numel(); ++i) prompt[i] = 0.01f * static_cast<float>(i % 97);
      Tensor y, token({1, 1, 64});
      for (std::int64_t i = 0; i < 64; ++i) token[i] = 0.02f * static_cast<float>(i);
      m.forward_into(prompt, cache, y);
      m.forward_into(token, cache, y);  // the step's output and workspaces now exist
      m.forward_into(token, cache, y);
      const long before = g_allocations.load();
      for (int step = 0; step < 20; ++step) m.forward_into(token, cache, y);  // slides past 40
      EXPECT_EQ(g_allocations.load() - before, 0)
          << "isa " << isa_name(isa) << " sliding " << sliding;
    }
  }
  set_num_threads(0);
  set_isa(saved);
}

// A serving loop: N sequences, each with its own cache, one forward_batch per step, the step
// list and y kept by the caller. GQA and the rotary embedding included.
TEST(NoAllocation, BatchedDecodeStepsAllocateNothing) {
  set_num_threads(1);
  const Isa saved = active_isa();
  for (Isa isa : usable_isas()) {
    set_isa(isa);
    LlamaAttention m(64, 4, 2, 16, 256);
    m.init_random(7);
    std::vector<KVCache> caches;
    for (int i = 0; i < 5; ++i) caches.emplace_back(m, 1);
    std::vector<AttentionModule::SequenceStep> prefill, decode;
    std::int64_t rows = 0;
    for (int i = 0; i < 5; ++i) {
      prefill.push_back({&caches[static_cast<std::size_t>(i)], 3 + 7 * i});
      decode.push_back({&caches[static_cast<std::size_t>(i)], 1});
      rows += 3 + 7 * i;
    }
    Tensor prompt({rows, 64}), token({5, 64}), y;
    for (std::int64_t i = 0; i < prompt.numel(); ++i) prompt[i] = 0.01f * static_cast<float>(i % 89);
    for (std::int64_t i = 0; i < token.numel(); ++i) token[i] = 0.02f * static_cast<float>(i % 61);
    m.forward_batch(prompt, prefill, y);
    m.forward_batch(token, decode, y);  // the step's output and workspaces now exist
    m.forward_batch(token, decode, y);
    const long before = g_allocations.load();
    for (int step = 0; step < 20; ++step) m.forward_batch(token, decode, y);
    EXPECT_EQ(g_allocations.load() - before, 0) << "isa " << isa_name(isa);
  }
  set_num_threads(0);
  set_isa(saved);
}

}  // namespace
}  // namespace simdattn
