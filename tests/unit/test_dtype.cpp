// tests/unit/test_dtype.cpp — stored weights (f16, bf16, q8_0, q4_0): the scalar conversions and
// the Q8_0 and Q4_0 encoders against an independent table (tools/make_dtype_table.py), every ISA's
// dequantizer against the scalar decode bit for bit, and sgemm_packed on stored weights
// against the reference on the stored values (derived bound) and bitwise against the f32
// product of the decoded matrix, on every ISA, path and thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "common/half.hpp"
#include "common/kv_ring.hpp"
#include "dispatch/kernel_table.hpp"
#include "modules/kv_cache_storage.hpp"
#include "drivers/gemm.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/dtype.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/error.hpp"
#include "simdattn/gemm.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/runtime.hpp"
#include "support/compare.hpp"
#include "support/gemm_tester.hpp"
#include "support/required_isas.hpp"

namespace simdattn::test {
namespace {

#include "dtype_table.inc"

using detail::WeightStorage;

constexpr DType kStored[] = {DType::f16, DType::bf16, DType::q8_0, DType::q4_0};
bool blocked(DType t) { return dtype_block(t) != 1; }

TEST(DTypeConversions, F32ToHalfTypesMatchTheIndependentTable) {
  for (const auto& row : kF32Conversions) {
    const float x = detail::f32_from_bits(row[0]);
    EXPECT_EQ(detail::f32_to_f16(x), row[1]) << std::hex << "f32 bits 0x" << row[0];
    EXPECT_EQ(detail::f32_to_bf16(x), row[2]) << std::hex << "f32 bits 0x" << row[0];
  }
}

TEST(DTypeConversions, HalfToF32MatchesTheTableAndRoundTripsEveryHalf) {
  for (const auto& row : kF16Values)
    EXPECT_EQ(detail::f32_bits(detail::f16_to_f32(static_cast<std::uint16_t>(row[0]))), row[1])
        << std::hex << "f16 0x" << row[0];
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float x = detail::f16_to_f32(static_cast<std::uint16_t>(h));
    // Round trip; a NaN comes back quiet (0x200 set) with its payload.
    const std::uint32_t back = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) ? h | 0x200u : h;
    ASSERT_EQ(detail::f32_to_f16(x), back) << std::hex << "f16 0x" << h;
  }
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float x = detail::bf16_to_f32(static_cast<std::uint16_t>(h));
    ASSERT_EQ(detail::f32_bits(x), h << 16);
    if (!std::isnan(x)) {
      ASSERT_EQ(detail::f32_to_bf16(x), h);
    }
  }
}

TEST(DTypeConversions, Q8_0BlocksMatchGgufsAlgorithm) {
  for (const auto& c : kQ8Cases) {
    float w[32];
    for (int i = 0; i < 32; ++i) w[i] = detail::f32_from_bits(c.w[i]);
    std::int8_t q[32];
    EXPECT_EQ(detail::q8_0_encode_block(w, 1, q), c.d);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(q[i], c.q[i]) << "value " << i << " = " << w[i];
  }
}

TEST(DTypeConversions, Q4_0BlocksMatchGgufsAlgorithm) {
  for (const auto& c : kQ4Cases) {
    float w[32];
    for (int i = 0; i < 32; ++i) w[i] = detail::f32_from_bits(c.w[i]);
    std::uint8_t q[32];
    EXPECT_EQ(detail::q4_0_encode_block(w, 1, q), c.d);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(q[i], c.q[i]) << "value " << i << " = " << w[i];
  }
  // The clamp at 15 and the sign of the scale: the case built for them is in the table.
  bool clamped = false;
  for (const auto& c : kQ4Cases)
    for (int i = 0; i < 32; ++i) clamped = clamped || (c.q[i] == 15 && (c.d & 0x8000u) != 0);
  EXPECT_TRUE(clamped);
}

// A block whose largest value is below ~1e-38: 1 / d overflows, so w / d would be Inf or NaN
// and its integer conversion undefined. Codes are then those of a zero block (scale 0 in f16).
TEST(DTypeConversions, BlocksTooSmallForAFiniteInverseScaleEncodeAsZero) {
  float w[32] = {};
  w[0] = 1e-39f;  // subnormal: d = w / 127 or w / -8, and 1 / d > FLT_MAX
  w[1] = -5e-40f;
  std::uint8_t q4[32];
  EXPECT_EQ(detail::q4_0_encode_block(w, 1, q4), 0x8000u);  // -0: d = max / -8 < 0
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q4[i], 8) << i;
  std::int8_t q8[32];
  EXPECT_EQ(detail::q8_0_encode_block(w, 1, q8), 0x0000u);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q8[i], 0) << i;
}

