// tests/unit/test_concurrency.cpp — the thread-safety contract: a constructed module's forward is
// const and may run on many threads at once (each call with its own output and KV cache), from
// plain std::threads or from inside the caller's own oneTBB tasks, without deadlock,
// oversubscription or a change in the bits.
#include <gtest/gtest.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "simdattn/simdattn.hpp"
#include "support/compare.hpp"

namespace {

simdattn::Tensor input(std::int64_t batch, std::int64_t tokens, std::int64_t d, int salt) {
  simdattn::Tensor x({batch, tokens, d});
  for (std::int64_t i = 0; i < x.numel(); ++i)
    x[i] = static_cast<float>(std::sin(0.013 * static_cast<double>(i * (salt + 3))));
  return x;
}

class ConcurrencyTest : public ::testing::Test {
 protected:
  static constexpr std::int64_t kD = 96, kHeads = 6, kTokens = 70;
  ConcurrencyTest() : mha_(kD, kD, 128, 0.2, kHeads, true) { mha_.init_random(11); }
  void TearDown() override { simdattn::set_num_threads(0); }
  simdattn::MultiHeadAttention mha_;
};

TEST_F(ConcurrencyTest, SixteenThreadsOnOneModuleMatchSerialRunsBitwise) {
  constexpr int kThreads = 16;
  std::vector<simdattn::Tensor> inputs, serial(kThreads), cached_serial(kThreads);
  for (int t = 0; t < kThreads; ++t) inputs.push_back(input(2, kTokens, kD, t));
  simdattn::ForwardOptions train;
  train.train = true;
  for (int t = 0; t < kThreads; ++t) {
    train.seed = static_cast<std::uint64_t>(t);
    serial[static_cast<std::size_t>(t)] = mha_.forward(inputs[static_cast<std::size_t>(t)], train);
    simdattn::KVCache cache(mha_, 2);
    cached_serial[static_cast<std::size_t>(t)] = mha_.forward(inputs[static_cast<std::size_t>(t)], cache);
  }

  std::vector<simdattn::Tensor> parallel(kThreads), cached(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> go{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      while (go.load() == 0) std::this_thread::yield();  // start together
      simdattn::ForwardOptions opt;
      opt.train = true;
      opt.seed = static_cast<std::uint64_t>(t);
      const auto i = static_cast<std::size_t>(t);
      parallel[i] = mha_.forward(inputs[i], opt);
      simdattn::KVCache cache(mha_, 2);  // each call its own cache
      cached[i] = mha_.forward(inputs[i], cache);
    });
  go = 1;
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    const auto i = static_cast<std::size_t>(t);
    EXPECT_TRUE(simdattn::test::bitwise_equal(serial[i].values(), parallel[i].values(),
                                              "forward on thread " + std::to_string(t)));
    EXPECT_TRUE(simdattn::test::bitwise_equal(cached_serial[i].values(), cached[i].values(),
                                              "cached forward on thread " + std::to_string(t)));
  }
}

TEST_F(ConcurrencyTest, CallsFromInsideCallersOneTbbTasksNeitherDeadlockNorChangeResults) {
  constexpr int kCalls = 12;
  std::vector<simdattn::Tensor> expected(kCalls), actual(kCalls);
  for (int t = 0; t < kCalls; ++t)
    expected[static_cast<std::size_t>(t)] = mha_.forward(input(1, kTokens, kD, t));
  // The caller's own arena, bigger than the machine, running our forward inside its tasks.
  tbb::task_arena caller(4);
  caller.execute([&] {
    tbb::parallel_for(0, kCalls, [&](int t) {
      actual[static_cast<std::size_t>(t)] = mha_.forward(input(1, kTokens, kD, t));
    });
  });
  for (int t = 0; t < kCalls; ++t)
    EXPECT_TRUE(simdattn::test::bitwise_equal(expected[static_cast<std::size_t>(t)].values(),
                                              actual[static_cast<std::size_t>(t)].values(),
                                              "nested call " + std::to_string(t)));
}

/// OS threads of this process now (Linux: /proc/self/status), or -1 where it cannot be read.
int process_threads() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  int n = -1;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "Threads: %d", &n) == 1) break;
  std::fclose(f);
  return n;
}

TEST_F(ConcurrencyTest, NestedCallsStayInOneTbbWorkerPool) {
  // Oversubscription would be the library starting threads of its own for each caller. Calls
  // from inside a caller's arena (4 slots, more than this machine has) run the library's arena
  // on oneTBB's one worker pool: the process never holds more OS threads than that pool (the
  // machine's concurrency, main thread included) plus gtest's own.
  const int before = process_threads();
  if (before < 0) GTEST_SKIP() << "/proc/self/status not readable";
  const int machine = tbb::info::default_concurrency();
  std::atomic<int> peak{0};
  tbb::task_arena caller(4);
  caller.execute([&] {
    tbb::parallel_for(0, 24, [&](int t) {
      const simdattn::Tensor y = mha_.forward(input(1, kTokens, kD, t));
      int now = process_threads(), seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      (void)y;
    });
  });
  EXPECT_LE(peak.load(), std::max(before, machine + 1))
      << "threads before " << before << ", machine " << machine;
}

TEST_F(ConcurrencyTest, ThreadLimitIsRespectedAndClamped) {
  const int machine = tbb::info::default_concurrency();
  simdattn::set_num_threads(1);
  EXPECT_EQ(simdattn::num_threads(), 1);
  const simdattn::Tensor one = mha_.forward(input(3, kTokens, kD, 5));
  simdattn::set_num_threads(machine + 7);
  EXPECT_EQ(simdattn::num_threads(), machine) << "thread count must be clamped to the machine";
  const simdattn::Tensor many = mha_.forward(input(3, kTokens, kD, 5));
  EXPECT_TRUE(simdattn::test::bitwise_equal(one.values(), many.values(), "1 vs all threads"));
  EXPECT_THROW(simdattn::set_num_threads(-1), simdattn::Error);
  simdattn::set_num_threads(0);
  EXPECT_GE(simdattn::num_threads(), 1);
}

}  // namespace
