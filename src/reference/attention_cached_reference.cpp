// src/reference/attention_cached_reference.cpp — the book's causal attention for tokens that
// arrive one (or a few) at a time: plain loops in double over the cached keys and values.
#include "reference/attention_cached_reference.hpp"

#include "common/half.hpp"
#include "common/rope.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace simdattn::detail {
namespace {

std::size_t at(std::int64_t row, std::int64_t cols, std::int64_t col) {
  return static_cast<std::size_t>(row * cols + col);
}

}  // namespace

void attention_forward_reference_cached(const AttentionDesc& spec, const AttentionWeights& weights,
                                        const float* x, std::int64_t batch, std::int64_t tokens,
                                        float* y, const DropoutParams& dropout,
                                        const KVRing& cache) {
  const std::int64_t d_in = spec.d_in, hd = spec.head_dim, inner = spec.inner_dim();
  const std::int64_t kv_dim = spec.kv_dim(), group = spec.group();
  const std::int64_t held = cache.length;          // slots holding earlier tokens
  const std::int64_t first = cache.first_position();  // absolute position of slot 0
  const std::int64_t p0 = cache.position;          // absolute position of the first new token
  const double sqrt_dk = std::sqrt(static_cast<double>(hd));
  auto linear_row = [&](const float* xr, const std::vector<float>& w, const std::vector<float>& bias,
                        std::int64_t out, double* dst) {
    for (std::int64_t o = 0; o < out; ++o) {
      double acc = bias.empty() ? 0.0 : bias[static_cast<std::size_t>(o)];
      for (std::int64_t c = 0; c < d_in; ++c) acc += static_cast<double>(xr[c]) * w[at(o, d_in, c)];
      dst[o] = acc;
    }
  };

  for (std::int64_t b = 0; b < batch; ++b) {
    const float* xb = x + b * tokens * d_in;
    // Projections of the new tokens, nn.Linear style (w [out, d_in]), then the rotary
    // embedding at each token's absolute position (p0 + t) for queries and keys.
    std::vector<double> q(static_cast<std::size_t>(tokens * inner));
    std::vector<double> kd(static_cast<std::size_t>(tokens * kv_dim)),
        vd(static_cast<std::size_t>(tokens * kv_dim));
    for (std::int64_t t = 0; t < tokens; ++t) {
      linear_row(xb + t * d_in, weights.wq, weights.bq, inner, &q[at(t, inner, 0)]);
      linear_row(xb + t * d_in, weights.wk, weights.bk, kv_dim, &kd[at(t, kv_dim, 0)]);
      linear_row(xb + t * d_in, weights.wv, weights.bv, kv_dim, &vd[at(t, kv_dim, 0)]);
      for (std::int64_t h = 0; h < spec.num_heads; ++h)
        rope_rotate_exact(&q[at(t, inner, h * hd)], hd, spec.rope, spec.rope_theta, p0 + t);
      for (std::int64_t g = 0; g < spec.kv_heads(); ++g)
        rope_rotate_exact(&kd[at(t, kv_dim, g * hd)], hd, spec.rope, spec.rope_theta, p0 + t);
    }
    // The new K/V rows, rounded to float, then stored in the cache's type (kv_encode_row: a
    // stored cache holds them encoded, and every read below decodes what is stored).
    std::vector<float> k_new(kd.begin(), kd.end()), v_new(vd.begin(), vd.end());
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t g = 0; g < spec.kv_heads(); ++g) {
        kv_encode_row(&k_new[at(t, kv_dim, g * hd)], hd, cache.storage, cache.k_bytes(b, g, held + t));
        kv_encode_row(&v_new[at(t, kv_dim, g * hd)], hd, cache.storage, cache.v_bytes(b, g, held + t));
      }
    std::vector<float> row(static_cast<std::size_t>(hd));

    std::vector<double> context(static_cast<std::size_t>(tokens * inner), 0.0);
    for (std::int64_t h = 0; h < spec.num_heads; ++h)
      for (std::int64_t i = 0; i < tokens; ++i) {
        const std::int64_t g = h / group;  // the K/V head query head h reads
        // Query i sees slots 0 .. held + i: everything before it and itself, nothing later.
        const std::int64_t keys = held + i + 1;
        std::vector<double> w(static_cast<std::size_t>(keys));
        double max = -std::numeric_limits<double>::infinity();
        bool has_nan = false;
        for (std::int64_t s = 0; s < keys; ++s) {
          kv_decode_row(cache.k_bytes(b, g, s), hd, cache.storage, row.data());
          const float* k = row.data();
          double acc = 0.0;
          for (std::int64_t c = 0; c < hd; ++c) acc += q[at(i, inner, h * hd + c)] * k[c];
          w[static_cast<std::size_t>(s)] = acc / sqrt_dk;
          if (std::isnan(acc)) has_nan = true;
          if (w[static_cast<std::size_t>(s)] > max) max = w[static_cast<std::size_t>(s)];
        }
        double sum = 0.0;
        for (double& e : w) {
          e = has_nan ? std::numeric_limits<double>::quiet_NaN()
              : max == -std::numeric_limits<double>::infinity() ? 0.0
                                                                 : std::exp(e - max);
          sum += e;
        }
        for (std::int64_t s = 0; s < keys; ++s) {
          double& e = w[static_cast<std::size_t>(s)];
          if (sum > 0.0 || std::isnan(sum)) e /= sum;
          if (dropout.active())
            // A multiplier, as torch's dropout: a dropped NaN weight stays NaN (NaN * 0).
            e *= dropout_keep(dropout, static_cast<std::uint64_t>(b), static_cast<std::uint64_t>(h),
                              static_cast<std::uint64_t>(p0 + i),
                              static_cast<std::uint64_t>(first + s))
                     ? dropout.keep_scale()
                     : 0.0;
          kv_decode_row(cache.v_bytes(b, g, s), hd, cache.storage, row.data());
          const float* v = row.data();
          for (std::int64_t c = 0; c < hd; ++c) context[at(i, inner, h * hd + c)] += e * v[c];
        }
      }

    const std::int64_t out_dim = spec.output_dim();
    float* yb = y + b * tokens * out_dim;
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t o = 0; o < out_dim; ++o) {
        double acc = spec.out_proj ? 0.0 : context[at(t, inner, o)];
        if (spec.out_proj) {
          acc = weights.bo.empty() ? 0.0 : weights.bo[static_cast<std::size_t>(o)];
          for (std::int64_t c = 0; c < inner; ++c)
            acc += context[at(t, inner, c)] * weights.wo[at(o, inner, c)];
        }
        yb[at(t, out_dim, o)] = static_cast<float>(acc);
      }
  }
}

}  // namespace simdattn::detail