TEST(DTypeConversions, NamesRoundTrip) {
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0})
    EXPECT_EQ(parse_dtype(dtype_name(t)), t);
  EXPECT_THROW(parse_dtype("q4_1"), Error);
  EXPECT_EQ(dtype_block(DType::q8_0), 32);
  EXPECT_EQ(dtype_block(DType::q4_0), 32);
  EXPECT_EQ(dtype_block(DType::f16), 1);
}

// --- PackedMatrix in a storage type -------------------------------------------------------

std::vector<float> lcg_matrix(std::int64_t count, std::uint32_t seed, float scale) {
  std::vector<float> v(static_cast<std::size_t>(count));
  std::uint32_t s = seed;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(s >> 8) / 8388608.0f - 1.0f);
  }
  return v;
}

TEST(StoredWeights, ResidentBytesAreTheTypesShare) {
  const std::int64_t k = 768, n = 2304;  // GPT-2 small's QKV weight
  const std::vector<float> w = lcg_matrix(k * n, 1, 0.1f);
  const PackedMatrix f32(w.data(), k, Transpose::yes, k, n);
  const double base = static_cast<double>(f32.resident_bytes());
  EXPECT_GE(base, 4.0 * k * n);
  for (DType t : kStored) {
    const PackedMatrix p(w.data(), k, Transpose::yes, k, n, t);
    EXPECT_EQ(p.storage(), t);
    const double ratio = static_cast<double>(p.resident_bytes()) / base;
    EXPECT_LE(ratio, t == DType::q8_0 ? 0.28 : t == DType::q4_0 ? 0.15 : 0.52) << dtype_name(t);
    EXPECT_GE(ratio, t == DType::q8_0 ? 34.0 / 128.0 : t == DType::q4_0 ? 18.0 / 128.0 : 0.5)
        << dtype_name(t);
  }
  EXPECT_EQ(PackedMatrix().resident_bytes(), 0);
}

TEST(StoredWeights, BadShapesAndValuesAreClearErrors) {
  const std::vector<float> w = lcg_matrix(40 * 16, 2, 1.0f);
  try {
    PackedMatrix(w.data(), 16, Transpose::no, 40, 16, DType::q8_0);
    ADD_FAILURE() << "q8_0 with k = 40 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("k (40)"), std::string::npos) << e.what();
  }
  std::vector<float> big = lcg_matrix(32 * 16, 3, 1.0f);
  big[5 * 16 + 3] = 70000.0f;  // op(B)[5][3] with trans = no
  try {
    PackedMatrix(big.data(), 16, Transpose::no, 32, 16, DType::f16);
    ADD_FAILURE() << "70000 was stored as f16";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("[5][3]"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(PackedMatrix(big.data(), 16, Transpose::no, 32, 16, DType::bf16));
  EXPECT_NO_THROW(PackedMatrix(big.data(), 16, Transpose::no, 32, 16, DType::q8_0));
  big[5 * 16 + 3] = 1e10f;
  EXPECT_THROW(PackedMatrix(big.data(), 16, Transpose::no, 32, 16, DType::q8_0), Error);
  try {
    PackedMatrix(big.data(), 16, Transpose::no, 32, 16, DType::q4_0);  // 1e10 / 8 > 65504
    ADD_FAILURE() << "a q4_0 block of max 1e10 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("[0][3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("q4_0"), std::string::npos) << e.what();
  }
  big[5 * 16 + 3] = 65504.0f * 8;  // the largest block max whose scale is a finite half
  EXPECT_NO_THROW(PackedMatrix(big.data(), 16, Transpose::no, 32, 16, DType::q4_0));
  try {
    PackedMatrix(w.data(), 16, Transpose::no, 40, 16, DType::q4_0);
    ADD_FAILURE() << "q4_0 with k = 40 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("k (40)"), std::string::npos) << e.what();
  }
}

TEST(StoredWeights, StoredValuesAreTheEncodedValues) {
  const std::int64_t k = 64, n = 20;
  const std::vector<float> w = lcg_matrix(k * n, 4, 3.0f);  // [k, n]
  for (DType t : kStored) {
    const PackedMatrix p(w.data(), n, Transpose::no, k, n, t);
    const std::vector<float> v = reference::stored_values(p);
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t kk = 0; kk < k; ++kk) {
        const float x = w[static_cast<std::size_t>(kk * n + j)];
        float expect = x;
        if (t == DType::f16) expect = detail::f16_to_f32(detail::f32_to_f16(x));
        if (t == DType::bf16) expect = detail::bf16_to_f32(detail::f32_to_bf16(x));
        if (t == DType::q8_0) {
          std::int8_t q[32];
          const std::int64_t k0 = kk / 32 * 32;
          const std::uint16_t d = detail::q8_0_encode_block(&w[static_cast<std::size_t>(k0 * n + j)], n, q);
          expect = detail::f16_to_f32(d) * static_cast<float>(q[kk - k0]);
        }
        if (t == DType::q4_0) {
          std::uint8_t q[32];
          const std::int64_t k0 = kk / 32 * 32;
          const std::uint16_t d = detail::q4_0_encode_block(&w[static_cast<std::size_t>(k0 * n + j)], n, q);
          expect = detail::f16_to_f32(d) * static_cast<float>(q[kk - k0] - 8);
        }
        ASSERT_EQ(detail::f32_bits(v[static_cast<std::size_t>(kk * n + j)]),
                  detail::f32_bits(expect))
            << dtype_name(t) << " [" << kk << "][" << j << "]";
      }
  }
}

// --- Per ISA ------------------------------------------------------------------------------

class StoredWeightsIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    SIMDATTN_SKIP_UNLESS_USABLE(GetParam());
    before_ = active_isa();
    set_isa(GetParam());
  }
  void TearDown() override {
    if (isa_usable(GetParam())) set_isa(before_);
    set_num_threads(0);
  }
  Isa before_ = Isa::sse2;
};

