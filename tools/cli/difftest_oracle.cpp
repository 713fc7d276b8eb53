// tools/cli/difftest_oracle.cpp — the chapter's attention in double with a per-element error
// bound (difftest_oracle.hpp).
//
// The bound (why), with u = 2^-24 and every sum taken over the case's own values:
//   projections  |dq| <= (d_in + 2) u sum_i |w x_i| (+|b|)          a GEMM's float dot product
//   scores       |ds_j| <= scale (sum_c dq_c |k_c| + |q_c| dk_c + dq_c dk_c)
//                          + (hd + 2) u scale sum_c |q_c k_c|        its own dot product
//                          + u (m - s_j)                             the shifted exponent
//   softmax      a perturbation d_j of the scores moves p_j by a factor within exp(+-(d_j + D)),
//                D = log sum_k p_k exp(d_k) (the denominator's share); the kernel's own
//                exp (2 ulp), sums, normalisation and per-block rescales add (n + 12 + n/8) u
//   context      sum_j keep_j (dp_j |v_j| + p_j dv_j) + (n + 3) u sum_j p_j keep_j |v_j|
//   rotary       a' = a cos - b sin (b' alike) from float cos/sin (u each), two products and
//                a sum (u each): |da'| <= |da| + |db| + 4 u (|a| + |b|), for q and k
//   out_proj     sum_c |w_oc| (dctx_c + u |ctx_c|) + (inner + 2) u (sum_c |w_oc ctx_c| + |b_o|)
//   KV storage   a cache in f16 / bf16 holds each K and V value rounded to nearest: dk and dv
//                grow by half an ulp of (|k| + dk), 2^-11 or 2^-8 relative (plus half the
//                smallest f16 subnormal, 2^-25); q8_0 holds a 32-value block of a head's row
//                as f16(d) * q, d = amax / 127: off by d / 2 (rounding q) + 127 max(d 2^-11,
//                2^-25) (f16's rounding of d, absolute once d is subnormal in f16), with amax
//                taken over |k| + dk of the block
// times 1.5. Nothing in it is a worst case over the whole case: a score that is large only
// where the softmax gives it no weight costs nothing elsewhere. Where the analysis allows more
// than 1/16 of the range an answer can take (a context element is an average of its values, so
// max |v|; then through out_proj), the case is ill-conditioned (logits so large that a score's
// rounding moves the softmax): the bound is capped there and the cap is counted, so no bound
// admits any answer of the right size. The range counts each value with its own error
// (|v| + dv): a value that cancels to near zero in the projection still lies anywhere within
// dv of it in float.
//
// An infinite value under a weight that may come out below FLT_MIN in float is flagged
// (OracleResult::underflow): there float arithmetic may multiply it by an underflowed 0.
#include "difftest_oracle.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace simdattn::cli {
namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24
constexpr double kSafety = 1.5;
constexpr double kCap = 1.0 / 16.0;
constexpr double kFloor = 4.0 * 1.17549435e-38;  // results the kernels flush below FLT_MIN
constexpr double kFltMin = 1.17549435e-38;

/// flush: what results below FLT_MIN, which the kernels may flush to 0, can add up to; the cap
/// never goes below it.
/// range: how far apart two answers of the right kind can lie (a context element is a weighted
/// average of its values: range max |v|), which the cap is a fraction of.
double finish_bound(double err, double magnitude, double range, double flush,
                    std::int64_t& capped) {
  const double floor = kSafety * flush + kFloor * (1.0 + magnitude);
  double b = kSafety * err + floor;
  const double cap = std::max(kCap * range, floor);
  if (std::isfinite(range) && b > cap) {
    b = cap;
    ++capped;
  }
  return b;
}

