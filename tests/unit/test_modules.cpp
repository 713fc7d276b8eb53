// tests/unit/test_modules.cpp — the module layer: accessors, PyTorch parameter names and shapes,
// state_dict round trips, strict loading, init_random, moves, backend names and
// simple_attention's shapes. Forwards use Backend::reference only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "support/compare.hpp"

namespace {

using simdattn::AttentionModule;
using simdattn::Backend;
using simdattn::ForwardOptions;
using simdattn::Tensor;
using simdattn::TensorMap;
using Shape = std::vector<std::int64_t>;

ForwardOptions reference_options() {
  ForwardOptions o;
  o.backend = Backend::reference;
  return o;
}

Tensor ramp(Shape shape, float step = 0.01f) {
  Tensor t(std::move(shape));
  for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = std::sin(step * static_cast<float>(i + 1));
  return t;
}

std::vector<std::pair<std::string, Shape>> names_and_shapes(const AttentionModule& m) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& p : m.parameters()) out.emplace_back(p.name, p.shape);
  return out;
}

TEST(Modules, Accessors) {
  const simdattn::SelfAttentionV1 v1(3, 2);
  EXPECT_EQ(v1.name(), "SelfAttentionV1");
  EXPECT_EQ(v1.d_in(), 3);
  EXPECT_EQ(v1.output_dim(), 2);
  EXPECT_EQ(v1.num_heads(), 1);
  EXPECT_EQ(v1.head_dim(), 2);
  EXPECT_EQ(v1.context_length(), 0);
  EXPECT_FALSE(v1.causal());
  EXPECT_FALSE(v1.qkv_bias());

  const simdattn::SelfAttentionV2 v2(3, 2, true);
  EXPECT_EQ(v2.name(), "SelfAttentionV2");
  EXPECT_TRUE(v2.qkv_bias());
  EXPECT_FALSE(v2.causal());

  const simdattn::CausalAttention ca(3, 2, 6, 0.5);
  EXPECT_EQ(ca.name(), "CausalAttention");
  EXPECT_EQ(ca.context_length(), 6);
  EXPECT_EQ(ca.dropout(), 0.5);
  EXPECT_TRUE(ca.causal());

  const simdattn::MultiHeadAttentionWrapper w(3, 2, 6, 0.0, 4, true);
  EXPECT_EQ(w.name(), "MultiHeadAttentionWrapper");
  EXPECT_EQ(w.num_heads(), 4);
  EXPECT_EQ(w.head_dim(), 2);
  EXPECT_EQ(w.output_dim(), 8);

  const simdattn::MultiHeadAttention mha(3, 12, 6, 0.1, 4);
  EXPECT_EQ(mha.name(), "MultiHeadAttention");
  EXPECT_EQ(mha.num_heads(), 4);
  EXPECT_EQ(mha.head_dim(), 3);
  EXPECT_EQ(mha.output_dim(), 12);
  EXPECT_TRUE(mha.causal());
}

TEST(Modules, ParameterNamesAndShapesFollowPyTorch) {
  using V = std::vector<std::pair<std::string, Shape>>;
  EXPECT_EQ(names_and_shapes(simdattn::SelfAttentionV1(3, 2)),
            (V{{"W_query", {3, 2}}, {"W_key", {3, 2}}, {"W_value", {3, 2}}}));
  EXPECT_EQ(names_and_shapes(simdattn::SelfAttentionV2(3, 2)),
            (V{{"W_query.weight", {2, 3}}, {"W_key.weight", {2, 3}}, {"W_value.weight", {2, 3}}}));
  EXPECT_EQ(names_and_shapes(simdattn::CausalAttention(3, 2, 4, 0.0, true)),
            (V{{"W_query.weight", {2, 3}},
               {"W_query.bias", {2}},
               {"W_key.weight", {2, 3}},
               {"W_key.bias", {2}},
               {"W_value.weight", {2, 3}},
               {"W_value.bias", {2}}}));
  EXPECT_EQ(names_and_shapes(simdattn::MultiHeadAttentionWrapper(3, 2, 4, 0.0, 2)),
            (V{{"heads.0.W_query.weight", {2, 3}},
               {"heads.0.W_key.weight", {2, 3}},
               {"heads.0.W_value.weight", {2, 3}},
               {"heads.1.W_query.weight", {2, 3}},
               {"heads.1.W_key.weight", {2, 3}},
               {"heads.1.W_value.weight", {2, 3}}}));
  EXPECT_EQ(names_and_shapes(simdattn::MultiHeadAttention(3, 4, 4, 0.0, 2)),
            (V{{"W_query.weight", {4, 3}},
               {"W_key.weight", {4, 3}},
               {"W_value.weight", {4, 3}},
               {"out_proj.weight", {4, 4}},
               {"out_proj.bias", {4}}}));
}