// Every f16 and bf16 bit pattern through the ISA's dequantizer, against the scalar decode.
TEST_P(StoredWeightsIsa, DequantizersDecodeEveryHalfBitForBit) {
  const detail::KernelTable& t = detail::kernels_for(GetParam());
  const std::int64_t k = 4096;  // 4096 rows x 16 = every 16-bit pattern once
  std::vector<std::uint16_t> panel(static_cast<std::size_t>(k * 16));
  for (std::size_t i = 0; i < panel.size(); ++i) panel[i] = static_cast<std::uint16_t>(i);
  for (WeightStorage s : {WeightStorage::f16, WeightStorage::bf16}) {
    const auto fn = t.dequant[static_cast<int>(s)].fn;
    ASSERT_NE(fn, nullptr);
    std::vector<float> out(panel.size() + 16, -1.0f);
    // Odd slices: rows [3, 3 + 4090) then the rest, as the blocked driver's depth slices do.
    const auto* bytes = reinterpret_cast<const unsigned char*>(panel.data());
    fn(bytes, k * 32, 1, 0, 3, out.data());
    fn(bytes, k * 32, 1, 3, k - 3, out.data() + 3 * 16);
    for (std::size_t i = 0; i < panel.size(); ++i) {
      const float want = s == WeightStorage::f16 ? detail::f16_to_f32(panel[i])
                                                 : detail::bf16_to_f32(panel[i]);
      ASSERT_EQ(detail::f32_bits(out[i]), detail::f32_bits(want))
          << t.dequant[static_cast<int>(s)].name << " half 0x" << std::hex << panel[i];
    }
    EXPECT_EQ(out[panel.size()], -1.0f) << "wrote past the slice";
  }
}

TEST_P(StoredWeightsIsa, BlockDequantizersMatchTheStoredValues) {
  const std::int64_t k = 96, n = 40;
  std::vector<float> w = lcg_matrix(k * n, 5, 2.0f);
  w[7 * n + 33] = std::numeric_limits<float>::quiet_NaN();  // one block of column 33 is NaN
  w[50 * n + 2] = 1e-30f;
  for (std::int64_t kk = 64; kk < 96; ++kk) w[kk * n + 9] = 0.0f;  // an all-zero block
  for (DType t : {DType::q8_0, DType::q4_0}) {
  SCOPED_TRACE(dtype_name(t));
  const PackedMatrix p(w.data(), n, Transpose::no, k, n, t);
  const std::vector<float> v = reference::stored_values(p);
  const detail::PackedB& b = p.packed().view;
  const auto fn = detail::kernels_for(GetParam()).dequant[static_cast<int>(t)].fn;
  // Slices starting on even and odd rows (q4_0 stores rows in pairs), inside and across blocks.
  for (const auto& slice : {std::pair<std::int64_t, std::int64_t>{0, k}, {5, 40}, {31, 2}, {64, 32},
                            {1, 1}, {2, 3}, {33, 30}}) {
    const std::int64_t panels = (n + 15) / 16;
    std::vector<float> out(static_cast<std::size_t>(panels * slice.second * 16));
    fn(b.bytes, b.panel_bytes, panels, slice.first, slice.second, out.data());
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t r = 0; r < slice.second; ++r) {
        const float got = out[static_cast<std::size_t>((j / 16) * slice.second * 16 + r * 16 + j % 16)];
        const float want = v[static_cast<std::size_t>((slice.first + r) * n + j)];
        ASSERT_EQ(detail::f32_bits(got), detail::f32_bits(want))
            << "row " << slice.first + r << " col " << j;
      }
  }
  for (std::int64_t kk = 0; kk < 32; ++kk) EXPECT_TRUE(std::isnan(v[kk * n + 33]));
  EXPECT_FALSE(std::isnan(v[40 * n + 33]));
  }
}