/// p_j = softmax(s)_j over n scores and each one's error bound, given the scores' errors.
/// Returns false when a score is NaN or the row's maximum is +inf (the row is NaN).
bool softmax_with_bound(const double* s, const double* ds, std::int64_t n, double* p,
                        double* dp) {
  const double inf = std::numeric_limits<double>::infinity();
  double m = -inf;
  for (std::int64_t j = 0; j < n; ++j) {
    if (std::isnan(s[j])) return false;
    m = std::max(m, s[j]);
  }
  if (m == inf) return false;
  if (m == -inf) {  // nothing to attend to: weights 0, exactly
    std::fill(p, p + n, 0.0);
    std::fill(dp, dp + n, 0.0);
    return true;
  }
  double sum = 0.0;
  for (std::int64_t j = 0; j < n; ++j) sum += (p[j] = std::exp(s[j] - m));
  double share = 0.0;
  for (std::int64_t j = 0; j < n; ++j) {
    p[j] /= sum;
    const double d = ds[j] + (s[j] == -inf ? 0.0 : kU * (m - s[j]));
    dp[j] = d;
    share += p[j] * std::exp(std::min(d, 700.0));
  }
  const double D = std::log(share);
  const double kernel = (static_cast<double>(n) + 12.0 + static_cast<double>(n) / 8.0) * kU;
  for (std::int64_t j = 0; j < n; ++j)
    dp[j] = s[j] == -inf ? 0.0 : p[j] * (std::expm1(std::min(dp[j] + D, 700.0)) + kernel);
  return true;
}

}  // namespace