std::vector<std::unique_ptr<AttentionModule>> every_module() {
  std::vector<std::unique_ptr<AttentionModule>> m;
  m.push_back(std::make_unique<simdattn::SelfAttentionV1>(5, 3));
  m.push_back(std::make_unique<simdattn::SelfAttentionV2>(5, 3, true));
  m.push_back(std::make_unique<simdattn::CausalAttention>(5, 3, 8, 0.0, true));
  m.push_back(std::make_unique<simdattn::MultiHeadAttentionWrapper>(5, 3, 8, 0.0, 3, true));
  m.push_back(std::make_unique<simdattn::MultiHeadAttention>(5, 6, 8, 0.0, 2, true));
  return m;
}

TEST(Modules, StateDictRoundTripsExactly) {
  for (auto& m : every_module()) {
    m->init_random(17);
    const TensorMap state = m->state_dict();
    ASSERT_EQ(state.size(), m->parameters().size()) << m->name();
    for (const auto& p : m->parameters()) EXPECT_EQ(state.at(p.name).shape(), p.shape);

    // Load a hand-made state (every value distinct) and read it back unchanged, per key.
    TensorMap mine;
    float next = 0.5f;
    for (const auto& p : m->parameters()) {
      Tensor t(p.shape);
      for (float& v : t.values()) v = (next += 0.25f);
      mine[p.name] = t;
    }
    m->load_state_dict(mine);
    const TensorMap back = m->state_dict();
    for (const auto& [k, t] : mine)
      EXPECT_TRUE(
          simdattn::test::bitwise_equal(t.values(), back.at(k).values(), m->name() + " " + k));

    // load_state_dict(state_dict()) restores the first weights and their forward.
    const Tensor x = ramp({2, 4, 5});
    m->load_state_dict(state);
    const Tensor y1 = m->forward(x, reference_options());
    m->load_state_dict(m->state_dict());
    EXPECT_TRUE(simdattn::test::bitwise_equal(y1.values(),
                                              m->forward(x, reference_options()).values(),
                                              m->name() + " forward after round trip"));
  }
}

TEST(Modules, InitRandomFollowsLinearDefaultBounds) {
  simdattn::MultiHeadAttention mha(16, 8, 4, 0.0, 2, true);
  mha.init_random(1);
  const TensorMap s = mha.state_dict();
  for (const auto& [k, t] : s) {
    const bool proj = k.rfind("out_proj", 0) == 0;
    const double bound = 1.0 / std::sqrt(proj ? 8.0 : 16.0);  // 1/sqrt(fan_in)
    double sum = 0.0, max_abs = 0.0;
    for (float v : t.values()) {
      EXPECT_LE(std::fabs(v), bound) << k;
      sum += v;
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(v)));
    }
    EXPECT_GT(max_abs, 0.5 * bound) << k << " does not spread over its range";
    // Mean of n uniforms on [-b, b]: sigma = b / sqrt(3n).
    EXPECT_LE(std::fabs(sum / t.numel()), 5.0 * bound / std::sqrt(3.0 * t.numel())) << k;
  }
  simdattn::SelfAttentionV1 v1(4, 3);
  v1.init_random(2);
  for (const auto& [k, t] : v1.state_dict())
    for (float v : t.values()) EXPECT_LE(std::fabs(v), 0.5) << k;  // fan_in = d_in = 4
}

TEST(Modules, InitRandomIsDeterministicPerSeed) {
  simdattn::MultiHeadAttentionWrapper a(4, 3, 4, 0.0, 2, true), b(4, 3, 4, 0.0, 2, true);
  a.init_random(99);
  b.init_random(99);
  const TensorMap sa = a.state_dict(), sb = b.state_dict();
  for (const auto& [k, t] : sa)
    EXPECT_TRUE(simdattn::test::bitwise_equal(t.values(), sb.at(k).values(), k));
  EXPECT_FALSE(simdattn::test::bitwise_equal(sa.at("heads.0.W_query.weight").values(),
                                             sa.at("heads.1.W_query.weight").values(), "heads"))
      << "two heads got the same initial weights";
  b.init_random(100);
  EXPECT_FALSE(simdattn::test::bitwise_equal(sa.at("heads.0.W_key.weight").values(),
                                             b.state_dict().at("heads.0.W_key.weight").values(),
                                             "seeds"));
}

TEST(Modules, LoadIgnoresMaskBuffers) {
  simdattn::CausalAttention ca(3, 2, 4, 0.0);
  TensorMap s = ca.state_dict();
  s["mask"] = Tensor({4, 4});
  EXPECT_NO_THROW(ca.load_state_dict(s));

  simdattn::MultiHeadAttentionWrapper w(3, 2, 4, 0.0, 2);
  TensorMap ws = w.state_dict();
  ws["heads.0.mask"] = Tensor({4, 4});
  ws["heads.1.mask"] = Tensor({4, 4});
  EXPECT_NO_THROW(w.load_state_dict(ws));
  ws["heads.2.mask"] = Tensor({4, 4});  // there is no head 2
  EXPECT_THROW(w.load_state_dict(ws), simdattn::Error);
}

