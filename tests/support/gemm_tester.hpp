// tests/support/gemm_tester.hpp — GemmTester: builds one SGEMM problem (shape, transposition,
// leading dimensions, misalignment, alpha/beta/bias), runs it through a chosen path (public
// sgemm, PackedMatrix + sgemm_packed, or the blocked / small-M driver with any microkernel) and
// checks it against reference::sgemm with an error bound derived from the inputs.
//
//   EXPECT_TRUE(GemmTester().m(5).n(17).k(33).trans(Transpose::yes).beta(0).test_sgemm());
//
// Tolerance (why): the fast path sums K products in float with one FMA (or mul + add) each,
// in a different order from the double reference, plus a few roundings for the kc slices and
// the epilogue. The classical bound for a float dot product is gamma_K * sum_k |a_ik||b_kj|
// with gamma_K ~ K * u; we allow |err| <= eps * ((K + 4) * |alpha| * S_ij + 4 * (|beta * c_ij|
// + |bias_j|)) + 1e-30, eps = FLT_EPSILON = 2u, i.e. a factor 2 of slack over the bound. A
// result that is NaN or inf fails (`!(err <= tol)`).
//
// Buffers sit at a chosen misalignment (in floats) from a 64-byte boundary, inside guard zones.
// A and B gaps (columns past the width, guard zones) hold NaN, so reading them poisons the
// result; C's gaps hold a sentinel that must survive bit-for-bit, so writing them is caught.
// With beta == 0, C's own elements start as NaN: reading them would poison the result.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "dispatch/kernel_table.hpp"
#include "drivers/gemm.hpp"
#include "simdattn/gemm.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn::test {

/// A float buffer of `count` elements starting `misalign` floats past a 64-byte boundary,
/// with `kGuard` floats of guard on both sides, all initialised to `fill`.
class GuardedBuffer {
 public:
  static constexpr std::int64_t kGuard = 64;
  GuardedBuffer(std::int64_t count, std::int64_t misalign, float fill)
      : storage_(static_cast<std::size_t>(count + 2 * kGuard + 16 + misalign), fill),
        count_(count) {
    auto addr = reinterpret_cast<std::uintptr_t>(storage_.data() + kGuard);
    const std::int64_t to_aligned = static_cast<std::int64_t>((64 - addr % 64) % 64) / 4;
    begin_ = kGuard + to_aligned + misalign;
  }
  float* data() { return storage_.data() + begin_; }
  const float* data() const { return storage_.data() + begin_; }
  std::int64_t count() const { return count_; }
  const std::vector<float>& storage() const { return storage_; }
  std::int64_t begin() const { return begin_; }

 private:
  std::vector<float> storage_;
  std::int64_t count_;
  std::int64_t begin_;
};

inline std::uint32_t float_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

class GemmTester {
 public:
  GemmTester& m(std::int64_t v) { m_ = v; return *this; }
  GemmTester& n(std::int64_t v) { n_ = v; return *this; }
  GemmTester& k(std::int64_t v) { k_ = v; return *this; }
  /// Leading dimensions: 0 means the tight width.
  GemmTester& lda(std::int64_t v) { lda_ = v; return *this; }
  GemmTester& ldb(std::int64_t v) { ldb_ = v; return *this; }
  GemmTester& ldc(std::int64_t v) { ldc_ = v; return *this; }
  GemmTester& trans(Transpose t) { trans_ = t; return *this; }
  GemmTester& alpha(float v) { alpha_ = v; return *this; }
  GemmTester& beta(float v) { beta_ = v; return *this; }
  GemmTester& bias(bool v) { bias_ = v; return *this; }
  /// Every pointer starts this many floats past a 64-byte boundary.
  GemmTester& misalign(std::int64_t v) { misalign_ = v; return *this; }
  GemmTester& seed(std::uint32_t v) { seed_ = v; return *this; }
  /// How PackedMatrix stores B in test_packed / test_packed_across / output_sgemm(true). For
  /// a type other than f32 the oracle is reference::sgemm on reference::stored_values.
  GemmTester& storage(DType t) { storage_ = t; return *this; }