OracleResult attention_oracle(const OracleProblem& p) {
  const std::int64_t T = p.tokens, d_in = p.d_in, hd = p.head_dim, inner = p.heads * hd;
  const std::int64_t kv_heads = p.kv_heads > 0 ? p.kv_heads : p.heads, kvd = kv_heads * hd;
  const std::int64_t group = p.heads / kv_heads;
  const std::int64_t out_dim = p.wo != nullptr && p.out_dim > 0 ? p.out_dim : inner;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  OracleResult r;
  r.y.assign(static_cast<std::size_t>(p.batch * T * out_dim), 0.0);
  r.bound.assign(r.y.size(), 0.0);
  r.underflow.assign(r.y.size(), 0);
  const auto at = [](std::int64_t row, std::int64_t cols, std::int64_t col) {
    return static_cast<std::size_t>(row * cols + col);
  };
  std::vector<double> q(static_cast<std::size_t>(T * inner)), dq(q.size());
  std::vector<double> k(static_cast<std::size_t>(T * kvd)), v(k.size()), dk(k.size()), dv(k.size());
  std::vector<double> ctx(q.size()), dctx(q.size()), actx(q.size()), fctx(q.size()),
      rctx(q.size());
  std::vector<unsigned char> uctx(q.size());
  std::vector<double> s(static_cast<std::size_t>(T)), ds(s.size()), w(s.size()), dw(s.size());

  for (std::int64_t b = 0; b < p.batch; ++b) {
    const float* xb = p.x + b * T * d_in;
    // Projections, and the error a float GEMM may make on each.
    auto project = [&](const float* wm, const float* bias, std::vector<double>& out,
                       std::vector<double>& err, std::int64_t width) {
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t o = 0; o < width; ++o) {
          double acc = bias ? bias[o] : 0.0, mag = bias ? std::fabs(bias[o]) : 0.0;
          for (std::int64_t c = 0; c < d_in; ++c) {
            const double term = double(xb[at(t, d_in, c)]) * double(wm[at(o, d_in, c)]);
            acc += term;
            mag += std::fabs(term);
          }
          out[at(t, width, o)] = acc;
          err[at(t, width, o)] = static_cast<double>(d_in + 2) * kU * mag;
        }
    };
    // The rotary embedding, exact angles, each rotated value's error carried through.
    auto rotate = [&](std::vector<double>& val, std::vector<double>& err, std::int64_t width) {
      if (p.rope == Rope::none) return;
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t h0 = 0; h0 < width; h0 += hd)
          for (std::int64_t i = 0; i < hd / 2; ++i) {
            const std::int64_t ia = h0 + (p.rope == Rope::halves ? i : 2 * i);
            const std::int64_t ib = h0 + (p.rope == Rope::halves ? i + hd / 2 : 2 * i + 1);
            const double angle = static_cast<double>(t) *
                                 std::pow(p.rope_theta, -2.0 * static_cast<double>(i) / double(hd));
            const double c = std::cos(angle), sn = std::sin(angle);
            double& a = val[at(t, width, ia)];
            double& bb = val[at(t, width, ib)];
            const double e = err[at(t, width, ia)] + err[at(t, width, ib)] +
                             4.0 * kU * (std::fabs(a) + std::fabs(bb));
            const double na = a * c - bb * sn, nb = bb * c + a * sn;
            a = na;
            bb = nb;
            err[at(t, width, ia)] = err[at(t, width, ib)] = e;
          }
    };
    if (p.wq == nullptr) {  // q = k = v = x, exactly
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t c = 0; c < inner; ++c) {
          q[at(t, inner, c)] = k[at(t, inner, c)] = v[at(t, inner, c)] = xb[at(t, d_in, c)];
          dq[at(t, inner, c)] = dk[at(t, inner, c)] = dv[at(t, inner, c)] = 0.0;
        }
    } else {
      project(p.wq, p.bq, q, dq, inner);
      project(p.wk, p.bk, k, dk, kvd);
      project(p.wv, p.bv, v, dv, kvd);
      rotate(q, dq, inner);
      rotate(k, dk, kvd);  // before the cache stores it, as the library does
    }
    // A stored cache: the storage step on top of each K and V value's float error.
    auto add_storage_step = [&](const std::vector<double>& val, std::vector<double>& err) {
      if (p.kv_type == DType::f32) return;
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t h = 0; h < kv_heads; ++h) {
          const std::int64_t c0 = h * hd;
          if (p.kv_type == DType::q8_0) {
            for (std::int64_t blk = 0; blk < hd / 32; ++blk) {
              double amax = 0.0;
              for (std::int64_t c = c0 + 32 * blk; c < c0 + 32 * blk + 32; ++c)
                amax = std::max(amax, std::fabs(val[at(t, kvd, c)]) + err[at(t, kvd, c)]);
              // Rounding q (d / 2), then f16's rounding of d for |q| <= 127: half an ulp,
              // 2^-11 relative, or 2^-25 absolute once d is an f16 subnormal (d < 2^-14).
              const double d = amax / 127.0;
              const double step = 0.5 * d + 127.0 * std::max(d / 2048.0, 1.0 / 33554432.0);
              for (std::int64_t c = c0 + 32 * blk; c < c0 + 32 * blk + 32; ++c)
                err[at(t, kvd, c)] += step;
            }
            continue;
          }
          const double rel = p.kv_type == DType::f16 ? 1.0 / 2048.0 : 1.0 / 256.0;
          const double abs_floor = p.kv_type == DType::f16 ? 1.0 / 33554432.0 : 0.0;
          for (std::int64_t c = c0; c < c0 + hd; ++c)
            err[at(t, kvd, c)] +=
                rel * (std::fabs(val[at(t, kvd, c)]) + err[at(t, kvd, c)]) + abs_floor;
        }
    };
    add_storage_step(k, dk);
    add_storage_step(v, dv);

    for (std::int64_t h = 0; h < p.heads; ++h)
      for (std::int64_t t = 0; t < T; ++t) {
        const std::int64_t lo = p.causal && !p.window_lo.empty() ? p.window_lo[t] : 0;
        const std::int64_t hi = p.causal ? t : T - 1;
        const std::int64_t n = hi - lo + 1;
        for (std::int64_t j = 0; j < n; ++j) {
          double dot = 0.0, mag = 0.0, prop = 0.0;
          for (std::int64_t c = h * hd; c < (h + 1) * hd; ++c) {
            const std::int64_t ck = (h / group) * hd + (c - h * hd);  // its K/V head's column
            const double qc = q[at(t, inner, c)], kc = k[at(lo + j, kvd, ck)];
            dot += qc * kc;
            mag += std::fabs(qc * kc);
            const double eq = dq[at(t, inner, c)], ek = dk[at(lo + j, kvd, ck)];
            if (eq != 0.0) prop += eq * (std::fabs(kc) + ek);  // no 0 * inf: exact inputs
            if (ek != 0.0) prop += std::fabs(qc) * ek;          // have no error to carry
          }
          s[j] = p.scale * dot;
          ds[j] = p.scale * (prop + static_cast<double>(hd + 2) * kU * mag);
        }
        const bool finite_row = softmax_with_bound(s.data(), ds.data(), n, w.data(), dw.data());
        for (std::int64_t c = h * hd; c < (h + 1) * hd; ++c) {
          const std::int64_t cv = (h / group) * hd + (c - h * hd);
          double acc = 0.0, err = 0.0, mag = 0.0, flushed = 0.0, range = 0.0;
          unsigned char underflow = 0;
          for (std::int64_t j = 0; j < n; ++j) {
            double keep = 1.0;
            if (p.dropout.active())
              keep = detail::dropout_keep(p.dropout, static_cast<std::uint64_t>(b),
                                          static_cast<std::uint64_t>(h),
                                          static_cast<std::uint64_t>(t),
                                          static_cast<std::uint64_t>(lo + j))
                         ? p.dropout.keep_scale()
                         : 0.0;
            const double vj = v[at(lo + j, kvd, cv)];
            if (std::isfinite(vj))
              range = std::max(range, keep * (std::fabs(vj) + dv[at(lo + j, kvd, cv)]));
            acc += w[j] * keep * vj;  // NaN * 0 stays NaN, as torch's dropout
            if (w[j] * keep == 0.0 && dw[j] == 0.0) continue;  // exactly nothing, even for inf v
            if (std::isinf(vj) && keep * (w[j] - dw[j]) < 2.0 * kFltMin) underflow = 1;
            flushed += keep * std::fabs(vj);  // a weight below FLT_MIN may come out 0
            mag += w[j] * keep * std::fabs(vj);
            err += keep * (dw[j] * std::fabs(vj) + w[j] * dv[at(lo + j, kvd, cv)]);
          }
          if (p.book_masking && p.causal)
            for (std::int64_t j = t + 1; j < T; ++j)  // 0 * v_j for the masked keys
              if (!std::isfinite(v[at(j, kvd, cv)])) acc = nan;
          ctx[at(t, inner, c)] = finite_row ? acc : nan;
          actx[at(t, inner, c)] = mag;
          dctx[at(t, inner, c)] = err + static_cast<double>(n + 3) * kU * mag;
          fctx[at(t, inner, c)] = kFloor * flushed;
          rctx[at(t, inner, c)] = range;
          uctx[at(t, inner, c)] = underflow;
        }
      }

    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t o = 0; o < out_dim; ++o) {
        const std::size_t i = at(b * T + t, out_dim, o);
        // A stored cache's steps are part of the answer, not an ill-conditioning artefact:
        // its bounds are never capped (difftest draws such cases with moderate logits).
        const double inf = std::numeric_limits<double>::infinity();
        const bool stored = p.kv_type != DType::f32;
        if (p.wo == nullptr) {
          r.y[i] = ctx[at(t, inner, o)];
          r.underflow[i] = uctx[at(t, inner, o)];
          const double mag = actx[at(t, inner, o)];
          r.bound[i] = finish_bound(dctx[at(t, inner, o)] + kU * mag, mag,
                                    stored ? inf : rctx[at(t, inner, o)], fctx[at(t, inner, o)],
                                    r.capped);
          continue;
        }
        double acc = p.bo ? p.bo[o] : 0.0, mag = p.bo ? std::fabs(p.bo[o]) : 0.0, err = 0.0,
               flush = 0.0, range = mag;
        for (std::int64_t c = 0; c < inner; ++c) {
          const double wc = p.wo[at(o, inner, c)], cc = ctx[at(t, inner, c)];
          acc += wc * cc;
          mag += std::fabs(wc * cc);
          err += std::fabs(wc) * (dctx[at(t, inner, c)] + kU * std::fabs(cc));
          flush += std::fabs(wc) * fctx[at(t, inner, c)];
          range += std::fabs(wc) * rctx[at(t, inner, c)];
          if (wc != 0.0 && uctx[at(t, inner, c)]) r.underflow[i] = 1;
        }
        r.y[i] = acc;
        r.bound[i] = finish_bound(err + static_cast<double>(inner + 2) * kU * mag, mag,
                                  stored ? inf : range, flush, r.capped);
      }
  }
  return r;
}

