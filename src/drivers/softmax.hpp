// src/drivers/softmax.hpp — the fused causal softmax on the dispatched kernel, rows split over
// the library's threads.
#pragma once

#include <cstdint>

namespace simdattn::detail {

/// simdattn::causal_softmax without the argument checks (already done by the caller).
void causal_softmax_fast(float* scores, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                         float scale, std::int64_t offset, bool causal);

}  // namespace simdattn::detail