  std::int64_t lda_eff() const { return lda_ > 0 ? lda_ : k_; }
  std::int64_t ldb_eff() const { return ldb_ > 0 ? ldb_ : (trans_ == Transpose::no ? n_ : k_); }
  std::int64_t ldc_eff() const { return ldc_ > 0 ? ldc_ : n_; }

  /// "m=5 n=17 k=33 trans=yes alpha=1 beta=0 bias=1 lda=33 ldb=33 ldc=17 misalign=1"
  std::string describe() const {
    std::ostringstream os;
    os << "m=" << m_ << " n=" << n_ << " k=" << k_
       << " trans=" << (trans_ == Transpose::no ? "no" : "yes") << " alpha=" << alpha_
       << " beta=" << beta_ << " bias=" << bias_ << " lda=" << lda_eff() << " ldb=" << ldb_eff()
       << " ldc=" << ldc_eff() << " misalign=" << misalign_ << " storage=" << dtype_name(storage_);
    return os.str();
  }

  /// Public sgemm on the active ISA.
  ::testing::AssertionResult test_sgemm() const {
    Problem p = make_problem();
    simdattn::sgemm(trans_, m_, n_, k_, alpha_, p.a.data(), lda_eff(), p.b.data(), ldb_eff(),
                    beta_, p.c.data(), ldc_eff(), bias_ ? p.bias.data() : nullptr);
    return check(p, std::string("sgemm on ") + isa_name(active_isa()));
  }

  /// PackedMatrix + sgemm_packed on the active ISA (small-M path up to the kernel's max_m).
  ::testing::AssertionResult test_packed() const {
    Problem p = make_problem();
    const PackedMatrix packed(p.b.data(), ldb_eff(), trans_, k_, n_, storage_);
    return run_packed(p, packed, std::string("sgemm_packed on ") + isa_name(active_isa()));
  }

  /// PackedMatrix packed now, multiplied on each ISA in `isas` in turn (set_isa between).
  ::testing::AssertionResult test_packed_across(const std::vector<Isa>& isas) const {
    Problem p = make_problem();
    const PackedMatrix packed(p.b.data(), ldb_eff(), trans_, k_, n_, storage_);
    const Isa before = active_isa();
    for (Isa isa : isas) {
      set_isa(isa);
      Problem q = make_problem();
      auto r = run_packed(q, packed,
                          std::string("sgemm_packed packed on ") + isa_name(before) +
                              ", run on " + isa_name(isa));
      if (!r) {
        set_isa(before);
        return r;
      }
    }
    set_isa(before);
    return ::testing::AssertionSuccess();
  }

  /// The blocked driver with an explicit microkernel (any tile), B packed `pw` wide with
  /// `max_panels - 1` padding panels, and an optional explicit task split.
  ::testing::AssertionResult test_blocked(const detail::GemmMicrokernel& ukernel,
                                          std::int64_t pw, std::int64_t max_panels,
                                          detail::GemmSplit split = {}) const {
    Problem p = make_problem();
    detail::AlignedFloats storage;
    const detail::PackedB b =
        detail::pack_b(p.b.data(), ldb_eff(), trans_, k_, n_, pw, max_panels, storage);
    detail::gemm_blocked(ukernel, args(p), b, split);
    std::ostringstream what;
    what << "gemm_blocked " << ukernel.name << " (" << ukernel.mr << "x" << ukernel.nr
         << ", pw " << pw << ", mc " << ukernel.mc << " kc " << ukernel.kc << " nc "
         << ukernel.nc << ", split " << split.m_block << "x" << split.n_block << ")";
    return check(p, what.str());
  }