// The product against stored weights: the reference on the stored values holds it to the
// derived bound (tests/support/gemm_tester.hpp), on both paths (small-M up to max_m: 8, or 16
// on AVX-512; blocked above), around the tile edges, with beta and bias, both layouts of B.
TEST_P(StoredWeightsIsa, ProductsMatchTheReferenceOnTheStoredValues) {
  for (DType t : kStored)
    for (std::int64_t m : {1, 2, 5, 8, 9, 15, 16, 17, 100})
      for (std::int64_t n : {1, 16, 17, 33, 70})
        for (std::int64_t k : {32, 64, 160})
          for (Transpose tr : {Transpose::no, Transpose::yes}) {
            const GemmTester g = GemmTester().m(m).n(n).k(k).trans(tr).storage(t).bias(n % 2 == 1)
                                     .beta(m % 3 == 0 ? 0.5f : 0.0f).misalign(m % 4);
            ASSERT_TRUE(g.test_packed());
          }
}

// Bits: the same as the f32 product against the decoded weights (the f32 kernels run on
// exactly the stored values), and the same for any thread count.
TEST_P(StoredWeightsIsa, BitsAreTheF32ProductOfTheDecodedWeightsForAnyThreadCount) {
  for (DType t : kStored)
    for (std::int64_t m : {1, 4, 8, 9, 64, 130}) {
      const std::int64_t k = 256, n = 300;
      const std::vector<float> a = lcg_matrix(m * k, 6, 1.0f);
      const std::vector<float> w = lcg_matrix(n * k, 7, 0.5f);  // [n, k]: nn.Linear layout
      const std::vector<float> bias = lcg_matrix(n, 8, 0.1f);
      const PackedMatrix stored(w.data(), k, Transpose::yes, k, n, t);
      const std::vector<float> decoded = reference::stored_values(stored);  // [k, n]
      const PackedMatrix f32(decoded.data(), n, Transpose::no, k, n);
      std::vector<float> want(static_cast<std::size_t>(m * n)), got(want.size());
      set_num_threads(1);
      sgemm_packed(m, 1.0f, a.data(), k, f32, 0.0f, want.data(), n, bias.data());
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        sgemm_packed(m, 1.0f, a.data(), k, stored, 0.0f, got.data(), n, bias.data());
        ASSERT_TRUE(bitwise_equal(want, got, std::string(dtype_name(t)) + " m " +
                                                 std::to_string(m) + " threads " +
                                                 std::to_string(threads)));
      }
    }
}

// A non-finite weight poisons exactly the outputs that read it: column j for f16/bf16 (as in
// f32), and for q8_0/q4_0 the column of its block, which reads NaN for all 32 rows of the block.
TEST_P(StoredWeightsIsa, NonFiniteWeightsPoisonTheirColumnOnly) {
  const std::int64_t k = 64, n = 40;
  for (DType t : kStored)
    for (std::int64_t m : {1, 20}) {
      std::vector<float> w = lcg_matrix(k * n, 9, 1.0f);  // [k, n]
      w[10 * n + 17] = std::numeric_limits<float>::quiet_NaN();
      w[40 * n + 30] = std::numeric_limits<float>::infinity();
      const PackedMatrix p(w.data(), n, Transpose::no, k, n, t);
      const std::vector<float> a = lcg_matrix(m * k, 10, 1.0f);
      std::vector<float> c(static_cast<std::size_t>(m * n));
      sgemm_packed(m, 1.0f, a.data(), k, p, 0.0f, c.data(), n);
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < n; ++j) {
          const float x = c[static_cast<std::size_t>(i * n + j)];
          if (j == 17 || (j == 30 && blocked(t)))
            EXPECT_TRUE(std::isnan(x)) << dtype_name(t) << " C[" << i << "][" << j << "] = " << x;
          else if (j == 30)
            EXPECT_TRUE(std::isinf(x) || std::isnan(x)) << dtype_name(t) << " C[" << i << "][30]";
          else
            EXPECT_TRUE(std::isfinite(x)) << dtype_name(t) << " C[" << i << "][" << j << "] = " << x;
        }
    }
}

// Packed once, run on every usable ISA.
TEST_P(StoredWeightsIsa, OnePackingServesEveryIsa) {
  for (DType t : kStored)
    EXPECT_TRUE(GemmTester().m(3).n(50).k(96).storage(t).test_packed_across(usable_isas()));
}

// --- Modules with stored weights ---------------------------------------------------------

