// tests/unit/test_attention_fast.cpp — the flash-attention driver (detail::flash_attention) on
// strided Q/K/V, against a double-precision oracle that computes attention the way the
// reference does, on every usable ISA and thread count: sequence lengths around the tile and
// block sizes, head dims 1..128 with remainders, several heads and batches, causal offsets,
// dropout masks, large logits, non-finite values, bitwise determinism across thread counts,
// and that nothing outside the output rows is written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "drivers/attention_decode.hpp"
#include "drivers/attention_flash.hpp"
#include "support/compare.hpp"
#include "test_attention_fast_support.hpp"

namespace simdattn::test {
namespace {

/// Builds one attention problem laid out like the modules' QKV GEMM output: row t of batch b
/// holds Q | K | V for all heads side by side, plus `pad` unused floats (NaN: reading them
/// would poison the result). The output rows are heads side by side plus `pad` sentinel
/// floats that must survive.
class AttentionTester {
 public:
  AttentionTester& batch(std::int64_t v) { batch_ = v; return *this; }
  AttentionTester& heads(std::int64_t v) { heads_ = v; return *this; }
  AttentionTester& tokens(std::int64_t v) { q_len_ = kv_len_ = v; return *this; }
  /// Queries are the last q_len of kv_len positions (a KV-cache step) when q_offset is set.
  AttentionTester& q_len(std::int64_t v) { q_len_ = v; return *this; }
  AttentionTester& kv_len(std::int64_t v) { kv_len_ = v; return *this; }
  AttentionTester& q_offset(std::int64_t v) { q_offset_ = v; return *this; }
  AttentionTester& head_dim(std::int64_t v) { hd_ = v; return *this; }
  AttentionTester& causal(bool v) { causal_ = v; return *this; }
  /// true (default, plain forwards): the book's 0 * V for masked keys; false (KV caches): a
  /// query reads only the keys it sees.
  AttentionTester& book_masking(bool v) { book_ = v; return *this; }
  /// Runs the decode driver (detail::decode_attention: one query row at a time, vectorised
  /// along head_dim) instead of the flash driver; it has KV-cache semantics (book_masking off).
  AttentionTester& decode(bool v) {
    decode_ = v;
    if (v) book_ = false;
    return *this;
  }
  /// K/V as a ring of kv_len rows whose key 0 is row `start` (a KV cache).
  AttentionTester& ring_start(std::int64_t v) { ring_start_ = v; return *this; }
  AttentionTester& scale(double v) { scale_ = v; return *this; }
  AttentionTester& pad(std::int64_t v) { pad_ = v; return *this; }
  AttentionTester& range(float v) { range_ = v; return *this; }
  AttentionTester& dropout(double p, std::uint64_t seed) {
    dropout_.p = p;
    dropout_.seed = seed;
    return *this;
  }
  AttentionTester& seed(std::uint32_t v) { seed_ = v; return *this; }
  /// Sets element d of row t of Q (which = 0), K (1) or V (2) of (b, h) after the random fill.
  AttentionTester& poke(int which, std::int64_t b, std::int64_t h, std::int64_t t, std::int64_t d,
                        float value) {
    pokes_.push_back({which, b, h, t, d, value});
    return *this;
  }

  std::string describe() const {
    std::ostringstream os;
    os << "B " << batch_ << " H " << heads_ << " Tq " << q_len_ << " Tkv " << kv_len_ << " hd "
       << hd_ << " causal " << causal_ << " q_offset " << q_offset_ << " pad " << pad_
       << " dropout " << dropout_.p << " range " << range_ << (decode_ ? " decode" : "")
       << " ring " << ring_start_ << " isa " << isa_name(active_isa())
       << " threads " << num_threads();
    return os.str();
  }