  /// The small-M driver with an explicit kernel and B panel width.
  ::testing::AssertionResult test_small_m(const detail::GemmSmallMKernel& kernel,
                                          std::int64_t pw,
                                          std::int64_t panels_per_task = 0) const {
    Problem p = make_problem();
    detail::AlignedFloats storage;
    const detail::PackedB b = detail::pack_b(p.b.data(), ldb_eff(), trans_, k_, n_, pw,
                                             detail::kGemmMaxPanelsPerTile, storage);
    detail::gemm_small_m(kernel, args(p), b, panels_per_task);
    std::ostringstream what;
    what << "gemm_small_m " << kernel.name << " (pw " << pw << ", panels/task "
         << panels_per_task << ")";
    return check(p, what.str());
  }

  /// C after public sgemm (trans), or after sgemm_packed when packed is true; for bitwise
  /// comparisons across thread counts and splits.
  std::vector<float> output_sgemm(bool packed) const {
    Problem p = make_problem();
    if (packed) {
      const PackedMatrix pm(p.b.data(), ldb_eff(), trans_, k_, n_, storage_);
      sgemm_packed(m_, alpha_, p.a.data(), lda_eff(), pm, beta_, p.c.data(), ldc_eff(),
                   bias_ ? p.bias.data() : nullptr);
    } else {
      simdattn::sgemm(trans_, m_, n_, k_, alpha_, p.a.data(), lda_eff(), p.b.data(), ldb_eff(),
                      beta_, p.c.data(), ldc_eff(), bias_ ? p.bias.data() : nullptr);
    }
    return c_elements(p);
  }
  /// C after the blocked driver with the given kernel and split (B packed 16 wide).
  std::vector<float> output_blocked(const detail::GemmMicrokernel& ukernel,
                                    detail::GemmSplit split) const {
    Problem p = make_problem();
    detail::AlignedFloats storage;
    const detail::PackedB b = pack_default(p, storage);
    detail::gemm_blocked(ukernel, args(p), b, split);
    return c_elements(p);
  }
  /// C after gemm_packed (the path m selects) writing C in column groups of `group` columns
  /// (GemmArgs::c_group), each [m, group] with row stride `group` and `pad` spare floats
  /// between groups; returned row by row like the other outputs. Fails the test if a pad float
  /// was written.
  std::vector<float> output_grouped(const detail::KernelTable& table, std::int64_t group,
                                    std::int64_t pad) const {
    Problem p = make_problem();
    detail::AlignedFloats storage;
    const detail::PackedB b = pack_default(p, storage);
    const std::int64_t stride = m_ * group + pad, groups = (n_ + group - 1) / group;
    std::vector<float> grouped(static_cast<std::size_t>(groups * stride), kSentinel);
    const auto at = [&](std::int64_t i, std::int64_t j) -> float& {
      return grouped[static_cast<std::size_t>((j / group) * stride + i * group + j % group)];
    };
    for (std::int64_t i = 0; i < m_; ++i)
      for (std::int64_t j = 0; j < n_; ++j) at(i, j) = p.c.data()[i * ldc_eff() + j];
    detail::GemmArgs g = args(p);
    g.c = grouped.data();
    g.ldc = group;
    g.c_group = group;
    g.c_group_stride = stride;
    detail::gemm_packed(table, g, b);
    for (std::int64_t q = 0; q < groups; ++q)
      for (std::int64_t x = m_ * group; x < stride; ++x)
        EXPECT_EQ(grouped[static_cast<std::size_t>(q * stride + x)], kSentinel)
            << "pad float " << x << " after group " << q << " was written";
    std::vector<float> out;
    out.reserve(static_cast<std::size_t>(m_ * n_));
    for (std::int64_t i = 0; i < m_; ++i)
      for (std::int64_t j = 0; j < n_; ++j) out.push_back(at(i, j));
    return out;
  }
  /// C after the small-M driver with the given panels per task.
  std::vector<float> output_small_m(const detail::GemmSmallMKernel& kernel,
                                    std::int64_t panels_per_task) const {
    Problem p = make_problem();
    detail::AlignedFloats storage;
    const detail::PackedB b = pack_default(p, storage);
    detail::gemm_small_m(kernel, args(p), b, panels_per_task);
    return c_elements(p);
  }

 private:
  static constexpr float kSentinel = -7777.25f;