TEST(StoredWeightModules, StateDictHoldsTheStoredValuesAndBytesShrink) {
  MultiHeadAttention mha(768, 768, 64, 0.0, 12, true);
  mha.init_random(3);
  const TensorMap f32_state = mha.state_dict();
  const std::int64_t f32_bytes = mha.weight_bytes();
  EXPECT_GE(f32_bytes, 4 * 768 * 768 * 4);
  for (DType t : kStored) {
    mha.set_weight_storage(DType::f32);  // first, or the load would round into the last type
    mha.load_state_dict(f32_state);
    mha.set_weight_storage(t);
    EXPECT_EQ(mha.weight_storage(), t);
    const double ratio = static_cast<double>(mha.weight_bytes()) / static_cast<double>(f32_bytes);
    EXPECT_LE(ratio, t == DType::q8_0 ? 0.28 : t == DType::q4_0 ? 0.15 : 0.52) << dtype_name(t);
    const TensorMap stored = mha.state_dict();
    const Tensor& w = f32_state.at("W_query.weight");
    const Tensor& ws = stored.at("W_query.weight");
    for (std::int64_t i = 0; i < 768 * 3; ++i) {  // rows 0..2 of [768, 768]: nn.Linear [out, in]
      float want = w[i];
      if (t == DType::f16) want = detail::f16_to_f32(detail::f32_to_f16(w[i]));
      if (t == DType::bf16) want = detail::bf16_to_f32(detail::f32_to_bf16(w[i]));
      if (!blocked(t)) {
        ASSERT_EQ(ws[i], want) << dtype_name(t) << " element " << i;
      }
    }
    // q8_0: value = f16(d) * q with q = round(w / d): off by <= d / 2 from rounding q, plus
    // |q| <= 127 times f16's rounding of d (<= d * 2^-11), block by block along d_in.
    if (t == DType::q8_0)
      for (std::int64_t blk = 0; blk < 768 / 32; ++blk) {
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(w[blk * 32 + i]));
        for (int i = 0; i < 32; ++i)
          ASSERT_LE(std::fabs(ws[blk * 32 + i] - w[blk * 32 + i]),
                    (0.5f + 127.0f / 2048.0f) * amax / 127.0f);
      }
    // q4_0: value = f16(d) * (q - 8) with d = m / -8, |d| = amax / 8: off by <= |d| / 2 from
    // truncating w / d + 8.5, plus |q - 8| <= 8 times f16's rounding of d (<= |d| * 2^-11),
    // except where the clamp at 15 moves the value of -m (w / d = 8) to 7 d: off by |d|.
    if (t == DType::q4_0)
      for (std::int64_t blk = 0; blk < 768 / 32; ++blk) {
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(w[blk * 32 + i]));
        const float d = amax / 8.0f;
        for (int i = 0; i < 32; ++i)
          ASSERT_LE(std::fabs(ws[blk * 32 + i] - w[blk * 32 + i]), (1.0f + 8.0f / 2048.0f) * d * 1.0001f);
      }
    EXPECT_EQ(stored.at("W_query.bias")[5], f32_state.at("W_query.bias")[5]);  // biases stay f32
  }
  // Back to f32 keeps the stored (rounded) values: nothing else was kept.
  mha.set_weight_storage(DType::f32);
  EXPECT_EQ(mha.weight_bytes(), f32_bytes);
}

