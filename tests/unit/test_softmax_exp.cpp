// tests/unit/test_softmax_exp.cpp — the softmax kernels' vectorised exponential, measured in
// ULP against a double-precision exp on every usable ISA: over the range softmax feeds it
// (scale s - max <= 0, down to where results leave the normal range) it must stay <= 2 ULP,
// flush below that to at most FLT_MIN, and handle 0, -inf and NaN exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "dispatch/kernel_table.hpp"
#include "simdattn/runtime.hpp"

namespace {

using simdattn::Isa;

/// |y - exact| in units of the float spacing at exact (ulp of a float in [2^e, 2^(e+1))).
double ulp_error(float y, double exact) {
  int e = 0;
  std::frexp(exact, &e);  // exact = m * 2^e, m in [0.5, 1)
  const double ulp = std::ldexp(1.0, e - 24);
  return std::fabs(static_cast<double>(y) - exact) / ulp;
}

struct Measured {
  double max_ulp = 0.0;
  float worst_x = 0.0f;
};

Measured measure(simdattn::detail::ExpF32Fn fn, float lo, float hi, std::int64_t n) {
  std::vector<float> x(static_cast<std::size_t>(n)), y(x.size());
  for (std::int64_t i = 0; i < n; ++i)
    x[static_cast<std::size_t>(i)] = lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(n - 1);
  fn(x.data(), y.data(), n);
  Measured m;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double u = ulp_error(y[i], std::exp(static_cast<double>(x[i])));
    if (!(u <= m.max_ulp)) {
      m.max_ulp = u;
      m.worst_x = x[i];
    }
  }
  return m;
}

TEST(SoftmaxExp, WithinTwoUlpOverTheSoftmaxRange) {
  for (Isa isa : simdattn::usable_isas()) {
    const auto fn = simdattn::detail::kernels_for(isa).softmax.exp;
    // exp(-87.33) is FLT_MIN: below it results are subnormal and the kernel may flush them.
    const Measured neg = measure(fn, -87.3f, 0.0f, 2000003);
    const Measured small = measure(fn, -1.0f, 1.0f, 200003);
    // Positive arguments are not used by softmax (it feeds scale s - max <= ~0); the kernel
    // exponential is specified up to 88 only.
    const Measured pos = measure(fn, 0.0f, 88.0f, 200003);
    std::printf("[exp %s] max ULP: [-87.3, 0] %.3f (x=%g), [-1, 1] %.3f, [0, 88] %.3f\n",
                simdattn::isa_name(isa), neg.max_ulp, neg.worst_x, small.max_ulp, pos.max_ulp);
    EXPECT_LE(neg.max_ulp, 2.0) << simdattn::isa_name(isa) << " worst x " << neg.worst_x;
    EXPECT_LE(small.max_ulp, 2.0) << simdattn::isa_name(isa) << " worst x " << small.worst_x;
    EXPECT_LE(pos.max_ulp, 2.0) << simdattn::isa_name(isa) << " worst x " << pos.worst_x;
  }
}

TEST(SoftmaxExp, SpecialValuesAndFlushToZero) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (Isa isa : simdattn::usable_isas()) {
    const auto fn = simdattn::detail::kernels_for(isa).softmax.exp;
    const std::vector<float> x = {0.0f, -0.0f, -inf, 1e-7f, nan, -1e-7f, -88.0f, -104.0f, -1e30f};
    std::vector<float> y(x.size());
    fn(x.data(), y.data(), static_cast<std::int64_t>(x.size()));
    const char* name = simdattn::isa_name(isa);
    EXPECT_EQ(y[0], 1.0f) << name;
    EXPECT_EQ(y[1], 1.0f) << name;
    EXPECT_EQ(y[2], 0.0f) << name << ": exp(-inf) must be exactly 0 (the causal mask relies on it)";
    EXPECT_NEAR(y[3], 1.0f, 2e-7f) << name;
    EXPECT_TRUE(std::isnan(y[4])) << name;
    EXPECT_NEAR(y[5], 1.0f, 2e-7f) << name;
    for (std::size_t i = 6; i < x.size(); ++i) {
      EXPECT_GE(y[i], 0.0f) << name << " x=" << x[i];
      EXPECT_LE(y[i], std::numeric_limits<float>::min()) << name << " x=" << x[i];
    }
  }
}

}  // namespace
