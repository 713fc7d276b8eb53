// src/modules/attention_core.cpp — the engine behind the five modules: owns the canonical
// weights and the fast path's packed copy of them, kept in step by set_weights().
#include "modules/attention_core.hpp"

#include <atomic>
#include <cstddef>
#include <utility>

#include "drivers/attention.hpp"

namespace simdattn::detail {
namespace {

AttentionWeights zero_weights(const AttentionSpec& spec) {
  const auto inner = static_cast<std::size_t>(spec.inner_dim());
  const auto d_in = static_cast<std::size_t>(spec.d_in);
  AttentionWeights w;
  w.wq.assign(inner * d_in, 0.0f);
  w.wk.assign(inner * d_in, 0.0f);
  w.wv.assign(inner * d_in, 0.0f);
  if (spec.qkv_bias) {
    w.bq.assign(inner, 0.0f);
    w.bk.assign(inner, 0.0f);
    w.bv.assign(inner, 0.0f);
  }
  if (spec.out_proj) {
    w.wo.assign(inner * inner, 0.0f);
    w.bo.assign(inner, 0.0f);
  }
  return w;
}

std::uint64_t next_core_id() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace

AttentionCore::AttentionCore(AttentionSpec spec)
    : id_(next_core_id()), spec_(std::move(spec)), weights_(zero_weights(spec_)) {
  fast_ = std::make_unique<FastAttention>(spec_, weights_);
}

AttentionCore::~AttentionCore() = default;

void AttentionCore::set_weights(AttentionWeights weights) {
  // Pack first: if packing throws, the module keeps its old weights and packed form together.
  auto fast = std::make_unique<FastAttention>(spec_, weights);
  weights_ = std::move(weights);
  fast_ = std::move(fast);
}

}  // namespace simdattn::detail
