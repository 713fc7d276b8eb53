// src/reference/softmax_reference.cpp — the public reference softmaxes (simdattn/reference.hpp):
// the book's naive and stable row softmaxes and the two causal forms of §3.5.1, in double.
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "common/validate.hpp"
#include "simdattn/reference.hpp"

namespace simdattn::reference {
namespace {

void check_rows(const char* who, const float* x, std::int64_t rows, std::int64_t cols,
                std::int64_t ld) {
  detail::require_not_null(who, "scores", x);
  detail::require_positive(who, "rows", rows);
  detail::require_positive(who, "cols", cols);
  if (ld < cols) detail::fail_arg(who, ": ld (", ld, ") must be >= cols (", cols, ")");
}

void check_causal(const char* who, const float* x, std::int64_t rows, std::int64_t cols,
                  std::int64_t ld, std::int64_t offset) {
  check_rows(who, x, rows, cols, ld);
  if (offset < 0) detail::fail_arg(who, ": offset (", offset, ") must be >= 0");
}

/// Max-subtracted softmax of one row in double: an all -inf row becomes zeros, a NaN anywhere
/// makes the row NaN (what torch.softmax gives).
void softmax_stable(std::vector<double>& row) {
  const double inf = std::numeric_limits<double>::infinity();
  double max = -inf;
  bool has_nan = false;
  for (double s : row) {
    if (std::isnan(s)) has_nan = true;
    if (s > max) max = s;
  }
  if (has_nan) {
    for (double& s : row) s = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  if (max == -inf) {
    for (double& s : row) s = 0.0;
    return;
  }
  double sum = 0.0;
  for (double& s : row) {
    s = std::exp(s - max);
    sum += s;
  }
  for (double& s : row) s /= sum;
}

std::vector<double> load_row(const float* row, std::int64_t cols) {
  return std::vector<double>(row, row + cols);
}

void store_row(const std::vector<double>& values, float* row) {
  for (std::size_t j = 0; j < values.size(); ++j) row[j] = static_cast<float>(values[j]);
}

}  // namespace

void softmax_naive_rows(float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  check_rows("reference::softmax_naive_rows", x, rows, cols, ld);
  for (std::int64_t i = 0; i < rows; ++i) {
    float* row = x + i * ld;
    // torch.exp(x) / torch.exp(x).sum(): exponentials in float, so a score above ~88.7 becomes
    // inf and the row turns into NaN (inf / inf) and zeros, as in the book.
    std::vector<double> e(static_cast<std::size_t>(cols));
    double sum = 0.0;
    for (std::int64_t j = 0; j < cols; ++j) {
      e[static_cast<std::size_t>(j)] = static_cast<double>(std::exp(row[j]));
      sum += e[static_cast<std::size_t>(j)];
    }
    for (double& v : e) v /= sum;
    store_row(e, row);
  }
}

void softmax_stable_rows(float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  check_rows("reference::softmax_stable_rows", x, rows, cols, ld);
  for (std::int64_t i = 0; i < rows; ++i) {
    std::vector<double> row = load_row(x + i * ld, cols);
    softmax_stable(row);
    store_row(row, x + i * ld);
  }
}

void causal_softmax(float* scores, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                    float scale, std::int64_t offset, bool causal) {
  check_causal("reference::causal_softmax", scores, rows, cols, ld, offset);
  const double inf = std::numeric_limits<double>::infinity();
  for (std::int64_t i = 0; i < rows; ++i) {
    std::vector<double> row = load_row(scores + i * ld, cols);
    for (std::int64_t j = 0; j < cols; ++j) {
      double& s = row[static_cast<std::size_t>(j)];
      // masked_fill_(mask, -inf) on the scaled scores; row i is the query at offset + i.
      s = (causal && j > offset + i) ? -inf : static_cast<double>(scale) * s;
    }
    softmax_stable(row);
    store_row(row, scores + i * ld);
  }
}

void causal_softmax_renormalized(float* scores, std::int64_t rows, std::int64_t cols,
                                 std::int64_t ld, float scale, std::int64_t offset) {
  check_causal("reference::causal_softmax_renormalized", scores, rows, cols, ld, offset);
  for (std::int64_t i = 0; i < rows; ++i) {
    std::vector<double> row = load_row(scores + i * ld, cols);
    for (double& s : row) s *= static_cast<double>(scale);
    softmax_stable(row);  // softmax over every key, future ones included
    double sum = 0.0;
    for (std::int64_t j = 0; j < cols; ++j) {
      double& w = row[static_cast<std::size_t>(j)];
      if (j > offset + i) w = 0.0;  // masked_simple = attn_weights * mask_simple
      sum += w;
    }
    // masked_simple / row_sums; a row with nothing left (all -inf) stays zeros, not 0/0.
    if (sum > 0.0)
      for (double& w : row) w /= sum;
    store_row(row, scores + i * ld);
  }
}

}  // namespace simdattn::reference
