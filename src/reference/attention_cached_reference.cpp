// src/reference/attention_cached_reference.cpp — the book's causal attention for tokens that
// arrive one (or a few) at a time: plain loops in double over the cached keys and values.
#include "reference/attention_cached_reference.hpp"

#include "common/half.hpp"

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
  const std::int64_t held = cache.length;          // slots holding earlier tokens
  const std::int64_t first = cache.first_position();  // absolute position of slot 0
  const std::int64_t p0 = cache.position;          // absolute position of the first new token
  const double sqrt_dk = std::sqrt(static_cast<double>(hd));

  for (std::int64_t b = 0; b < batch; ++b) {
    const float* xb = x + b * tokens * d_in;
    // Projections of the new tokens, nn.Linear style (w [inner, d_in]).
    std::vector<double> q(static_cast<std::size_t>(tokens * inner));
    // The new K/V rows, rounded to float, then stored in the cache's type (kv_encode_row: a
    // stored cache holds them encoded, and every read below decodes what is stored).
    std::vector<float> k_new(static_cast<std::size_t>(tokens * inner)),
        v_new(static_cast<std::size_t>(tokens * inner));
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t o = 0; o < inner; ++o) {
        double aq = weights.bq.empty() ? 0.0 : weights.bq[static_cast<std::size_t>(o)];
        double ak = weights.bk.empty() ? 0.0 : weights.bk[static_cast<std::size_t>(o)];
        double av = weights.bv.empty() ? 0.0 : weights.bv[static_cast<std::size_t>(o)];
        for (std::int64_t c = 0; c < d_in; ++c) {
          const double xv = xb[at(t, d_in, c)];
          aq += xv * weights.wq[at(o, d_in, c)];
          ak += xv * weights.wk[at(o, d_in, c)];
          av += xv * weights.wv[at(o, d_in, c)];
        }
        q[at(t, inner, o)] = aq;
        k_new[at(t, inner, o)] = static_cast<float>(ak);
        v_new[at(t, inner, o)] = static_cast<float>(av);
      }
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t h = 0; h < spec.num_heads; ++h) {
        kv_encode_row(&k_new[at(t, inner, h * hd)], hd, cache.storage, cache.k_bytes(b, h, held + t));
        kv_encode_row(&v_new[at(t, inner, h * hd)], hd, cache.storage, cache.v_bytes(b, h, held + t));
      }
    std::vector<float> row(static_cast<std::size_t>(hd));

    std::vector<double> context(static_cast<std::size_t>(tokens * inner), 0.0);
    for (std::int64_t h = 0; h < spec.num_heads; ++h)
      for (std::int64_t i = 0; i < tokens; ++i) {
        // Query i sees slots 0 .. held + i: everything before it and itself, nothing later.
        const std::int64_t keys = held + i + 1;
        std::vector<double> w(static_cast<std::size_t>(keys));
        double max = -std::numeric_limits<double>::infinity();
        bool has_nan = false;
        for (std::int64_t s = 0; s < keys; ++s) {
          kv_decode_row(cache.k_bytes(b, h, s), hd, cache.storage, row.data());
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
          kv_decode_row(cache.v_bytes(b, h, s), hd, cache.storage, row.data());
          const float* v = row.data();
          for (std::int64_t c = 0; c < hd; ++c) context[at(i, inner, h * hd + c)] += e * v[c];
        }
      }

    const std::int64_t out_dim = spec.output_dim();
    float* yb = y + b * tokens * out_dim;
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t o = 0; o < out_dim; ++o) {
        double acc = context[at(t, inner, o)];
        if (spec.out_proj) {
          acc = weights.bo[static_cast<std::size_t>(o)];
          for (std::int64_t c = 0; c < inner; ++c)
            acc += context[at(t, inner, c)] * weights.wo[at(o, inner, c)];
        }
        yb[at(t, out_dim, o)] = static_cast<float>(acc);
      }
  }
}

}  // namespace simdattn::detail
