// tests/unit/test_gpt2_loader.cpp — the GPT-2 attention loader on a synthetic checkpoint: layer
// counting, the Conv1D -> nn.Linear transpose and Q/K/V split (checked element-wise, as "same
// projection of the same input", and as a whole GPT-2 attention layer computed by hand against
// MultiHeadAttention), the `transformer.` prefix, and every error it reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "simdattn/gpt2.hpp"
#include "simdattn/safetensors.hpp"
#include "support/compare.hpp"

namespace simdattn {
namespace {

constexpr std::int64_t kD = 4;

/// Distinct values everywhere, so a wrong index shows up as a wrong value.
Tensor numbered(std::vector<std::int64_t> shape, float base) {
  Tensor t(std::move(shape));
  for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = base + 0.01f * static_cast<float>(i);
  return t;
}

/// Two GPT-2 blocks of width kD plus the tensors a real checkpoint carries around them.
TensorMap checkpoint(const std::string& prefix = "", std::int64_t layers = 2) {
  TensorMap m;
  for (std::int64_t l = 0; l < layers; ++l) {
    const std::string h = prefix + "h." + std::to_string(l) + ".";
    const float base = 100.0f * static_cast<float>(l + 1);
    m[h + "attn.c_attn.weight"] = numbered({kD, 3 * kD}, base);
    m[h + "attn.c_attn.bias"] = numbered({3 * kD}, base + 10);
    m[h + "attn.c_proj.weight"] = numbered({kD, kD}, base + 20);
    m[h + "attn.c_proj.bias"] = numbered({kD}, base + 30);
    m[h + "attn.bias"] = Tensor({1, 1, 8, 8});  // the causal-mask buffer: ignored
    m[h + "attn.masked_bias"] = Tensor({}, {-1e4f});
    m[h + "mlp.c_fc.weight"] = numbered({kD, 4 * kD}, -1);
    m[h + "ln_1.weight"] = numbered({kD}, -2);
  }
  m[prefix + "wte.weight"] = numbered({10, kD}, -3);
  m[prefix + "ln_f.bias"] = numbered({kD}, -4);
  return m;
}

::testing::AssertionResult throws_invalid(const std::function<void()>& f,
                                          const std::vector<std::string>& substrings) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (e.code() != ErrorCode::invalid_argument)
      return ::testing::AssertionFailure() << "wrong ErrorCode " << static_cast<int>(e.code())
                                           << ": " << msg;
    for (const auto& s : substrings)
      if (msg.find(s) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << s << "\"";
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

TEST(Gpt2Loader, CountsLayersWithOrWithoutPrefix) {
  EXPECT_EQ(gpt2_num_layers(checkpoint()), 2);
  EXPECT_EQ(gpt2_num_layers(checkpoint("transformer.", 3)), 3);
  EXPECT_EQ(gpt2_num_layers({}), 0);
  TensorMap m = checkpoint("", 1);
  // Look-alikes that are not c_attn weights of a block.
  for (const char* key : {"h.01.attn.c_attn.weight", "h.x.attn.c_attn.weight", "h..attn.c_attn.weight",
                          "h.-1.attn.c_attn.weight", "h.1.attn.c_attn.weight.extra",
                          "model.h.1.attn.c_attn.weight", "h.1.attn.c_attn.bias",
                          "h.99999999999999999999.attn.c_attn.weight"})
    m[key] = Tensor({1});
  EXPECT_EQ(gpt2_num_layers(m), 1);
}

TEST(Gpt2Loader, ModelDim) {
  EXPECT_EQ(gpt2_model_dim(checkpoint(), 0), kD);
  EXPECT_EQ(gpt2_model_dim(checkpoint("transformer."), 1), kD);
}

TEST(Gpt2Loader, SplitsAndTransposesElementWise) {
  const TensorMap ck = checkpoint();
  const TensorMap sd = gpt2_attention_state_dict(ck, 1);
  const std::vector<std::string> keys = {"W_key.bias",   "W_key.weight",   "W_query.bias",
                                         "W_query.weight", "W_value.bias", "W_value.weight",
                                         "out_proj.bias", "out_proj.weight"};
  std::vector<std::string> got;
  for (const auto& kv : sd) got.push_back(kv.first);
  EXPECT_EQ(got, keys);

  const Tensor& w = ck.at("h.1.attn.c_attn.weight");
  const Tensor& b = ck.at("h.1.attn.c_attn.bias");
  const char* names[3] = {"W_query", "W_key", "W_value"};
  for (std::int64_t p = 0; p < 3; ++p) {
    const Tensor& lin = sd.at(std::string(names[p]) + ".weight");
    const Tensor& bias = sd.at(std::string(names[p]) + ".bias");
    ASSERT_EQ(lin.shape(), (std::vector<std::int64_t>{kD, kD}));
    ASSERT_EQ(bias.shape(), std::vector<std::int64_t>{kD});
    for (std::int64_t o = 0; o < kD; ++o) {
      EXPECT_EQ(bias[o], b[p * kD + o]) << names[p];
      for (std::int64_t i = 0; i < kD; ++i)
        EXPECT_EQ(lin[o * kD + i], w[i * 3 * kD + p * kD + o]) << names[p] << " o=" << o << " i=" << i;
    }
  }
  const Tensor& proj = ck.at("h.1.attn.c_proj.weight");
  for (std::int64_t o = 0; o < kD; ++o)
    for (std::int64_t i = 0; i < kD; ++i)
      EXPECT_EQ(sd.at("out_proj.weight")[o * kD + i], proj[i * kD + o]);
  EXPECT_EQ(sd.at("out_proj.bias").values(), ck.at("h.1.attn.c_proj.bias").values());
}

TEST(Gpt2Loader, LinearLayoutComputesTheSameProjectionsAsConv1D) {
  // GPT-2: qkv = x·c_attn.weight + c_attn.bias, split into thirds. nn.Linear: q = x·Wᵀ + b.
  const TensorMap ck = checkpoint();
  const TensorMap sd = gpt2_attention_state_dict(ck, 0);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  const std::int64_t T = 3;
  std::vector<float> x(T * kD);
  for (float& v : x) v = u(rng);

  const Tensor& cw = ck.at("h.0.attn.c_attn.weight");
  const Tensor& cb = ck.at("h.0.attn.c_attn.bias");
  const char* names[3] = {"W_query", "W_key", "W_value"};
  for (std::int64_t p = 0; p < 3; ++p) {
    const Tensor& lw = sd.at(std::string(names[p]) + ".weight");
    const Tensor& lb = sd.at(std::string(names[p]) + ".bias");
    std::vector<float> conv(T * kD), linear(T * kD);
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t o = 0; o < kD; ++o) {
        double a = cb[p * kD + o], c = lb[o];
        for (std::int64_t i = 0; i < kD; ++i) {
          a += static_cast<double>(x[t * kD + i]) * cw[i * 3 * kD + p * kD + o];
          c += static_cast<double>(x[t * kD + i]) * lw[o * kD + i];
        }
        conv[t * kD + o] = static_cast<float>(a);
        linear[t * kD + o] = static_cast<float>(c);
      }
    EXPECT_TRUE(test::all_close(conv, linear, 0.0, 0.0, names[p]));
  }
}

/// GPT-2's attention written out from its checkpoint tensors, in double: Conv1D projections,
/// per-head causal softmax(q·kᵀ/sqrt(hd))·v, heads side by side, Conv1D c_proj.
std::vector<float> gpt2_attention_by_hand(const TensorMap& ck, std::int64_t layer,
                                          const std::vector<float>& x, std::int64_t T,
                                          std::int64_t heads) {
  const std::string h = "h." + std::to_string(layer) + ".attn.";
  const Tensor& cw = ck.at(h + "c_attn.weight");
  const Tensor& cb = ck.at(h + "c_attn.bias");
  const Tensor& pw = ck.at(h + "c_proj.weight");
  const Tensor& pb = ck.at(h + "c_proj.bias");
  const std::int64_t d = cw.dim(0), hd = d / heads;
  std::vector<double> qkv(T * 3 * d), ctx(T * d, 0.0);
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t o = 0; o < 3 * d; ++o) {
      double a = cb[o];
      for (std::int64_t i = 0; i < d; ++i) a += double(x[t * d + i]) * cw[i * 3 * d + o];
      qkv[t * 3 * d + o] = a;
    }
  for (std::int64_t hh = 0; hh < heads; ++hh)
    for (std::int64_t t = 0; t < T; ++t) {
      std::vector<double> w(t + 1);
      double mx = -1e300, sum = 0;
      for (std::int64_t s = 0; s <= t; ++s) {
        double dot = 0;
        for (std::int64_t j = 0; j < hd; ++j)
          dot += qkv[t * 3 * d + hh * hd + j] * qkv[s * 3 * d + d + hh * hd + j];
        w[s] = dot / std::sqrt(double(hd));
        mx = std::max(mx, w[s]);
      }
      for (auto& v : w) sum += (v = std::exp(v - mx));
      for (std::int64_t s = 0; s <= t; ++s)
        for (std::int64_t j = 0; j < hd; ++j)
          ctx[t * d + hh * hd + j] += w[s] / sum * qkv[s * 3 * d + 2 * d + hh * hd + j];
    }
  std::vector<float> y(T * d);
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t o = 0; o < d; ++o) {
      double a = pb[o];
      for (std::int64_t i = 0; i < d; ++i) a += ctx[t * d + i] * pw[i * d + o];
      y[t * d + o] = static_cast<float>(a);
    }
  return y;
}

