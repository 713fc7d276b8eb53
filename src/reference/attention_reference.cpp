// src/reference/attention_reference.cpp — the oracle forward of every chapter-3 module and of
// the weightless self-attention, written as the book writes it: plain loops, one (batch, head)
// at a time, every sum in double, rounding to float only when writing an output.
//
// Why double everywhere: the fast path is checked against this code with tolerances derived
// from float rounding, so the oracle's own error must be negligible next to it. Why no
// cleverness: a reader must be able to check it line by line against §3.3-§3.6.
#include "reference/attention_reference.hpp"

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "common/rope.hpp"

namespace simdattn::detail {
namespace {

using Matrix = std::vector<double>;  // row-major

std::uint64_t u64(std::int64_t v) { return static_cast<std::uint64_t>(v); }

std::size_t idx(std::int64_t row, std::int64_t cols, std::int64_t col) {
  return static_cast<std::size_t>(row * cols + col);
}

/// out[t, o] = sum_k x[t, k] * w[o, k] + bias[o]: nn.Linear with w [out, in].
Matrix linear(const float* x, std::int64_t tokens, std::int64_t in, const std::vector<float>& w,
              const std::vector<float>& bias, std::int64_t out) {
  Matrix y(static_cast<std::size_t>(tokens * out));
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t o = 0; o < out; ++o) {
      double acc = bias.empty() ? 0.0 : static_cast<double>(bias[static_cast<std::size_t>(o)]);
      for (std::int64_t k = 0; k < in; ++k)
        acc += static_cast<double>(x[idx(t, in, k)]) * static_cast<double>(w[idx(o, in, k)]);
      y[idx(t, out, o)] = acc;
    }
  return y;
}

/// Max-subtracted softmax of one row. An all -inf row (nothing to attend to) becomes zeros
/// rather than 0/0; a NaN anywhere makes the whole row NaN, as torch.softmax does.
void softmax_stable(double* row, std::int64_t n) {
  const double inf = std::numeric_limits<double>::infinity();
  double max = -inf;
  bool has_nan = false;
  for (std::int64_t j = 0; j < n; ++j) {
    if (std::isnan(row[j])) has_nan = true;
    if (row[j] > max) max = row[j];
  }
  if (has_nan) {
    for (std::int64_t j = 0; j < n; ++j) row[j] = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  if (max == -inf) {
    for (std::int64_t j = 0; j < n; ++j) row[j] = 0.0;
    return;
  }
  double sum = 0.0;
  for (std::int64_t j = 0; j < n; ++j) {
    row[j] = std::exp(row[j] - max);
    sum += row[j];
  }
  for (std::int64_t j = 0; j < n; ++j) row[j] /= sum;
}

/// The book's softmax_naive, exp(x) / sum(exp(x)), with the exponentials taken in float like
/// torch.exp on a float32 tensor: a score above ~88.7 gives inf, and the row then holds NaN
/// (inf / inf) and zeros (x / inf), exactly the failure §3.3.1 warns about.
void softmax_naive(double* row, std::int64_t n) {
  double sum = 0.0;
  for (std::int64_t j = 0; j < n; ++j) {
    row[j] = static_cast<double>(std::exp(static_cast<float>(row[j])));
    sum += row[j];
  }
  for (std::int64_t j = 0; j < n; ++j) row[j] /= sum;
}

}  // namespace

void attention_forward_reference(const AttentionDesc& spec, const AttentionWeights& weights,
                                 const float* x, std::int64_t batch, std::int64_t tokens, float* y,
                                 const DropoutParams& dropout, float* attn_weights) {
  const std::int64_t d_in = spec.d_in, hd = spec.head_dim, inner = spec.inner_dim();
  const std::int64_t kv_dim = spec.kv_dim(), group = spec.group();
  const std::int64_t out_dim = spec.output_dim();
  const double inf = std::numeric_limits<double>::infinity();
  // Book: attn_scores / keys.shape[-1]**0.5, with keys.shape[-1] the width of one head.
  const double sqrt_dk = std::sqrt(static_cast<double>(hd));

  for (std::int64_t b = 0; b < batch; ++b) {
    const float* xb = x + b * tokens * d_in;
    // queries = x @ W_query.T (+ b), and so on: q [T, inner], head h in columns h*hd ..;
    // k and v [T, kv_dim], one K/V head per group of query heads.
    Matrix q = linear(xb, tokens, d_in, weights.wq, weights.bq, inner);
    Matrix k = linear(xb, tokens, d_in, weights.wk, weights.bk, kv_dim);
    const Matrix v = linear(xb, tokens, d_in, weights.wv, weights.bv, kv_dim);
    // Rotary embedding of every query and key head at its token's position.
    for (std::int64_t t = 0; t < tokens; ++t) {
      for (std::int64_t h = 0; h < spec.num_heads; ++h)
        rope_rotate_exact(&q[idx(t, inner, h * hd)], hd, spec.rope, spec.rope_theta, t);
      for (std::int64_t g = 0; g < spec.kv_heads(); ++g)
        rope_rotate_exact(&k[idx(t, kv_dim, g * hd)], hd, spec.rope, spec.rope_theta, t);
    }
    Matrix context(static_cast<std::size_t>(tokens * inner), 0.0);  // heads side by side

    for (std::int64_t h = 0; h < spec.num_heads; ++h) {
      const std::int64_t c0 = h * hd;              // first column of query head h
      const std::int64_t kv0 = (h / group) * hd;   // first column of its K/V head
      std::vector<double> w(static_cast<std::size_t>(tokens));
      for (std::int64_t i = 0; i < tokens; ++i) {
        // attn_scores[i, j] = q_i · k_j, masked above the diagonal, scaled.
        for (std::int64_t j = 0; j < tokens; ++j) {
          double s = 0.0;
          for (std::int64_t c = 0; c < hd; ++c)
            s += q[idx(i, inner, c0 + c)] * k[idx(j, kv_dim, kv0 + c)];
          w[static_cast<std::size_t>(j)] = (spec.causal && j > i) ? -inf : s / sqrt_dk;
        }
        softmax_stable(w.data(), tokens);
        // Inverted dropout on the weights; the mask is indexed by absolute positions.
        for (std::int64_t j = 0; j < tokens; ++j) {
          double& wij = w[static_cast<std::size_t>(j)];
          if (dropout.active()) {
            const bool keep = dropout_keep(dropout, u64(b), u64(h), u64(i), u64(j));
            wij *= keep ? dropout.keep_scale() : 0.0;  // torch: NaN * 0 stays NaN
          }
          if (attn_weights != nullptr)
            attn_weights[(b * tokens + i) * tokens + j] = static_cast<float>(wij);
        }
        // context_vec[i] = sum_j attn_weights[i, j] * v_j
        for (std::int64_t c = 0; c < hd; ++c) {
          double acc = 0.0;
          for (std::int64_t j = 0; j < tokens; ++j)
            acc += w[static_cast<std::size_t>(j)] * v[idx(j, kv_dim, kv0 + c)];
          context[idx(i, inner, c0 + c)] = acc;
        }
      }
    }

    // out_proj in double, straight from the double context.
    float* yb = y + b * tokens * out_dim;
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t o = 0; o < out_dim; ++o) {
        double acc;
        if (spec.out_proj) {
          acc = weights.bo.empty() ? 0.0 : static_cast<double>(weights.bo[static_cast<std::size_t>(o)]);
          for (std::int64_t c = 0; c < inner; ++c)
            acc += context[idx(t, inner, c)] * static_cast<double>(weights.wo[idx(o, inner, c)]);
        } else {
          acc = context[idx(t, inner, o)];
        }
        yb[idx(t, out_dim, o)] = static_cast<float>(acc);
      }
  }
}

