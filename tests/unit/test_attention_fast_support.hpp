// tests/unit/test_attention_fast_support.hpp — shared by the fast softmax / attention tests:
// the (ISA, threads) parameterisation with a coverage log, seeded random data, a double
// precision attention oracle for strided Q/K/V, and tolerances derived from magnitudes.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/dropout.hpp"
#include "simdattn/runtime.hpp"
#include "support/required_isas.hpp"

namespace simdattn::test {

constexpr double kEps = std::numeric_limits<float>::epsilon();  // 2u
constexpr float kInfF = std::numeric_limits<float>::infinity();
constexpr float kNanF = std::numeric_limits<float>::quiet_NaN();

/// One run configuration: an ISA forced with set_isa and a thread count.
struct IsaThreads {
  Isa isa;
  int threads;  ///< 0: the machine's concurrency
};

inline std::string isa_threads_name(const ::testing::TestParamInfo<IsaThreads>& info) {
  return std::string(isa_name(info.param.isa)) + (info.param.threads == 1 ? "_1thread" : "_Nthreads");
}

inline std::vector<IsaThreads> all_isa_threads() {
  std::vector<IsaThreads> out;
  for (Isa isa : {Isa::sse2, Isa::avx2, Isa::avx512, Isa::neon})
    for (int t : {1, 0}) out.push_back({isa, t});
  return out;
}

/// Which ISAs actually ran; printed once at exit so a run on a machine without AVX-512 says so.
inline std::set<std::string>& covered_isas() {
  static std::set<std::string> s;
  return s;
}

class CoverageReport : public ::testing::Environment {
 public:
  void TearDown() override {
    std::string list;
    for (const auto& s : covered_isas()) list += (list.empty() ? "" : ", ") + s;
    std::printf("[fast attention/softmax] ISAs exercised: %s\n", list.empty() ? "none" : list.c_str());
  }
};

/// Fixture body: forces the ISA and thread count (skipping ISAs this machine cannot run) and
/// restores the defaults afterwards.
class IsaThreadsTest : public ::testing::TestWithParam<IsaThreads> {
 protected:
  void SetUp() override {
    const IsaThreads p = GetParam();
    SIMDATTN_SKIP_UNLESS_USABLE(p.isa);
    saved_isa_ = active_isa();
    set_isa(p.isa);
    set_num_threads(p.threads);
    restore_ = true;
    covered_isas().insert(isa_name(p.isa));
  }
  void TearDown() override {
    if (!restore_) return;
    set_isa(saved_isa_);
    set_num_threads(0);
  }

 private:
  Isa saved_isa_ = Isa::sse2;
  bool restore_ = false;
};

/// Seeded uniform values in [lo, hi).
inline std::vector<float> random_values(std::size_t n, std::uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

/// Strided Q/K/V/out for the oracle (same convention as detail::FlashProblem).
struct StridedAttention {
  std::int64_t batch = 1, heads = 1, q_len = 0, kv_len = 0, head_dim = 0;
  const float* q = nullptr;
  std::int64_t qb = 0, qh = 0, qr = 0;
  const float* k = nullptr;
  std::int64_t kb = 0, kh = 0, kr = 0;
  const float* v = nullptr;
  std::int64_t vb = 0, vh = 0, vr = 0;
  double scale = 1.0;
  bool causal = false;
  std::int64_t q_offset = 0, k_offset = 0;
  detail::DropoutParams dropout;
  /// true: the book's attn_weights @ values, masked (zero) weights times their value rows
  /// too; false: a query sums only the keys it sees (KV-cache semantics).
  bool book_masking = true;
  /// Logical key j is row (ring_start + j) % kv_len (a KV cache's ring).
  std::int64_t ring_start = 0;
};

/// The book's attention in double, as the reference writes it: every weight (masked ones are
/// 0) times its value row, so non-finite values propagate the same way (or, with
/// !book_masking, only the keys a query sees). out is [batch][heads][q_len][head_dim].
inline std::vector<float> oracle_attention(const StridedAttention& p) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<float> out(static_cast<std::size_t>(p.batch * p.heads * p.q_len * p.head_dim));
  std::vector<double> w(static_cast<std::size_t>(p.kv_len));
  for (std::int64_t b = 0; b < p.batch; ++b)
    for (std::int64_t h = 0; h < p.heads; ++h)
      for (std::int64_t i = 0; i < p.q_len; ++i) {
        const float* qi = p.q + b * p.qb + h * p.qh + i * p.qr;
        const std::int64_t qpos = p.q_offset + i;
        double mx = -inf;
        bool nan = false;
        const auto row = [&](std::int64_t j) { return (p.ring_start + j) % p.kv_len; };
        for (std::int64_t j = 0; j < p.kv_len; ++j) {
          const float* kj = p.k + b * p.kb + h * p.kh + row(j) * p.kr;
          double s = 0.0;
          for (std::int64_t d = 0; d < p.head_dim; ++d) s += double(qi[d]) * double(kj[d]);
          s = (p.causal && p.k_offset + j > qpos) ? -inf : s * p.scale;
          w[static_cast<std::size_t>(j)] = s;
          if (std::isnan(s)) nan = true;
          if (s > mx) mx = s;
        }
        double sum = 0.0;
        for (double& s : w) {
          s = nan ? std::nan("") : (mx == -inf ? 0.0 : std::exp(s - mx));
          sum += s;
        }
        for (std::int64_t j = 0; j < p.kv_len; ++j) {
          double& wj = w[static_cast<std::size_t>(j)];
          if (mx != -inf || nan) wj /= sum;
          if (p.dropout.active())
            wj *= detail::dropout_keep(p.dropout, std::uint64_t(b), std::uint64_t(h),
                                       std::uint64_t(qpos), std::uint64_t(p.k_offset + j))
                      ? p.dropout.keep_scale()
                      : 0.0;
        }
        float* o = out.data() + ((b * p.heads + h) * p.q_len + i) * p.head_dim;
        for (std::int64_t d = 0; d < p.head_dim; ++d) {
          double acc = 0.0;
          for (std::int64_t j = 0; j < p.kv_len; ++j) {
            if (!p.book_masking && p.causal && p.k_offset + j > qpos) continue;
            acc += w[static_cast<std::size_t>(j)] *
                   double(p.v[b * p.vb + h * p.vh + row(j) * p.vr + d]);
          }
          o[d] = static_cast<float>(acc);
        }
      }
  return out;
}

/// Error bound of the fast attention on finite inputs (why): a float score is a head_dim-long
/// dot product of pre-scaled queries, so its error is about (head_dim + 2) eps scale
/// max sum_d |q_d k_d| =: ds. A perturbation ds of the scores changes each softmax weight by a
/// relative factor of at most exp(2 ds) - 1; the kernel's exponential (<= 2 ulp), its running
/// sum over kv_len terms and the P·V sum over kv_len terms add (kv_len + head_dim + 16) eps
/// relative. Times max|v| (and the dropout scale), with a factor 2 of slack.
inline double attention_tolerance(double score_abs_max, std::int64_t head_dim, std::int64_t kv_len,
                                  double v_abs_max, double keep_scale = 1.0) {
  const double ds = (head_dim + 2) * kEps * score_abs_max;
  const double rel = (std::exp(2.0 * ds) - 1.0) + (kv_len + head_dim + 16) * kEps;
  return 2.0 * keep_scale * v_abs_max * rel + 1e-30;
}

inline double abs_max(const float* p, std::size_t n) {
  double m = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    if (std::isfinite(p[i])) m = std::max(m, static_cast<double>(std::fabs(p[i])));
  return m;
}

}  // namespace simdattn::test