TEST(Gpt2Loader, MultiHeadAttentionWithTheLoadedLayerComputesGpt2Attention) {
  // Random weights of a realistic scale (the numbered ones would saturate the softmax).
  const std::int64_t d = 8, heads = 2, T = 5;
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 0.3f);
  TensorMap ck = checkpoint("transformer.", 1);
  for (auto& [name, t] : ck) {
    if (name.find(".attn.c_") == std::string::npos) continue;
    std::vector<std::int64_t> shape = t.shape();
    for (auto& e : shape) e = e / kD * d;  // widen kD -> d, keeping the [d, 3d] structure
    t = Tensor(shape);
    for (float& v : t.values()) v = g(rng);
  }
  TensorMap plain;
  for (const auto& [name, t] : ck) plain[name.substr(std::string("transformer.").size())] = t;

  std::vector<float> xs(T * d);
  for (float& v : xs) v = g(rng) * 3.0f;
  const std::vector<float> expected = gpt2_attention_by_hand(plain, 0, xs, T, heads);

  MultiHeadAttention mha(d, d, /*context_length=*/16, /*dropout=*/0.0, heads, /*qkv_bias=*/true);
  mha.load_state_dict(gpt2_attention_state_dict(ck, 0));
  const Tensor x({T, d}, xs);
  for (Backend backend : {Backend::reference, Backend::fast}) {
    ForwardOptions options;
    options.backend = backend;
    const Tensor y = mha.forward(x, options);
    ASSERT_EQ(y.shape(), (std::vector<std::int64_t>{T, d}));
    EXPECT_TRUE(test::all_close(expected, y.values(), 1e-5, 1e-5,
                                std::string("GPT-2 layer on ") + backend_name(backend)));
  }
}