OracleResult softmax_oracle(const float* scores, std::int64_t rows, std::int64_t cols,
                            std::int64_t ld, double scale, std::int64_t offset, bool causal) {
  OracleResult r;
  r.y.assign(static_cast<std::size_t>(rows * cols), 0.0);
  r.bound.assign(r.y.size(), 0.0);
  std::vector<double> s(static_cast<std::size_t>(cols)), ds(s.size()), p(s.size()), dp(s.size());
  for (std::int64_t i = 0; i < rows; ++i) {
    const std::int64_t valid = causal ? std::min(cols, offset + i + 1) : cols;
    for (std::int64_t j = 0; j < valid; ++j) {
      const double x = scale * double(scores[i * ld + j]);
      s[static_cast<std::size_t>(j)] = x;
      ds[static_cast<std::size_t>(j)] = std::isfinite(x) ? kU * std::fabs(x) : 0.0;  // the product
    }
    const bool finite_row = softmax_with_bound(s.data(), ds.data(), valid, p.data(), dp.data());
    for (std::int64_t j = 0; j < cols; ++j) {
      const std::size_t o = static_cast<std::size_t>(i * cols + j);
      if (!finite_row) {  // a NaN row is NaN everywhere, masked entries too
        r.y[o] = std::numeric_limits<double>::quiet_NaN();
      } else if (j < valid) {
        r.y[o] = p[static_cast<std::size_t>(j)];
        const double pj = p[static_cast<std::size_t>(j)];
        r.bound[o] = finish_bound(dp[static_cast<std::size_t>(j)], pj, pj, 0.0, r.capped);
      }
    }
  }
  return r;
}

OracleResult exp_oracle(const float* x, std::int64_t n) {
  OracleResult r;
  for (std::int64_t i = 0; i < n; ++i) {
    const double e = std::exp(double(x[i]));
    int ex = 0;
    std::frexp(e, &ex);  // e = m 2^ex, m in [0.5, 1): one float ULP is 2^(ex - 24)
    r.y.push_back(e);
    // Below FLT_MIN the kernel returns 0 (documented); otherwise 2 ULP.
    r.bound.push_back(e < 1.17549435e-38 ? 1.17549435e-38 : 2.0 * std::ldexp(1.0, ex - 24));
  }
  return r;
}

std::vector<std::int64_t> sliding_window_lo(const std::vector<std::int64_t>& chunks,
                                            std::int64_t capacity) {
  std::vector<std::int64_t> lo;
  std::int64_t held = 0;
  for (std::int64_t n : chunks) {
    if (held + n > capacity) held = capacity - n;
    const std::int64_t first = static_cast<std::int64_t>(lo.size()) - held;
    for (std::int64_t i = 0; i < n; ++i) lo.push_back(first);
    held += n;
  }
  return lo;
}

}  // namespace simdattn::cli