void simple_attention_reference(const float* x, std::int64_t batch, std::int64_t tokens,
                                std::int64_t dim, float* y, float* attn_weights,
                                bool naive_softmax) {
  for (std::int64_t b = 0; b < batch; ++b) {
    const float* xb = x + b * tokens * dim;
    float* yb = y + b * tokens * dim;
    std::vector<double> w(static_cast<std::size_t>(tokens));
    for (std::int64_t i = 0; i < tokens; ++i) {
      // attn_scores = inputs @ inputs.T (§3.3.1: no weights, no scaling, no mask)
      for (std::int64_t j = 0; j < tokens; ++j) {
        double s = 0.0;
        for (std::int64_t c = 0; c < dim; ++c)
          s += static_cast<double>(xb[idx(i, dim, c)]) * static_cast<double>(xb[idx(j, dim, c)]);
        w[static_cast<std::size_t>(j)] = s;
      }
      if (naive_softmax)
        softmax_naive(w.data(), tokens);
      else
        softmax_stable(w.data(), tokens);
      if (attn_weights != nullptr)
        for (std::int64_t j = 0; j < tokens; ++j)
          attn_weights[(b * tokens + i) * tokens + j] =
              static_cast<float>(w[static_cast<std::size_t>(j)]);
      // all_context_vecs = attn_weights @ inputs
      for (std::int64_t c = 0; c < dim; ++c) {
        double acc = 0.0;
        for (std::int64_t j = 0; j < tokens; ++j)
          acc += w[static_cast<std::size_t>(j)] * static_cast<double>(xb[idx(j, dim, c)]);
        yb[idx(i, dim, c)] = static_cast<float>(acc);
      }
    }
  }
}

}  // namespace simdattn::detail