  struct Problem {
    GuardedBuffer a, b, c, bias;
    std::vector<float> c_before;  // C's full storage before the call (gaps included)
  };

  Problem make_problem() const {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::int64_t b_rows = trans_ == Transpose::no ? k_ : n_;
    const std::int64_t b_width = trans_ == Transpose::no ? n_ : k_;
    Problem p{GuardedBuffer((m_ - 1) * lda_eff() + k_, misalign_, nan),
              GuardedBuffer((b_rows - 1) * ldb_eff() + b_width, misalign_, nan),
              GuardedBuffer((m_ - 1) * ldc_eff() + n_, misalign_, kSentinel),
              GuardedBuffer(n_, misalign_, nan), {}};
    std::mt19937 rng(seed_);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (std::int64_t i = 0; i < m_; ++i)
      for (std::int64_t j = 0; j < k_; ++j) p.a.data()[i * lda_eff() + j] = dist(rng);
    for (std::int64_t i = 0; i < b_rows; ++i)
      for (std::int64_t j = 0; j < b_width; ++j) p.b.data()[i * ldb_eff() + j] = dist(rng);
    for (std::int64_t i = 0; i < m_; ++i)
      for (std::int64_t j = 0; j < n_; ++j)
        p.c.data()[i * ldc_eff() + j] = beta_ == 0.0f ? nan : dist(rng);
    if (bias_)
      for (std::int64_t j = 0; j < n_; ++j) p.bias.data()[j] = dist(rng);
    p.c_before = p.c.storage();
    return p;
  }

  // C's m x n elements, row by row (the buffer's offset from its storage varies between
  // allocations, so whole storages are not comparable).
  std::vector<float> c_elements(const Problem& p) const {
    std::vector<float> out;
    out.reserve(static_cast<std::size_t>(m_ * n_));
    for (std::int64_t i = 0; i < m_; ++i)
      for (std::int64_t j = 0; j < n_; ++j) out.push_back(p.c.data()[i * ldc_eff() + j]);
    return out;
  }

  // B packed the way PackedMatrix packs it (16-wide panels, padding for the widest tile).
  detail::PackedB pack_default(const Problem& p, detail::AlignedFloats& storage) const {
    return detail::pack_b(p.b.data(), ldb_eff(), trans_, k_, n_, detail::kGemmPanelWidth,
                          detail::kGemmMaxPanelsPerTile, storage);
  }

  detail::GemmArgs args(Problem& p) const {
    detail::GemmArgs g;
    g.m = m_;
    g.alpha = alpha_;
    g.a = p.a.data();
    g.lda = lda_eff();
    g.beta = beta_;
    g.c = p.c.data();
    g.ldc = ldc_eff();
    g.bias = bias_ ? p.bias.data() : nullptr;
    return g;
  }

  ::testing::AssertionResult run_packed(Problem& p, const PackedMatrix& packed,
                                        const std::string& what) const {
    sgemm_packed(m_, alpha_, p.a.data(), lda_eff(), packed, beta_, p.c.data(), ldc_eff(),
                 bias_ ? p.bias.data() : nullptr);
    if (packed.storage() == DType::f32) return check(p, what);
    const std::vector<float> stored = reference::stored_values(packed);
    return check(p, what, &stored);
  }