TEST(Gpt2Loader, PrefixedAndPlainCheckpointsGiveTheSameStateDict) {
  const TensorMap a = gpt2_attention_state_dict(checkpoint(), 1);
  const TensorMap b = gpt2_attention_state_dict(checkpoint("transformer."), 1);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    EXPECT_EQ(t.shape(), b.at(name).shape()) << name;
    EXPECT_EQ(t.values(), b.at(name).values()) << name;
  }
}

TEST(Gpt2Loader, ThroughASafetensorsFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("simdattn_gpt2_" + std::to_string(std::random_device{}()) + ".safetensors");
  const TensorMap ck = checkpoint("transformer.");
  save_safetensors(path.string(), ck);
  const TensorMap loaded = load_safetensors(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(gpt2_attention_state_dict(loaded, 0).at("W_value.weight").values(),
            gpt2_attention_state_dict(ck, 0).at("W_value.weight").values());
}

TEST(Gpt2Loader, OutOfRangeLayer) {
  for (std::int64_t layer : {std::int64_t{-1}, std::int64_t{2}, std::int64_t{1} << 40}) {
    EXPECT_TRUE(throws_invalid([&] { gpt2_attention_state_dict(checkpoint(), layer); },
                               {"gpt2_attention_state_dict: layer (" + std::to_string(layer) +
                                ") must be in [0, 2)"}));
    EXPECT_TRUE(throws_invalid([&] { gpt2_model_dim(checkpoint(), layer); },
                               {"gpt2_model_dim: layer (" + std::to_string(layer) + ")"}));
  }
  EXPECT_TRUE(throws_invalid([] { gpt2_attention_state_dict({}, 0); }, {"must be in [0, 0)"}));
}

TEST(Gpt2Loader, MissingTensorsAreNamedWithTheirLayer) {
  for (const char* leaf : {"c_attn.bias", "c_proj.weight", "c_proj.bias"}) {
    TensorMap m = checkpoint("transformer.");
    m.erase(std::string("transformer.h.1.attn.") + leaf);
    EXPECT_TRUE(throws_invalid([&] { gpt2_attention_state_dict(m, 1); },
                               {"layer 1: tensor 'h.1.attn." + std::string(leaf) +
                                "' (or 'transformer.h.1.attn." + leaf + "') is missing"}));
    EXPECT_NO_THROW(gpt2_attention_state_dict(m, 0));
  }
  // A gap: layers 0 and 2 exist, so there are "2 layers" and layer 1 is missing.
  TensorMap gap = checkpoint("", 3);
  gap.erase("h.1.attn.c_attn.weight");
  EXPECT_TRUE(throws_invalid([&] { gpt2_attention_state_dict(gap, 1); },
                             {"layer 1: tensor 'h.1.attn.c_attn.weight'", "is missing"}));
}

TEST(Gpt2Loader, MisshapenTensorsAreNamedWithTheirShapes) {
  struct Case {
    std::string key;
    std::vector<std::int64_t> shape;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"h.0.attn.c_attn.weight", {4, 11}, "layer 0: tensor 'h.0.attn.c_attn.weight' has shape [4, 11], expected [d, 3d]"},
      {"h.0.attn.c_attn.weight", {12}, "has shape [12], expected [d, 3d]"},
      {"h.0.attn.c_attn.weight", {0, 0}, "has shape [0, 0], expected [d, 3d] with d >= 1"},
      {"h.0.attn.c_attn.weight", {4, 12, 1}, "has shape [4, 12, 1]"},
      {"h.0.attn.c_attn.bias", {12, 1}, "tensor 'h.0.attn.c_attn.bias' has shape [12, 1], expected [12]"},
      {"h.0.attn.c_attn.bias", {11}, "expected [12]"},
      {"h.0.attn.c_proj.weight", {4, 5}, "tensor 'h.0.attn.c_proj.weight' has shape [4, 5], expected [4, 4]"},
      {"h.0.attn.c_proj.bias", {3}, "tensor 'h.0.attn.c_proj.bias' has shape [3], expected [4]"},
  };
  for (const Case& c : cases) {
    TensorMap m = checkpoint();
    m[c.key] = Tensor(c.shape);
    EXPECT_TRUE(throws_invalid([&] { gpt2_attention_state_dict(m, 0); },
                               {"gpt2_attention_state_dict: ", c.message}))
        << c.key << " " << shape_to_string(c.shape);
  }
  TensorMap m = checkpoint();
  m["h.0.attn.c_attn.weight"] = Tensor({4, 11});
  EXPECT_TRUE(throws_invalid([&] { gpt2_model_dim(m, 0); }, {"gpt2_model_dim: layer 0"}));
}

TEST(Gpt2Loader, ValuesThatDoNotMatchTheShapeAreRejected) {
  TensorMap m = checkpoint();
  m["h.0.attn.c_proj.weight"].values().pop_back();
  EXPECT_TRUE(throws_invalid([&] { gpt2_attention_state_dict(m, 0); },
                             {"tensor 'h.0.attn.c_proj.weight' holds 15 values"}));
}

TEST(Gpt2Loader, BothPrefixedAndPlainKeysAreAmbiguous) {
  TensorMap m = checkpoint();
  m["transformer.h.0.attn.c_proj.bias"] = Tensor({kD});
  EXPECT_TRUE(throws_invalid([&] { gpt2_attention_state_dict(m, 0); },
                             {"layer 0: both 'h.0.attn.c_proj.bias' and "
                              "'transformer.h.0.attn.c_proj.bias' are present"}));
}

}  // namespace
}  // namespace simdattn
