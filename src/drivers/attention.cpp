// src/drivers/attention.cpp — PLACEHOLDER until the fast attention driver lands.
#include "drivers/attention.hpp"

#include "simdattn/error.hpp"

namespace simdattn::detail {

struct FastAttention::State {};

FastAttention::FastAttention(const AttentionSpec&, const AttentionWeights&)
    : state_(std::make_unique<State>()) {}
FastAttention::~FastAttention() = default;

void FastAttention::forward(const float*, std::int64_t, std::int64_t, float*,
                            const DropoutParams&, float*) const {
  throw Error(ErrorCode::unsupported, "fast backend: not implemented yet");
}

void simple_attention_fast(const float*, std::int64_t, std::int64_t, std::int64_t, float*,
                           float*) {
  throw Error(ErrorCode::unsupported, "fast backend: not implemented yet");
}

}  // namespace simdattn::detail