  /// stored (nullable): op(B) as stored, K x N; the oracle multiplies that instead of B.
  ::testing::AssertionResult check(const Problem& p, const std::string& path,
                                   const std::vector<float>* stored = nullptr) const {
    // Expected: the reference on a copy of the initial C (which holds NaN when beta == 0).
    std::vector<float> expected = p.c_before;
    const std::int64_t c0 = p.c.begin();
    if (stored != nullptr)
      reference::sgemm(Transpose::no, m_, n_, k_, alpha_, p.a.data(), lda_eff(), stored->data(),
                       n_, beta_, expected.data() + c0, ldc_eff(), bias_ ? p.bias.data() : nullptr);
    else
      reference::sgemm(trans_, m_, n_, k_, alpha_, p.a.data(), lda_eff(), p.b.data(), ldb_eff(),
                       beta_, expected.data() + c0, ldc_eff(), bias_ ? p.bias.data() : nullptr);
    const std::vector<float>& actual = p.c.storage();
    const double eps = std::numeric_limits<float>::epsilon();
    const auto b_at = [&](std::int64_t kk, std::int64_t j) -> double {
      if (stored != nullptr) return (*stored)[static_cast<std::size_t>(kk * n_ + j)];
      return trans_ == Transpose::no ? p.b.data()[kk * ldb_eff() + j]
                                     : p.b.data()[j * ldb_eff() + kk];
    };
    double err_sum = 0.0, tol_sum = 0.0;
    // Elements of C first, in row-major order; then every other float of the buffer.
    for (std::int64_t i = 0; i < m_; ++i) {
      for (std::int64_t j = 0; j < n_; ++j) {
        const std::size_t idx = static_cast<std::size_t>(c0 + i * ldc_eff() + j);
        double s = 0.0;
        for (std::int64_t kk = 0; kk < k_; ++kk)
          s += std::fabs(static_cast<double>(p.a.data()[i * lda_eff() + kk]) * b_at(kk, j));
        const double c_init = beta_ == 0.0f ? 0.0 : p.c_before[idx];
        const double bias = bias_ ? p.bias.data()[j] : 0.0;
        const double tol = eps * (static_cast<double>(k_ + 4) * std::fabs(alpha_) * s +
                                  4.0 * (std::fabs(beta_ * c_init) + std::fabs(bias))) +
                           1e-30;
        const double e = expected[idx], a = actual[idx];
        const double err = std::fabs(a - e);
        if (!(err <= tol)) {
          return ::testing::AssertionFailure()
                 << path << ", " << describe() << ": first bad element C[" << i << "][" << j
                 << "]: expected " << e << ", actual " << a << ", |err| " << err << " > tol "
                 << tol << neighbourhood(expected, actual, i, j, c0);
        }
        err_sum += err;
        tol_sum += tol;
      }
    }
    // A systematic bias (e.g. a dropped term) can hide under a per-element bound; the mean
    // error of a correct summation sits far below the mean bound.
    if (!(err_sum <= 0.25 * tol_sum))
      return ::testing::AssertionFailure() << path << ", " << describe() << ": mean |err| "
                                           << err_sum / double(m_ * n_) << " exceeds a quarter"
                                           << " of the mean tolerance " << tol_sum / double(m_ * n_);
    for (std::size_t idx = 0; idx < actual.size(); ++idx) {
      const std::int64_t off = static_cast<std::int64_t>(idx) - c0;
      const bool inside = off >= 0 && off < (m_ - 1) * ldc_eff() + n_ && off % ldc_eff() < n_;
      if (!inside && float_bits(actual[idx]) != float_bits(p.c_before[idx]))
        return ::testing::AssertionFailure()
               << path << ", " << describe() << ": wrote outside C at offset " << off
               << " from C (value " << actual[idx] << ")";
    }
    return ::testing::AssertionSuccess();
  }

  std::string neighbourhood(const std::vector<float>& expected, const std::vector<float>& actual,
                            std::int64_t i, std::int64_t j, std::int64_t c0) const {
    std::ostringstream os;
    os << "; row " << i << " around it (expected/actual):";
    for (std::int64_t jj = j >= 3 ? j - 3 : 0; jj < n_ && jj <= j + 3; ++jj) {
      const std::size_t idx = static_cast<std::size_t>(c0 + i * ldc_eff() + jj);
      os << " [" << jj << "] " << expected[idx] << "/" << actual[idx];
    }
    return os.str();
  }

  std::int64_t m_ = 1, n_ = 1, k_ = 1;
  std::int64_t lda_ = 0, ldb_ = 0, ldc_ = 0;
  Transpose trans_ = Transpose::no;
  float alpha_ = 1.0f, beta_ = 0.0f;
  bool bias_ = false;
  std::int64_t misalign_ = 0;
  DType storage_ = DType::f32;
  std::uint32_t seed_ = 42;
};

}  // namespace simdattn::test
