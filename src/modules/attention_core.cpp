// src/modules/attention_core.cpp — the engine behind the five modules: owns the canonical
// weights and the fast path's packed copy of them, kept in step by set_weights().
#include "modules/attention_core.hpp"

#include <atomic>
#include <cstddef>
#include <utility>

#include "common/validate.hpp"
#include "drivers/attention.hpp"

namespace simdattn::detail {
namespace {

AttentionWeights zero_weights(const AttentionSpec& spec) {
  const auto inner = static_cast<std::size_t>(spec.inner_dim());
  const auto kv_dim = static_cast<std::size_t>(spec.kv_dim());
  const auto out = static_cast<std::size_t>(spec.output_dim());
  const auto d_in = static_cast<std::size_t>(spec.d_in);
  AttentionWeights w;
  w.wq.assign(inner * d_in, 0.0f);
  w.wk.assign(kv_dim * d_in, 0.0f);
  w.wv.assign(kv_dim * d_in, 0.0f);
  if (spec.qkv_bias) {
    w.bq.assign(inner, 0.0f);
    w.bk.assign(kv_dim, 0.0f);
    w.bv.assign(kv_dim, 0.0f);
  }
  if (spec.out_proj) {
    w.wo.assign(out * inner, 0.0f);
    if (spec.out_bias) w.bo.assign(out, 0.0f);
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

namespace {

// For stored weights only the biases stay here; the matrices live packed in their type.
AttentionWeights keep_biases(AttentionWeights w) {
  AttentionWeights out;
  out.bq = std::move(w.bq);
  out.bk = std::move(w.bk);
  out.bv = std::move(w.bv);
  out.bo = std::move(w.bo);
  return out;
}

}  // namespace

AttentionWeights AttentionCore::weights() const {
  if (spec_.weight_type == DType::f32) return weights_;
  return fast_->stored_weights(weights_);
}

const AttentionWeights& AttentionCore::weights(AttentionWeights& scratch) const {
  if (spec_.weight_type == DType::f32) return weights_;
  scratch = fast_->stored_weights(weights_);
  return scratch;
}

void AttentionCore::set_weights(AttentionWeights weights) {
  // Pack first: if packing throws, the module keeps its old weights and packed form together.
  auto fast = std::make_unique<FastAttention>(spec_, weights);
  weights_ = spec_.weight_type == DType::f32 ? std::move(weights) : keep_biases(std::move(weights));
  fast_ = std::move(fast);
}

void AttentionCore::set_weight_type(DType type) {
  if (dtype_block(type) != 1) {
    const std::int64_t block = dtype_block(type);
    if (spec_.d_in % block != 0)
      fail(ErrorCode::unsupported, spec_.module_name, ": ", dtype_name(type),
           " weights need d_in (", spec_.d_in, ") to be a multiple of ", block);
    if (spec_.out_proj && spec_.inner_dim() % block != 0)
      fail(ErrorCode::unsupported, spec_.module_name, ": ", dtype_name(type),
           " weights need out_proj's input width (", spec_.inner_dim(),
           ") to be a multiple of ", block);
  }
  AttentionSpec spec = spec_;
  spec.weight_type = type;
  AttentionWeights current = weights();
  auto fast = std::make_unique<FastAttention>(spec, current);
  spec_ = std::move(spec);
  weights_ = type == DType::f32 ? std::move(current) : keep_biases(std::move(current));
  fast_ = std::move(fast);
}

std::int64_t AttentionCore::weight_bytes() const noexcept { return fast_->weight_bytes(); }

}  // namespace simdattn::detail