  /// Runs the driver; returns the output buffer (rows with their padding).
  std::vector<float> run_fast() const {
    build();
    detail::FlashProblem p;
    p.batch = batch_;
    p.heads = heads_;
    p.q_len = q_len_;
    p.kv_len = kv_len_;
    p.head_dim = hd_;
    p.q = qkv_.data() + (kv_len_ - q_len_) * ld_;  // queries: the last q_len rows
    p.k = qkv_.data() + inner();
    p.v = qkv_.data() + 2 * inner();
    p.q_batch_stride = p.k_batch_stride = p.v_batch_stride = kv_len_ * ld_;
    p.q_head_stride = p.k_head_stride = p.v_head_stride = hd_;
    p.q_row_stride = p.k_row_stride = p.v_row_stride = ld_;
    std::vector<float> out(static_cast<std::size_t>(batch_ * q_len_ * ldo()), kSentinel);
    p.out = out.data();
    p.out_batch_stride = q_len_ * ldo();
    p.out_head_stride = hd_;
    p.out_row_stride = ldo();
    p.scale = static_cast<float>(scale());
    p.causal = causal_;
    p.q_offset = q_offset_;
    p.dropout = dropout_;
    p.propagate_masked_nonfinite = book_;
    if (ring_start_ != 0) {
      p.kv_ring = kv_len_;
      p.kv_ring_start = ring_start_;
    }
    if (decode_)
      detail::decode_attention(&p, 1);
    else
      detail::flash_attention(p);
    return out;
  }

  ::testing::AssertionResult test() const {
    const std::vector<float> out = run_fast();
    StridedAttention o;
    o.batch = batch_;
    o.heads = heads_;
    o.q_len = q_len_;
    o.kv_len = kv_len_;
    o.head_dim = hd_;
    o.q = qkv_.data() + (kv_len_ - q_len_) * ld_;
    o.k = qkv_.data() + inner();
    o.v = qkv_.data() + 2 * inner();
    o.qb = o.kb = o.vb = kv_len_ * ld_;
    o.qh = o.kh = o.vh = hd_;
    o.qr = o.kr = o.vr = ld_;
    o.scale = static_cast<double>(static_cast<float>(scale()));
    o.causal = causal_;
    o.book_masking = book_;
    o.ring_start = ring_start_;
    o.q_offset = q_offset_;
    o.dropout = dropout_;
    const std::vector<float> expected = oracle_attention(o);

    double qmax = 0, kmax = 0, vmax = 0;
    for (std::int64_t b = 0; b < batch_; ++b)
      for (std::int64_t t = 0; t < kv_len_; ++t) {
        const float* row = qkv_.data() + (b * kv_len_ + t) * ld_;
        qmax = std::max(qmax, abs_max(row, static_cast<std::size_t>(inner())));
        kmax = std::max(kmax, abs_max(row + inner(), static_cast<std::size_t>(inner())));
        vmax = std::max(vmax, abs_max(row + 2 * inner(), static_cast<std::size_t>(inner())));
      }
    const double tol = attention_tolerance(std::fabs(o.scale) * hd_ * qmax * kmax, hd_, kv_len_,
                                           vmax, dropout_.active() ? dropout_.keep_scale() : 1.0);
    for (std::int64_t b = 0; b < batch_; ++b)
      for (std::int64_t t = 0; t < q_len_; ++t) {
        const float* row = out.data() + (b * q_len_ + t) * ldo();
        for (std::int64_t c = inner(); c < ldo(); ++c)
          if (std::memcmp(&row[c], &kSentinel, sizeof(float)) != 0)
            return ::testing::AssertionFailure() << describe() << ": padding written at row " << t;
        for (std::int64_t h = 0; h < heads_; ++h) {
          const float* e = expected.data() + ((b * heads_ + h) * q_len_ + t) * hd_;
          std::ostringstream what;
          what << describe() << " (b " << b << ", h " << h << ", query " << t << ")";
          auto r = all_close(e, row + h * hd_, hd_, tol, 0.0, what.str());
          if (!r) return r;
        }
      }
    return ::testing::AssertionSuccess();
  }

