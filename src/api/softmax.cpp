// src/api/softmax.cpp — simdattn::causal_softmax: argument checks, then the fast driver.
#include "simdattn/softmax.hpp"

#include "common/validate.hpp"
#include "drivers/softmax.hpp"

namespace simdattn {

void causal_softmax(float* scores, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                    float scale, std::int64_t offset, bool causal) {
  const char* who = "causal_softmax";
  detail::require_not_null(who, "scores", scores);
  detail::require_positive(who, "rows", rows);
  detail::require_positive(who, "cols", cols);
  if (ld < cols) detail::fail_arg(who, ": ld (", ld, ") must be >= cols (", cols, ")");
  if (offset < 0) detail::fail_arg(who, ": offset (", offset, ") must be >= 0");
  detail::checked_mul(who, "rows * ld", rows, ld);
  detail::causal_softmax_fast(scores, rows, cols, ld, scale, offset, causal);
}

}  // namespace simdattn