TEST(Modules, FailedLoadLeavesWeightsUnchanged) {
  simdattn::SelfAttentionV2 v2(3, 2);
  v2.init_random(5);
  const TensorMap before = v2.state_dict();
  TensorMap bad = before;
  bad["W_key.weight"] = ramp({2, 3});
  bad["W_value.weight"] = ramp({3, 2});  // wrong shape: nothing may be applied
  EXPECT_THROW(v2.load_state_dict(bad), simdattn::Error);
  const TensorMap after = v2.state_dict();
  for (const auto& [k, t] : before)
    EXPECT_TRUE(simdattn::test::bitwise_equal(t.values(), after.at(k).values(), k));
}

TEST(Modules, MovedModuleKeepsWorking) {
  simdattn::CausalAttention a(3, 2, 4, 0.0);
  a.init_random(3);
  const Tensor x = ramp({4, 3});
  const Tensor y = a.forward(x, reference_options());
  simdattn::CausalAttention b = std::move(a);
  EXPECT_TRUE(simdattn::test::bitwise_equal(y.values(), b.forward(x, reference_options()).values(),
                                            "moved"));
  EXPECT_THROW(a.forward(x, reference_options()),
               simdattn::Error);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.d_in(), 0);         // NOLINT(bugprone-use-after-move)
}

TEST(Modules, AttnWeightsOutputMayAliasTheInput) {
  simdattn::SelfAttentionV2 v2(3, 2);
  v2.init_random(1);
  Tensor x = ramp({1, 3, 3});
  const Tensor expected = v2.forward(x, reference_options());
  ForwardOptions o = reference_options();
  o.attn_weights = &x;
  const Tensor y = v2.forward(x, o);
  EXPECT_TRUE(simdattn::test::bitwise_equal(expected.values(), y.values(), "y"));
  EXPECT_EQ(x.shape(), (Shape{1, 3, 3}));
}

TEST(Modules, BackendNames) {
  EXPECT_STREQ(simdattn::backend_name(Backend::fast), "fast");
  EXPECT_STREQ(simdattn::backend_name(Backend::reference), "reference");
  EXPECT_EQ(simdattn::parse_backend("fast"), Backend::fast);
  EXPECT_EQ(simdattn::parse_backend("reference"), Backend::reference);
  try {
    simdattn::parse_backend("gpu");
    ADD_FAILURE() << "gpu accepted";
  } catch (const simdattn::Error& e) {
    EXPECT_EQ(e.code(), simdattn::ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("\"gpu\""), std::string::npos) << e.what();
  }
}

TEST(SimpleAttention, ShapesAndBatchIndependence) {
  const Tensor x2 = ramp({5, 4}, 0.3f);
  Tensor w2, w3;
  ForwardOptions o = reference_options();
  o.attn_weights = &w2;
  const Tensor y2 = simdattn::simple_attention(x2, o);
  EXPECT_EQ(y2.shape(), (Shape{5, 4}));
  EXPECT_EQ(w2.shape(), (Shape{5, 5}));

  std::vector<float> two = x2.values();
  for (float v : x2.values()) two.push_back(-v);
  o.attn_weights = &w3;
  const Tensor y3 = simdattn::simple_attention(Tensor({2, 5, 4}, two), o);
  EXPECT_EQ(y3.shape(), (Shape{2, 5, 4}));
  EXPECT_EQ(w3.shape(), (Shape{2, 5, 5}));
  EXPECT_TRUE(simdattn::test::bitwise_equal(
      y2.values(), std::vector<float>(y3.values().begin(), y3.values().begin() + 20), "batch 0"));
  // -x has the same scores as x, so the second batch is exactly minus the first.
  for (std::int64_t i = 0; i < 20; ++i) EXPECT_EQ(y3[20 + i], -y2[i]);
  for (std::int64_t i = 0; i < 25; ++i) EXPECT_EQ(w3[25 + i], w2[i]);
}

TEST(SimpleAttention, NaiveSoftmaxOverflowsOnLargeScoresStableDoesNot) {
  // Scores x_i · x_j reach 100 > 88.7: exp overflows in float, as in the book's softmax_naive.
  const Tensor x({2, 1}, {10.0f, 1.0f});
  Tensor naive_w, stable_w;
  ForwardOptions o = reference_options();
  o.attn_weights = &naive_w;
  const Tensor naive = simdattn::simple_attention(x, o, simdattn::SoftmaxKind::naive);
  o.attn_weights = &stable_w;
  const Tensor stable = simdattn::simple_attention(x, o, simdattn::SoftmaxKind::stable);
  EXPECT_TRUE(std::isnan(naive_w[0]) || std::isinf(naive_w[0])) << naive_w[0];
  EXPECT_FALSE(std::isfinite(naive[0]));
  for (float v : stable.values()) EXPECT_TRUE(std::isfinite(v));
  for (float v : stable_w.values()) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(stable_w[0], 1.0, 1e-6);  // softmax([100, 10])
}

}  // namespace