TEST(StoredWeightModules, Q8NeedsWidthsInBlocksAndAFailedRepackChangesNothing) {
  MultiHeadAttention mha(40, 64, 16, 0.0, 2, false);
  mha.init_random(1);
  try {
    mha.set_weight_storage(DType::q8_0);
    ADD_FAILURE() << "q8_0 with d_in = 40 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("d_in (40)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(mha.weight_storage(), DType::f32);
  TensorMap big = mha.state_dict();
  big.at("W_key.weight")[7] = 1e6f;
  mha.load_state_dict(big);
  EXPECT_THROW(mha.set_weight_storage(DType::f16), Error);
  EXPECT_EQ(mha.weight_storage(), DType::f32);
  EXPECT_EQ(mha.state_dict().at("W_key.weight")[7], 1e6f);
}

// A decode loop through a KV cache on stored weights: the fast path's rows equal the
// reference's full forward on the same stored weights, to the module tolerance's order.
TEST(StoredWeightModules, KvCacheDecodeMatchesTheReference) {
  for (DType t : kStored) {
    MultiHeadAttention mha(64, 64, 32, 0.0, 4, true);
    mha.init_random(9);
    mha.set_weight_storage(t);
    const Tensor x({1, 20, 64}, lcg_matrix(20 * 64, 11, 1.0f));
    ForwardOptions ref;
    ref.backend = Backend::reference;
    const Tensor y_ref = mha.forward(x, ref);
    KVCache cache(mha, 1);
    for (std::int64_t t0 = 0; t0 < 20; t0 += 5) {
      Tensor chunk({1, 5, 64});
      for (std::int64_t i = 0; i < 5 * 64; ++i) chunk[i] = x[t0 * 64 + i];
      const Tensor y = mha.forward(chunk, cache);
      for (std::int64_t i = 0; i < 5 * 64; ++i)
        ASSERT_NEAR(y[i], y_ref[t0 * 64 + i], 2e-5f) << dtype_name(t) << " token " << t0 + i / 64;
    }
  }
}

// --- KV caches stored in f16, bf16, q8_0 ---------------------------------------------------

constexpr DType kKvTypes[] = {DType::f16, DType::bf16, DType::q8_0};

// The stored decode kernel against the f32 kernel on the decoded rows: the same bits (ring
// splits, dropout multipliers, a NaN value, head dims with tails for f16/bf16).
TEST_P(StoredWeightsIsa, StoredCacheDecodeKernelHasTheF32KernelsBitsOnDecodedRows) {
  const detail::KernelTable& t = detail::kernels_for(GetParam());
  for (DType type : kKvTypes)
    for (std::int64_t hd : {32, 64, 96, 128, 256, 17, 40})
      for (std::int64_t n : {1, 7, 16, 33, 100}) {
        if (type == DType::q8_0 && hd % 32 != 0) continue;
        const detail::WeightStorage ws = detail::weight_storage(type);
        const std::int64_t rb = detail::kv_row_bytes(ws, hd);
        const std::vector<float> kf = lcg_matrix(n * hd, 31 + static_cast<std::uint32_t>(n), 2.0f);
        std::vector<float> vf = lcg_matrix(n * hd, 37 + static_cast<std::uint32_t>(hd), 1.0f);
        if (n == 33) vf[5 * hd + 3] = std::numeric_limits<float>::quiet_NaN();
        std::vector<unsigned char> kb(static_cast<std::size_t>(n * rb)), vb(kb.size());
        std::vector<float> kd(static_cast<std::size_t>(n * hd)), vd(kd.size());
        for (std::int64_t j = 0; j < n; ++j) {
          detail::kv_encode_row(&kf[j * hd], hd, type, &kb[j * rb]);
          detail::kv_encode_row(&vf[j * hd], hd, type, &vb[j * rb]);
          detail::kv_decode_row(&kb[j * rb], hd, type, &kd[j * hd]);
          detail::kv_decode_row(&vb[j * rb], hd, type, &vd[j * hd]);
        }
        const std::vector<float> q = lcg_matrix(hd, 41, 1.0f);
        std::vector<float> keep(static_cast<std::size_t>(n));
        for (std::int64_t j = 0; j < n; ++j) keep[j] = j % 3 == 0 ? 0.0f : 1.5f;
        for (std::int64_t split : {n, n / 2, std::int64_t{1}})
          for (bool drop : {false, true}) {
            // Rows [split, n) come first in memory, then [0, split): a ring that wrapped.
            const auto wrap = [&](auto& rows, std::int64_t width) {
              std::vector<typename std::decay_t<decltype(rows)>::value_type> out;
              out.insert(out.end(), rows.begin() + split * width, rows.end());
              out.insert(out.end(), rows.begin(), rows.begin() + split * width);
              return out;
            };
            const auto kbw = wrap(kb, rb), vbw = wrap(vb, rb);
            const auto kdw = wrap(kd, hd), vdw = wrap(vd, hd);
            const std::int64_t tail = n - split;  // rows before the wrap point in memory
            std::vector<float> scores(static_cast<std::size_t>(n)), a(static_cast<std::size_t>(hd)),
                b(a.size());
            detail::DecodeRowArgs args;
            args.q = q.data();
            args.split = tail;
            args.keys = n;
            args.head_dim = hd;
            args.scale = 0.125f;
            args.keep = drop ? keep.data() : nullptr;
            args.scores = scores.data();
            args.k = kdw.data();
            args.v = vdw.data();
            args.k_wrap = kdw.data() + tail * hd;
            args.v_wrap = vdw.data() + tail * hd;
            args.kv_stride = hd;
            args.out = a.data();
            t.decode.row(args);
            args.kb = kbw.data();
            args.vb = vbw.data();
            args.kb_wrap = kbw.data() + tail * rb;
            args.vb_wrap = vbw.data() + tail * rb;
            args.row_bytes = rb;
            args.k = args.v = args.k_wrap = args.v_wrap = nullptr;
            args.out = b.data();
            t.decode.stored[static_cast<int>(ws)](args);
            ASSERT_TRUE(bitwise_equal(a, b, std::string(dtype_name(type)) + " hd " +
                                                std::to_string(hd) + " n " + std::to_string(n) +
                                                " split " + std::to_string(split)));
          }
        // The flash path's row dequantizer: the scalar decode's bits.
        std::vector<float> rows(kd.size());
        t.decode.kv_dequant[static_cast<int>(ws)](kb.data(), rb, n, hd, rows.data());
        ASSERT_TRUE(bitwise_equal(kd, rows, std::string(dtype_name(type)) + " kv_dequant"));
      }
}

// A module whose projections are exact in f32 (inputs and weights on a coarse binary grid), so
// both backends compute the same K and V and store the same bytes: fast vs reference then
// differ only by the attention's f32 arithmetic, held to a bound derived from the data.
struct ExactModule {
  static constexpr std::int64_t kHeads = 2, kHd = 32;  // head_dim a whole q8_0 block
  MultiHeadAttention mha{64, 64, 64, 0.0, kHeads, true};
  Tensor x{{1, 30, 64}};
  ExactModule() {
    TensorMap state = mha.state_dict();
    std::uint32_t s = 5;
    const auto grid = [&](float step, int levels) {  // a multiple of step in [-levels, levels]
      s = s * 1664525u + 1013904223u;
      return step * static_cast<float>(static_cast<int>((s >> 9) % (2 * levels + 1)) - levels);
    };
    for (auto& [name, t] : state)
      for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = grid(1.0f / 64, 8);
    mha.load_state_dict(state);
    for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = grid(1.0f / 16, 8);
  }
};

TEST(StoredKvCaches, FastMatchesTheReferenceOnTheSameStoredKV) {
  for (DType type : kKvTypes) {
    ExactModule e;
    const TensorMap w = e.mha.state_dict();
    KVCache fast(e.mha, 1, 0, false, type), ref(e.mha, 1, 0, false, type);
    ForwardOptions ro;
    ro.backend = Backend::reference;
    // Bound (why): q and k are exact, so a score s_j = q.k_j / sqrt(hd) errs by the f32 dot
    // product's rounding, <= (hd + 2) eps |q|.|k_j| / sqrt(hd); the softmax weights then err
    // relatively by <= exp(2 ds) - 1 plus the exp and sum roundings (n + 8) eps; the context
    // by that times max |v| plus its own (n + 2) eps max |v|; out_proj multiplies it by
    // max_o sum_c |Wo_oc| and adds (inner + 4) eps (sum |Wo| |ctx| + |bo|). Doubled.
    const double eps = std::numeric_limits<float>::epsilon();
    double wo_row = 0.0, bo = 0.0;
    for (std::int64_t o = 0; o < 64; ++o) {
      double r = 0.0;
      for (std::int64_t c = 0; c < 64; ++c) r += std::fabs(w.at("out_proj.weight")[o * 64 + c]);
      wo_row = std::max(wo_row, r);
      bo = std::max(bo, static_cast<double>(std::fabs(w.at("out_proj.bias")[o])));
    }
    const std::int64_t splits[] = {5, 5, 7, 1, 1, 1, 2, 1, 3, 1, 1, 1, 1};  // 30 tokens
    std::int64_t t0 = 0;
    for (std::int64_t len : splits) {
      Tensor chunk({1, len, 64});
      for (std::int64_t i = 0; i < len * 64; ++i) chunk[i] = e.x[t0 * 64 + i];
      const Tensor yf = e.mha.forward(chunk, fast);
      const Tensor yr = e.mha.forward(chunk, ref, ro);
      // max |q|.|k_j| and |v| over what this chunk sees, from the stored cache (exact values).
      const std::int64_t keys = t0 + len;
      const auto& st = ref.storage();
      double qk = 0.0, vmax = 0.0;
      constexpr std::int64_t hd = ExactModule::kHd;
      std::vector<float> krow(hd), vrow(hd);
      {
        // q of this chunk's tokens, exactly (the grid makes the projection exact in double).
        std::vector<double> q(static_cast<std::size_t>(len * 64));
        for (std::int64_t i = 0; i < len; ++i)
          for (std::int64_t o = 0; o < 64; ++o) {
            double acc = w.at("W_query.bias")[o];
            for (std::int64_t c = 0; c < 64; ++c)
              acc += static_cast<double>(w.at("W_query.weight")[o * 64 + c]) * e.x[(t0 + i) * 64 + c];
            q[static_cast<std::size_t>(i * 64 + o)] = acc;
          }
        detail::KVRing ring = const_cast<KVCache::Storage&>(st).view();
        for (std::int64_t h = 0; h < ExactModule::kHeads; ++h)
          for (std::int64_t j = 0; j < keys; ++j) {
            detail::kv_decode_row(ring.k_bytes(0, h, j), hd, type, krow.data());
            detail::kv_decode_row(ring.v_bytes(0, h, j), hd, type, vrow.data());
            for (std::int64_t c = 0; c < hd; ++c)
              vmax = std::max(vmax, static_cast<double>(std::fabs(vrow[c])));
            for (std::int64_t i = 0; i < len; ++i) {
              double kk = 0.0;
              for (std::int64_t c = 0; c < hd; ++c)
                kk += std::fabs(krow[c] * q[static_cast<std::size_t>(i * 64 + h * hd + c)]);
              qk = std::max(qk, kk);
            }
          }
      }
      const double ds = (hd + 2) * eps * qk / std::sqrt(static_cast<double>(hd));
      const double rel_w = std::expm1(2.0 * ds) + (keys + 8) * eps;
      const double ctx = rel_w * vmax + (keys + 2) * eps * vmax;
      const double tol = 2.0 * (ctx * wo_row + (64 + 4) * eps * (wo_row * (vmax + ctx) + bo)) + 1e-30;
      ASSERT_TRUE(all_close(yr.values(), yf.values(), tol, 0.0,
                            std::string(dtype_name(type)) + " tokens " + std::to_string(t0) + "+" +
                                std::to_string(len)));
      t0 += len;
    }
    EXPECT_EQ(fast.length(), 30);
  }
}

// The KV row encoding against its definition: every value within the type's rounding of the
// original (f16 and bf16 round to nearest: half an ulp, 2^-11 and 2^-8 relative for normals;
// q8_0: d / 2 from rounding q plus |q| <= 127 times f16's rounding of d, d = amax / 127 of the
// block), NaN where the row holds one (per value for f16/bf16, per block for q8_0).
TEST(StoredKvCaches, RowEncodingStaysWithinTheTypesRounding) {
  for (DType type : kKvTypes)
    for (std::int64_t hd : {32, 64, 96}) {
      std::vector<float> row = lcg_matrix(hd, 50 + static_cast<std::uint32_t>(hd), 3.0f);
      row[3] = 1e-3f;
      row[hd - 1] = -2.5f;
      std::vector<unsigned char> enc(static_cast<std::size_t>(
          detail::kv_row_bytes(detail::weight_storage(type), hd)));
      std::vector<float> dec(static_cast<std::size_t>(hd));
      detail::kv_encode_row(row.data(), hd, type, enc.data());
      detail::kv_decode_row(enc.data(), hd, type, dec.data());
      for (std::int64_t c = 0; c < hd; ++c) {
        double bound = 0.0;
        if (type == DType::f16) bound = std::ldexp(std::fabs(row[c]), -11) + std::ldexp(1.0, -25);
        if (type == DType::bf16) bound = std::ldexp(std::fabs(row[c]), -8);
        if (type == DType::q8_0) {
          double amax = 0.0;
          for (std::int64_t i = c / 32 * 32; i < c / 32 * 32 + 32; ++i)
            amax = std::max(amax, static_cast<double>(std::fabs(row[i])));
          bound = (0.5 + 127.0 / 2048.0) * amax / 127.0;
        }
        ASSERT_LE(std::fabs(static_cast<double>(dec[c]) - row[c]), bound)
            << dtype_name(type) << " hd " << hd << " value " << c << " = " << row[c];
      }
      row[5] = std::numeric_limits<float>::quiet_NaN();
      detail::kv_encode_row(row.data(), hd, type, enc.data());
      detail::kv_decode_row(enc.data(), hd, type, dec.data());
      for (std::int64_t c = 0; c < hd; ++c)
        EXPECT_EQ(std::isnan(dec[c]), c == 5 || (type == DType::q8_0 && c < 32))
            << dtype_name(type) << " value " << c;
    }
}

TEST(StoredKvCaches, BytesAndErrors) {
  MultiHeadAttention mha(64, 64, 100, 0.0, 4, true);
  const std::int64_t f32 = KVCache(mha, 2).bytes();
  EXPECT_EQ(f32, 2 * 2 * 4 * 100 * 16 * 4);
  EXPECT_EQ(KVCache(mha, 2, 0, false, DType::f16).bytes() * 2, f32);
  EXPECT_EQ(KVCache(mha, 2, 0, false, DType::bf16).kv_type(), DType::bf16);
  MultiHeadAttention wide(64, 128, 10, 0.0, 2, true);  // head_dim 64
  EXPECT_EQ(KVCache(wide, 1, 0, false, DType::q8_0).bytes(), 2 * 2 * 10 * 2 * 34);
  try {
    KVCache(mha, 1, 0, false, DType::q8_0);  // head_dim 16
    ADD_FAILURE() << "q8_0 with head_dim 16 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("head_dim (16)"), std::string::npos) << e.what();
  }
}

constexpr Isa kIsas[] = {Isa::sse2, Isa::avx2, Isa::avx512, Isa::neon};
INSTANTIATE_TEST_SUITE_P(AllIsas, StoredWeightsIsa, ::testing::ValuesIn(kIsas),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(isa_name(info.param));
                         });

}  // namespace
}  // namespace simdattn::test