 private:
  static constexpr float kSentinel = -12345.678f;
  struct Poke {
    int which;
    std::int64_t b, h, t, d;
    float value;
  };
  std::int64_t inner() const { return heads_ * hd_; }
  double scale() const { return scale_ != 0.0 ? scale_ : 1.0 / std::sqrt(static_cast<double>(hd_)); }
  std::int64_t ldo() const { return inner() + pad_; }
  void build() const {
    ld_ = 3 * inner() + pad_;
    qkv_ = random_values(static_cast<std::size_t>(batch_ * kv_len_ * ld_), seed_, -range_, range_);
    for (std::int64_t r = 0; r < batch_ * kv_len_; ++r)
      for (std::int64_t c = 3 * inner(); c < ld_; ++c) qkv_[static_cast<std::size_t>(r * ld_ + c)] = kNanF;
    for (const Poke& p : pokes_) {
      const std::int64_t row = p.b * kv_len_ + p.t + (p.which == 0 ? kv_len_ - q_len_ : 0);
      qkv_[static_cast<std::size_t>(row * ld_ + p.which * inner() + p.h * hd_ + p.d)] = p.value;
    }
  }

  std::int64_t batch_ = 1, heads_ = 1, q_len_ = 1, kv_len_ = 1, hd_ = 8, q_offset_ = 0, pad_ = 0;
  double scale_ = 0.0;  // 0: 1/sqrt(head_dim)
  bool causal_ = true;
  bool book_ = true;
  bool decode_ = false;
  std::int64_t ring_start_ = 0;
  float range_ = 1.0f;
  std::uint32_t seed_ = 1;
  detail::DropoutParams dropout_;
  std::vector<Poke> pokes_;
  mutable std::int64_t ld_ = 0;
  mutable std::vector<float> qkv_;
};

using FastAttentionDriver = IsaThreadsTest;

constexpr std::int64_t kTokens[] = {1,  2,  3,  4,  5,   6,   7,   8,   9,   10,  11, 12, 13,
                                    14, 15, 16, 17, 31,  32,  33,  63,  64,  65,  127, 128, 129, 300};
constexpr std::int64_t kHeadDims[] = {1, 2, 3, 7, 8, 16, 31, 64, 65, 128};
constexpr std::int64_t kHeads[] = {1, 2, 3, 12};

TEST_P(FastAttentionDriver, SequenceLengthsHeadDimsHeadsBatches) {
  // Every T, each with two head dims and a rotating (heads, batch); small T also get every
  // head dim. Costs are kept low by pairing large T with few heads.
  std::uint32_t seed = 1;
  std::int64_t idx = 0;
  for (std::int64_t t : kTokens) {
    for (int rep = 0; rep < 2; ++rep, ++idx) {
      const std::int64_t hd = kHeadDims[(idx * 3 + rep) % 10];
      const std::int64_t heads = t > 100 ? kHeads[idx % 2] : kHeads[idx % 4];
      const std::int64_t batch = 1 + idx % 3;
      ASSERT_TRUE(AttentionTester().batch(batch).heads(heads).tokens(t).head_dim(hd)
                      .causal(idx % 4 != 3).pad(idx % 3 == 0 ? 5 : 0).seed(seed++).test());
    }
  }
  for (std::int64_t hd : kHeadDims)
    ASSERT_TRUE(AttentionTester().batch(2).heads(3).tokens(13).head_dim(hd).seed(seed++).test());
}

TEST_P(FastAttentionDriver, EverySmallShape) {
  // Exhaustive over small sizes: every remainder of the key and head-dim micro-tiles and of
  // the query panel, causal and not.
  std::uint32_t seed = 500;
  for (std::int64_t t = 1; t <= 26; ++t)
    for (std::int64_t hd = 1; hd <= 9; ++hd)
      for (bool causal : {true, false})
        ASSERT_TRUE(AttentionTester().batch(1 + t % 2).heads(1 + hd % 3).tokens(t).head_dim(hd)
                        .causal(causal).seed(seed++).test());
}

TEST_P(FastAttentionDriver, UnmaskedAndLongSequences) {
  ASSERT_TRUE(AttentionTester().heads(2).tokens(300).head_dim(64).causal(false).test());
  ASSERT_TRUE(AttentionTester().heads(1).tokens(300).head_dim(7).causal(false).pad(3).test());
  ASSERT_TRUE(AttentionTester().tokens(513).head_dim(16).seed(4).test());
  // Long enough for the 16-panel query blocks of long sequences.
  ASSERT_TRUE(AttentionTester().tokens(2100).head_dim(8).pad(3).seed(5).test());
}

TEST_P(FastAttentionDriver, QueryOffsetsLikeAKvCacheStep) {
  // q_len queries at positions kv_len - q_len .. kv_len - 1 against every key.
  for (std::int64_t q : {1, 5, 40})
    for (std::int64_t kv : {q, q + 1, q + 97})
      ASSERT_TRUE(AttentionTester().batch(2).heads(2).q_len(q).kv_len(kv).q_offset(kv - q)
                      .head_dim(16).seed(std::uint32_t(q * 1000 + kv)).test());
}

TEST_P(FastAttentionDriver, LargeLogitsStayFinite) {
  // |q|,|k| up to 40 at head dim 64: scaled logits up to ~1e4 (the tolerance widens with them).
  for (float range : {10.0f, 40.0f})
    ASSERT_TRUE(AttentionTester().heads(2).tokens(130).head_dim(64).range(range).seed(21).test());
  std::vector<float> out = AttentionTester().heads(1).tokens(65).head_dim(64).range(40.0f).run_fast();
  for (float x : out) ASSERT_FALSE(std::isnan(x));
}

TEST_P(FastAttentionDriver, DropoutMasksMatchTheReferenceDraws) {
  for (double p : {0.1, 0.5, 0.9})
    ASSERT_TRUE(AttentionTester().batch(2).heads(3).tokens(131).head_dim(16)
                    .dropout(p, 1234 + static_cast<std::uint64_t>(p * 10)).test());
  ASSERT_TRUE(AttentionTester().heads(2).tokens(70).head_dim(8).causal(false).dropout(0.3, 5).test());
  ASSERT_TRUE(AttentionTester().heads(2).q_len(9).kv_len(50).q_offset(41).head_dim(8)
                  .dropout(0.3, 6).test());
}

TEST_P(FastAttentionDriver, NonFiniteValuesPropagateLikeTheReference) {
  // NaN / inf in one V element: the reference multiplies it by every weight, masked zeros
  // included, so the column is NaN (or inf) for every query, also those that cannot see it.
  ASSERT_TRUE(AttentionTester().heads(2).tokens(200).head_dim(8).poke(2, 0, 1, 150, 3, kNanF).test());
  ASSERT_TRUE(AttentionTester().heads(1).tokens(40).head_dim(5).poke(2, 0, 0, 39, 0, kInfF).test());
  ASSERT_TRUE(AttentionTester().heads(1).tokens(40).head_dim(5).poke(2, 0, 0, 3, 4, -kInfF)
                  .poke(2, 0, 0, 30, 4, kInfF).test());
  // NaN in a key: NaN rows for the queries that see it, nothing for the others.
  ASSERT_TRUE(AttentionTester().heads(2).tokens(150).head_dim(16).poke(1, 0, 0, 100, 2, kNanF).test());
  // NaN in a query: that row only. +inf in a key gives inf - inf = NaN rows.
  ASSERT_TRUE(AttentionTester().heads(1).tokens(99).head_dim(16).poke(0, 0, 0, 20, 2, kNanF).test());
  ASSERT_TRUE(AttentionTester().heads(1).tokens(99).head_dim(16).poke(1, 0, 0, 20, 0, kInfF).test());
  ASSERT_TRUE(AttentionTester().heads(1).tokens(60).head_dim(3).causal(false)
                  .poke(2, 0, 0, 7, 1, kNanF).test());
  // A key of -inf scores (q . k = -inf for every query): weight 0, finite rows.
  ASSERT_TRUE(AttentionTester().heads(1).tokens(30).head_dim(1).range(1.0f).scale(1.0)
                  .poke(1, 0, 0, 0, 0, -kInfF).test());
}

TEST_P(FastAttentionDriver, HiddenNonFiniteValuesNeverReachAQueryThroughACache) {
  // KV-cache semantics: a query sums only the keys it sees, so a NaN / inf value or key of a
  // later token leaves earlier rows finite, in the diagonal block too (0 * NaN is never taken).
  ASSERT_TRUE(AttentionTester().book_masking(false).heads(2).tokens(200).head_dim(8)
                  .poke(2, 0, 1, 150, 3, kNanF).test());
  for (std::int64_t t : {0, 5, 23, 24, 25, 39})
    ASSERT_TRUE(AttentionTester().book_masking(false).heads(1).tokens(40).head_dim(5)
                    .poke(2, 0, 0, t, 1, kInfF).poke(1, 0, 0, t, 2, kNanF).test())
        << "token " << t;
  ASSERT_TRUE(AttentionTester().book_masking(false).heads(2).q_len(9).kv_len(50).q_offset(41)
                  .head_dim(8).poke(2, 0, 0, 45, 0, kNanF).dropout(0.3, 9).test());
}

TEST_P(FastAttentionDriver, RingBufferKeysMatchTheOracle) {
  // A KV cache is a ring: logical key j lives in row (start + j) % kv_len. Starts that wrap
  // inside a key block (128), at its edge, and at the first and last row.
  for (std::int64_t start : {1, 77, 127, 128, 129, 199})
    for (std::int64_t q : {1, 3, 70}) {
      ASSERT_TRUE(AttentionTester().book_masking(false).heads(2).q_len(q).kv_len(200)
                      .q_offset(200 - q).head_dim(16).ring_start(start).seed(3).test())
          << "start " << start << " q " << q;
    }
  ASSERT_TRUE(AttentionTester().book_masking(false).q_len(5).kv_len(300).q_offset(295)
                  .head_dim(8).ring_start(150).dropout(0.4, 3).test());
}

TEST_P(FastAttentionDriver, SameBitsForOneAndManyThreads) {
  for (bool causal : {true, false}) {
    AttentionTester t;
    t.batch(3).heads(3).tokens(257).head_dim(24).causal(causal).dropout(causal ? 0.2 : 0.0, 9)
        .seed(77);
    set_num_threads(1);
    const std::vector<float> one = t.run_fast();
    set_num_threads(0);
    const std::vector<float> many = t.run_fast();
    EXPECT_TRUE(bitwise_equal(one, many, t.describe()));
  }
}

// The decode kernel groups W keys (the vector width: 4, 8 or 16) per score reduction and has
// unrolled variants for head dims 32, 64, 96, 128 and (8 or 16 lanes) 256: key counts around every group edge
// of every ISA, head dims on, beside and between those, one and two queries per problem.
TEST_P(FastAttentionDriver, DecodeKernelAroundEveryGroupEdgeAndHeadDim) {
  constexpr std::int64_t kDecodeHeadDims[] = {1,  3,  4,  8,  15, 16,  17,  31,  32,  33,  40,
                                              48, 63, 64, 65, 80, 96, 127, 128, 129, 256};
  constexpr std::int64_t kKeys[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 49, 100, 259};
  std::uint32_t seed = 900;
  std::int64_t idx = 0;
  for (std::int64_t hd : kDecodeHeadDims)
    for (std::int64_t kv : kKeys) {
      const std::int64_t q = 1 + idx % 2, heads = 1 + idx % 3;
      ++idx;
      if (q > kv) continue;
      ASSERT_TRUE(AttentionTester().decode(true).batch(1 + idx % 2).heads(heads).q_len(q)
                      .kv_len(kv).q_offset(kv - q).head_dim(hd).pad(idx % 4 == 0 ? 3 : 0)
                      .seed(seed++).test());
    }
  // Large logits, dropout, a ring that wraps inside a group, not causal.
  for (std::int64_t hd : {64, 128, 40}) {
    ASSERT_TRUE(AttentionTester().decode(true).heads(2).q_len(1).kv_len(130).q_offset(129)
                    .head_dim(hd).range(10.0f).seed(seed++).test());
    ASSERT_TRUE(AttentionTester().decode(true).heads(2).q_len(3).kv_len(70).q_offset(67)
                    .head_dim(hd).dropout(0.4, 17).seed(seed++).test());
    for (std::int64_t start : {1, 5, 16, 37})
      ASSERT_TRUE(AttentionTester().decode(true).heads(1).q_len(1).kv_len(40).q_offset(39)
                      .head_dim(hd).ring_start(start).seed(seed++).test());
    ASSERT_TRUE(AttentionTester().decode(true).heads(2).q_len(2).kv_len(50).head_dim(hd)
                    .causal(false).seed(seed++).test());
  }
}

TEST_P(FastAttentionDriver, DecodeKernelNonFiniteKeysAndValues) {
  // NaN or +inf in a key of a full group, of the tail group, and the first and last key; NaN
  // and inf in values; a -inf key that no query can weight.
  for (std::int64_t hd : {64, 128, 17})
    for (std::int64_t t : {0, 3, 16, 31, 33, 34}) {
      ASSERT_TRUE(AttentionTester().decode(true).heads(2).q_len(1).kv_len(35).q_offset(34)
                      .head_dim(hd).poke(1, 0, 1, t, 2, kNanF).test())
          << "NaN key " << t;
      ASSERT_TRUE(AttentionTester().decode(true).heads(1).q_len(1).kv_len(35).q_offset(34)
                      .head_dim(hd).poke(1, 0, 0, t, 0, kInfF).test())
          << "inf key " << t;
      ASSERT_TRUE(AttentionTester().decode(true).heads(1).q_len(2).kv_len(35).q_offset(33)
                      .head_dim(hd).poke(2, 0, 0, t, hd - 1, t % 2 ? kInfF : kNanF).test())
          << "value " << t;
    }
  ASSERT_TRUE(AttentionTester().decode(true).heads(1).q_len(1).kv_len(20).q_offset(19)
                  .head_dim(64).range(1.0f).scale(1.0).poke(1, 0, 0, 17, 0, -kInfF).test());
  // Every score -inf (q[0] = 1 against k[j][0] = -inf) but one NaN, in a whole group of keys
  // or in the tail: the exponentials alone would give a row of zeros, the reference NaN.
  for (std::int64_t hd : {64, 17})
    for (std::int64_t nan_at : {3, 18}) {
      AttentionTester t;
      t.decode(true).heads(1).q_len(1).kv_len(20).q_offset(19).head_dim(hd).poke(0, 0, 0, 0, 0, 1.0f);
      for (std::int64_t j = 0; j < 20; ++j) t.poke(1, 0, 0, j, 0, -kInfF);
      t.poke(1, 0, 0, nan_at, 1, kNanF);
      ASSERT_TRUE(t.test()) << "NaN key " << nan_at << " among -inf scores";
      const std::vector<float> out = t.run_fast();
      for (std::int64_t d = 0; d < hd; ++d) ASSERT_TRUE(std::isnan(out[d])) << d;
    }
}

INSTANTIATE_TEST_SUITE_P(Isas, FastAttentionDriver, ::testing::ValuesIn(all_isa_threads()),
                         isa_threads_name);

}  // namespace
}  // namespace simdattn::test
