// tests/unit/test_reference_attention.cpp — the oracle's own tests: the reference forward of
// the five modules against hand-computed values and an independent matrix-form computation
// written here (full Q, K, V and T×T score matrices, as the book's PyTorch code does), plus
// the identities that tie the modules together (V1 = V2ᵀ, wrapper with one head = causal
// attention, batch rows independent, ...). Only Backend::reference is exercised.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "simdattn/attention.hpp"
#include "support/compare.hpp"

namespace {

using simdattn::Backend;
using simdattn::ForwardOptions;
using simdattn::Tensor;
using simdattn::TensorMap;

ForwardOptions reference_options(Tensor* weights = nullptr) {
  ForwardOptions o;
  o.backend = Backend::reference;
  o.attn_weights = weights;
  return o;
}

std::vector<float> uniform(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(n);
  for (float& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = lo + (hi - lo) * static_cast<float>(seed >> 8) / 16777216.0f;
  }
  return v;
}

Tensor random_tensor(std::vector<std::int64_t> shape, std::uint32_t seed) {
  std::size_t n = 1;
  for (std::int64_t e : shape) n *= static_cast<std::size_t>(e);
  return Tensor(std::move(shape), uniform(n, seed));
}

// ---- an independent matrix-form attention in double ----------------------------------------

struct Mat {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> v;
  Mat(std::int64_t r, std::int64_t c) : rows(r), cols(c), v(static_cast<std::size_t>(r * c)) {}
  double& operator()(std::int64_t r, std::int64_t c) {
    return v[static_cast<std::size_t>(r * cols + c)];
  }
  double operator()(std::int64_t r, std::int64_t c) const {
    return v[static_cast<std::size_t>(r * cols + c)];
  }
};

Mat from_floats(const float* p, std::int64_t rows, std::int64_t cols) {
  Mat m(rows, cols);
  for (std::int64_t i = 0; i < rows * cols; ++i) m.v[static_cast<std::size_t>(i)] = p[i];
  return m;
}

Mat transpose(const Mat& a) {
  Mat t(a.cols, a.rows);
  for (std::int64_t r = 0; r < a.rows; ++r)
    for (std::int64_t c = 0; c < a.cols; ++c) t(c, r) = a(r, c);
  return t;
}

Mat matmul(const Mat& a, const Mat& b) {
  Mat c(a.rows, b.cols);
  for (std::int64_t i = 0; i < a.rows; ++i)
    for (std::int64_t k = 0; k < a.cols; ++k)
      for (std::int64_t j = 0; j < b.cols; ++j) c(i, j) += a(i, k) * b(k, j);
  return c;
}

/// nn.Linear: x @ W.T + b, W given as [out, in].
Mat linear(const Mat& x, const Tensor& w, const Tensor* b) {
  Mat y = matmul(x, transpose(from_floats(w.data(), w.dim(0), w.dim(1))));
  if (b != nullptr)
    for (std::int64_t r = 0; r < y.rows; ++r)
      for (std::int64_t c = 0; c < y.cols; ++c) y(r, c) += (*b)[c];
  return y;
}

Mat columns(const Mat& a, std::int64_t first, std::int64_t count) {
  Mat s(a.rows, count);
  for (std::int64_t r = 0; r < a.rows; ++r)
    for (std::int64_t c = 0; c < count; ++c) s(r, c) = a(r, first + c);
  return s;
}

/// softmax((q @ k.T).masked_fill(mask, -inf) / sqrt(d_k)) — the weights of one head.
Mat attention_weights(const Mat& q, const Mat& k, bool causal) {
  Mat s = matmul(q, transpose(k));
  const double scale = 1.0 / std::sqrt(static_cast<double>(k.cols));
  for (std::int64_t i = 0; i < s.rows; ++i) {
    double max = -std::numeric_limits<double>::infinity(), sum = 0.0;
    for (std::int64_t j = 0; j < s.cols; ++j)
      if (!causal || j <= i) max = std::max(max, s(i, j) * scale);
    for (std::int64_t j = 0; j < s.cols; ++j) {
      s(i, j) = (causal && j > i) ? 0.0 : std::exp(s(i, j) * scale - max);
      sum += s(i, j);
    }
    for (std::int64_t j = 0; j < s.cols; ++j) s(i, j) /= sum;
  }
  return s;
}

std::vector<float> to_floats(const Mat& m) { return {m.v.begin(), m.v.end()}; }

const Tensor* find(const TensorMap& m, const std::string& key) {
  const auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

/// Expected forward of a linear-named module (V2, CausalAttention, MHA) for one sequence.
Mat expected_linear_module(const TensorMap& w, const Mat& x, std::int64_t heads, bool causal,
                           Mat* weights_out = nullptr) {
  const Mat q = linear(x, w.at("W_query.weight"), find(w, "W_query.bias"));
  const Mat k = linear(x, w.at("W_key.weight"), find(w, "W_key.bias"));
  const Mat v = linear(x, w.at("W_value.weight"), find(w, "W_value.bias"));
  const std::int64_t hd = q.cols / heads;
  Mat context(x.rows, q.cols);
  for (std::int64_t h = 0; h < heads; ++h) {
    const Mat a = attention_weights(columns(q, h * hd, hd), columns(k, h * hd, hd), causal);
    if (weights_out != nullptr) *weights_out = a;
    const Mat z = matmul(a, columns(v, h * hd, hd));
    for (std::int64_t r = 0; r < z.rows; ++r)
      for (std::int64_t c = 0; c < hd; ++c) context(r, h * hd + c) = z(r, c);
  }
  if (find(w, "out_proj.weight") == nullptr) return context;
  return linear(context, w.at("out_proj.weight"), find(w, "out_proj.bias"));
}

TensorMap random_linear_state(std::int64_t d_in, std::int64_t d_out, bool bias, bool out_proj,
                              std::uint32_t seed) {
  TensorMap m;
  for (const char* name : {"W_query", "W_key", "W_value"}) {
    m[std::string(name) + ".weight"] = random_tensor({d_out, d_in}, seed++);
    if (bias) m[std::string(name) + ".bias"] = random_tensor({d_out}, seed++);
  }
  if (out_proj) {
    m["out_proj.weight"] = random_tensor({d_out, d_out}, seed++);
    m["out_proj.bias"] = random_tensor({d_out}, seed++);
  }
  return m;
}

// Outputs are rounded once from double; the independent computation differs only in the order
// of its double sums, so anything beyond float rounding is a bug.
constexpr double kAtol = 1e-6, kRtol = 1e-6;

// ---- hand-computed -------------------------------------------------------------------------

TEST(ReferenceAttention, HandComputedOneDimensionalCase) {
  // d_in = d_out = 1, all weights 1, x = [1, 2]: q = k = v = x, d_k = 1.
  // Row 0 scores [1, 2] -> weights [1, e] / (1 + e); row 1 scores [2, 4] -> [1, e^2] / (1 + e^2).
  TensorMap w;
  for (const char* key : {"W_query.weight", "W_key.weight", "W_value.weight"})
    w[key] = Tensor({1, 1}, {1.0f});
  const Tensor x({2, 1}, {1.0f, 2.0f});
  const double e = std::exp(1.0), e2 = std::exp(2.0);

  simdattn::SelfAttentionV2 v2(1, 1);
  v2.load_state_dict(w);
  const Tensor y = v2.forward(x, reference_options());
  EXPECT_NEAR(y[0], (1.0 + 2.0 * e) / (1.0 + e), 1e-6);    // 1.7311
  EXPECT_NEAR(y[1], (1.0 + 2.0 * e2) / (1.0 + e2), 1e-6);  // 1.8808

  simdattn::CausalAttention causal(1, 1, 2, 0.0);
  causal.load_state_dict(w);
  const Tensor yc = causal.forward(x, reference_options());
  EXPECT_EQ(yc[0], 1.0f) << "the first token attends only to itself";
  EXPECT_NEAR(yc[1], (1.0 + 2.0 * e2) / (1.0 + e2), 1e-6);
}

// ---- against the independent computation ---------------------------------------------------

struct LinearCase {
  std::string name;
  std::int64_t d_in, d_out, heads, batch, tokens;
  bool bias;
};

void PrintTo(const LinearCase& c, std::ostream* os) { *os << c.name; }

class ReferenceVsMatrixForm : public ::testing::TestWithParam<LinearCase> {};

TEST_P(ReferenceVsMatrixForm, SelfAttentionV2) {
  const LinearCase c = GetParam();
  simdattn::SelfAttentionV2 m(c.d_in, c.d_out, c.bias);
  const TensorMap w = random_linear_state(c.d_in, c.d_out, c.bias, false, 10);
  m.load_state_dict(w);
  const Tensor x = random_tensor({c.batch, c.tokens, c.d_in}, 77);
  Tensor weights;
  const Tensor y = m.forward(x, reference_options(&weights));
  for (std::int64_t b = 0; b < c.batch; ++b) {
    Mat a(0, 0);
    const Mat expected = expected_linear_module(
        w, from_floats(x.data() + b * c.tokens * c.d_in, c.tokens, c.d_in), 1, false, &a);
    EXPECT_TRUE(simdattn::test::all_close(to_floats(expected).data(),
                                          y.data() + b * c.tokens * c.d_out, c.tokens * c.d_out,
                                          kAtol, kRtol, "y"));
    EXPECT_TRUE(simdattn::test::all_close(to_floats(a).data(),
                                          weights.data() + b * c.tokens * c.tokens,
                                          c.tokens * c.tokens, kAtol, kRtol, "attn_weights"));
  }
}

TEST_P(ReferenceVsMatrixForm, CausalAttention) {
  const LinearCase c = GetParam();
  simdattn::CausalAttention m(c.d_in, c.d_out, c.tokens + 2, 0.25, c.bias);
  const TensorMap w = random_linear_state(c.d_in, c.d_out, c.bias, false, 20);
  m.load_state_dict(w);
  const Tensor x = random_tensor({c.batch, c.tokens, c.d_in}, 78);
  Tensor weights;
  const Tensor y = m.forward(x, reference_options(&weights));  // inference: no dropout
  for (std::int64_t b = 0; b < c.batch; ++b) {
    Mat a(0, 0);
    const Mat expected = expected_linear_module(
        w, from_floats(x.data() + b * c.tokens * c.d_in, c.tokens, c.d_in), 1, true, &a);
    EXPECT_TRUE(simdattn::test::all_close(to_floats(expected).data(),
                                          y.data() + b * c.tokens * c.d_out, c.tokens * c.d_out,
                                          kAtol, kRtol, "y"));
    EXPECT_TRUE(simdattn::test::all_close(to_floats(a).data(),
                                          weights.data() + b * c.tokens * c.tokens,
                                          c.tokens * c.tokens, kAtol, kRtol, "attn_weights"));
  }
}

TEST_P(ReferenceVsMatrixForm, MultiHeadAttention) {
  const LinearCase c = GetParam();
  const std::int64_t d_out = c.d_out * c.heads;  // head_dim = c.d_out
  simdattn::MultiHeadAttention m(c.d_in, d_out, c.tokens, 0.1, c.heads, c.bias);
  const TensorMap w = random_linear_state(c.d_in, d_out, c.bias, true, 30);
  m.load_state_dict(w);
  const Tensor x = random_tensor({c.batch, c.tokens, c.d_in}, 79);
  const Tensor y = m.forward(x, reference_options());
  for (std::int64_t b = 0; b < c.batch; ++b) {
    const Mat expected = expected_linear_module(
        w, from_floats(x.data() + b * c.tokens * c.d_in, c.tokens, c.d_in), c.heads, true);
    EXPECT_TRUE(simdattn::test::all_close(to_floats(expected).data(),
                                          y.data() + b * c.tokens * d_out, c.tokens * d_out, kAtol,
                                          kRtol, "y batch " + std::to_string(b)));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ReferenceVsMatrixForm,
                         ::testing::Values(LinearCase{"tiny", 3, 2, 2, 1, 6, false},
                                           LinearCase{"bias", 5, 4, 3, 2, 7, true},
                                           LinearCase{"one_token", 4, 3, 1, 3, 1, true},
                                           LinearCase{"wide", 16, 8, 4, 2, 9, false}),
                         [](const auto& info) { return info.param.name; });

// ---- identities between the modules -------------------------------------------------------

TEST(ReferenceAttention, V1EqualsV2WithTransposedWeights) {
  const std::int64_t d_in = 5, d_out = 3;
  const TensorMap w2 = random_linear_state(d_in, d_out, false, false, 40);
  TensorMap w1;
  for (const char* name : {"W_query", "W_key", "W_value"}) {
    const Tensor& t = w2.at(std::string(name) + ".weight");  // [d_out, d_in]
    Tensor tt({d_in, d_out});
    for (std::int64_t o = 0; o < d_out; ++o)
      for (std::int64_t i = 0; i < d_in; ++i) tt[i * d_out + o] = t[o * d_in + i];
    w1[name] = tt;
  }
  simdattn::SelfAttentionV1 v1(d_in, d_out);
  simdattn::SelfAttentionV2 v2(d_in, d_out);
  v1.load_state_dict(w1);
  v2.load_state_dict(w2);
  const Tensor x = random_tensor({2, 6, d_in}, 41);
  EXPECT_TRUE(simdattn::test::all_close(v2.forward(x, reference_options()).values(),
                                        v1.forward(x, reference_options()).values(), 1e-7, 0,
                                        "V1 vs V2"));
}

TensorMap prefixed(const TensorMap& m, const std::string& prefix) {
  TensorMap out;
  for (const auto& [k, t] : m) out[prefix + k] = t;
  return out;
}

TEST(ReferenceAttention, WrapperWithOneHeadEqualsCausalAttention) {
  const TensorMap w = random_linear_state(4, 3, true, false, 50);
  simdattn::CausalAttention ca(4, 3, 8, 0.0, true);
  simdattn::MultiHeadAttentionWrapper wrapper(4, 3, 8, 0.0, 1, true);
  ca.load_state_dict(w);
  wrapper.load_state_dict(prefixed(w, "heads.0."));
  const Tensor x = random_tensor({2, 8, 4}, 51);
  EXPECT_TRUE(simdattn::test::bitwise_equal(ca.forward(x, reference_options()).values(),
                                            wrapper.forward(x, reference_options()).values(),
                                            "wrapper(1 head) vs CausalAttention"));
}

TEST(ReferenceAttention, WrapperConcatenatesIndependentHeads) {
  const std::int64_t heads = 3, d_in = 4, d_out = 2, batch = 2, tokens = 5;
  simdattn::MultiHeadAttentionWrapper wrapper(d_in, d_out, tokens, 0.0, heads, false);
  TensorMap all;
  std::vector<TensorMap> per_head;
  for (std::int64_t h = 0; h < heads; ++h) {
    per_head.push_back(random_linear_state(d_in, d_out, false, false, 60 + 10 * h));
    for (const auto& [k, t] : per_head.back()) all["heads." + std::to_string(h) + "." + k] = t;
  }
  wrapper.load_state_dict(all);
  const Tensor x = random_tensor({batch, tokens, d_in}, 61);
  const Tensor y = wrapper.forward(x, reference_options());
  ASSERT_EQ(y.shape(), (std::vector<std::int64_t>{batch, tokens, heads * d_out}));
  for (std::int64_t h = 0; h < heads; ++h) {
    simdattn::CausalAttention ca(d_in, d_out, tokens, 0.0);
    ca.load_state_dict(per_head[static_cast<std::size_t>(h)]);
    const Tensor yh = ca.forward(x, reference_options());
    for (std::int64_t r = 0; r < batch * tokens; ++r)
      for (std::int64_t c = 0; c < d_out; ++c)
        EXPECT_EQ(y[r * heads * d_out + h * d_out + c], yh[r * d_out + c])
            << "head " << h << " row " << r << " col " << c;
  }
}

TEST(ReferenceAttention, MhaWithOneHeadAndIdentityOutProjEqualsCausalAttention) {
  const std::int64_t d_in = 6, d_out = 4;
  TensorMap w = random_linear_state(d_in, d_out, true, false, 70);
  simdattn::CausalAttention ca(d_in, d_out, 7, 0.0, true);
  ca.load_state_dict(w);
  Tensor eye({d_out, d_out});
  for (std::int64_t i = 0; i < d_out; ++i) eye[i * d_out + i] = 1.0f;
  w["out_proj.weight"] = eye;
  w["out_proj.bias"] = Tensor({d_out});
  simdattn::MultiHeadAttention mha(d_in, d_out, 7, 0.0, 1, true);
  mha.load_state_dict(w);
  const Tensor x = random_tensor({3, 7, d_in}, 71);
  EXPECT_TRUE(simdattn::test::all_close(ca.forward(x, reference_options()).values(),
                                        mha.forward(x, reference_options()).values(), 1e-7, 1e-7,
                                        "MHA(1 head, identity out_proj) vs Causal"));
}

TEST(ReferenceAttention, BatchRowsAreIndependent) {
  const std::int64_t batch = 3, tokens = 6, d_in = 5;
  simdattn::MultiHeadAttention mha(d_in, 6, tokens, 0.0, 2, true);
  mha.init_random(3);
  simdattn::SelfAttentionV2 v2(d_in, 4, true);
  v2.init_random(4);
  const Tensor x = random_tensor({batch, tokens, d_in}, 81);
  for (const simdattn::AttentionModule* m :
       std::vector<const simdattn::AttentionModule*>{&mha, &v2}) {
    const Tensor y = m->forward(x, reference_options());
    const std::int64_t n_out = tokens * m->output_dim();
    for (std::int64_t b = 0; b < batch; ++b) {
      const Tensor xb({1, tokens, d_in}, std::vector<float>(x.data() + b * tokens * d_in,
                                                            x.data() + (b + 1) * tokens * d_in));
      const Tensor yb = m->forward(xb, reference_options());
      EXPECT_TRUE(simdattn::test::bitwise_equal(
          yb.values(), std::vector<float>(y.data() + b * n_out, y.data() + (b + 1) * n_out),
          m->name() + " batch " + std::to_string(b)));
    }
  }
}

TEST(ReferenceAttention, RankTwoAndRankThreeInputsAgree) {
  simdattn::MultiHeadAttentionWrapper wrapper(4, 3, 6, 0.0, 2, true);
  wrapper.init_random(5);
  const Tensor x2 = random_tensor({6, 4}, 91);
  const Tensor x3({1, 6, 4}, x2.values());
  Tensor w2, w3;
  simdattn::CausalAttention ca(4, 3, 6, 0.0);
  ca.init_random(6);
  const Tensor y2 = wrapper.forward(x2, reference_options());
  const Tensor y3 = wrapper.forward(x3, reference_options());
  EXPECT_EQ(y2.shape(), (std::vector<std::int64_t>{6, 6}));
  EXPECT_EQ(y3.shape(), (std::vector<std::int64_t>{1, 6, 6}));
  EXPECT_TRUE(simdattn::test::bitwise_equal(y2.values(), y3.values(), "wrapper"));
  const Tensor c2 = ca.forward(x2, reference_options(&w2));
  const Tensor c3 = ca.forward(x3, reference_options(&w3));
  EXPECT_EQ(w2.shape(), (std::vector<std::int64_t>{6, 6}));
  EXPECT_EQ(w3.shape(), (std::vector<std::int64_t>{1, 6, 6}));
  EXPECT_TRUE(simdattn::test::bitwise_equal(c2.values(), c3.values(), "causal y"));
  EXPECT_TRUE(simdattn::test::bitwise_equal(w2.values(), w3.values(), "causal attn_weights"));
}

TEST(ReferenceAttention, CausalOutputsIgnoreLaterTokens) {
  simdattn::MultiHeadAttention mha(4, 4, 8, 0.0, 2);
  mha.init_random(8);
  Tensor x = random_tensor({8, 4}, 101);
  const Tensor y = mha.forward(x, reference_options());
  for (std::int64_t c = 0; c < 4; ++c) x[7 * 4 + c] += 10.0f;  // change only the last token
  const Tensor y2 = mha.forward(x, reference_options());
  EXPECT_TRUE(simdattn::test::bitwise_equal(std::vector<float>(y.data(), y.data() + 7 * 4),
                                            std::vector<float>(y2.data(), y2.data() + 7 * 4),
                                            "rows before the changed token"));
  EXPECT_NE(y[7 * 4], y2[7 * 4]);
}

TEST(ReferenceAttention, CausalWeightsAreNormalisedAndMasked) {
  const std::int64_t tokens = 9;
  simdattn::CausalAttention ca(5, 3, tokens, 0.0, true);
  ca.init_random(9);
  Tensor weights;
  ca.forward(random_tensor({2, tokens, 5}, 111), reference_options(&weights));
  ASSERT_EQ(weights.shape(), (std::vector<std::int64_t>{2, tokens, tokens}));
  for (std::int64_t r = 0; r < 2 * tokens; ++r) {
    const std::int64_t i = r % tokens;
    double sum = 0.0;
    for (std::int64_t j = 0; j < tokens; ++j) {
      const float w = weights[r * tokens + j];
      if (j > i) {
        EXPECT_EQ(w, 0.0f) << "masked (" << i << ", " << j << ")";
      }
      sum += w;
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
}

TEST(ReferenceAttention, ZeroWeightsGiveZeroOutput) {
  // Weights start at zero: V = 0, so every context vector is 0 (and out_proj adds a zero bias).
  simdattn::MultiHeadAttention mha(3, 4, 4, 0.0, 2, true);
  const Tensor y = mha.forward(random_tensor({2, 4, 3}, 121), reference_options());
  for (float v : y.values()) EXPECT_EQ(v, 0.0f);
}

}  // namespace
