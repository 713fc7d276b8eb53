// tests/unit/test_golden.cpp — every module against PyTorch: each tests/data/golden/*.safetensors
// (written by tools/make_golden.py from the book's classes) is rebuilt from its metadata through
// the public API, loaded with its state_dict and run on its `x`; `y` and `attn_weights` must match.
//
// Why rel 1e-5 with atol 1e-6·max|expected|: the stored outputs are PyTorch's float64 forward
// rounded to float32, i.e. the exact answer to half an ulp (~6e-8 relative). A float32 forward
// of these small sizes (d <= 16, T <= 8) carries a few ulps of rounding per dot product plus the
// softmax's sensitivity to its scores, well under 1e-5; the atol covers outputs that come out of a
// cancellation (e.g. near-zero entries after out_proj), whose error scales with the magnitudes of
// the terms, not with the result.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "simdattn/safetensors.hpp"
#include "support/compare.hpp"
#include "support/test_data.hpp"

namespace {

namespace fs = std::filesystem;
using simdattn::test::read_metadata;
using simdattn::Backend;
using simdattn::Tensor;
using simdattn::TensorMap;

constexpr double kRtol = 1e-5;
constexpr double kAtolFraction = 1e-6;

fs::path golden_dir() { return fs::path(SIMDATTN_TEST_DATA_DIR) / "golden"; }



struct GoldenCase {
  std::map<std::string, std::string> meta;
  TensorMap weights;  ///< the state_dict, mask buffers included
  Tensor x, y, attn_weights;

  const std::string& module() const { return meta.at("module"); }
  std::int64_t get_int(const std::string& key) const { return std::stoll(meta.at(key)); }
  bool single_head() const { return !attn_weights.empty(); }
};

GoldenCase load_case(const std::string& stem) {
  const fs::path path = golden_dir() / (stem + ".safetensors");
  GoldenCase c;
  c.meta = read_metadata(path);
  for (auto& [name, tensor] : simdattn::load_safetensors(path.string())) {
    if (name == "x") c.x = std::move(tensor);
    else if (name == "y") c.y = std::move(tensor);
    else if (name == "attn_weights") c.attn_weights = std::move(tensor);
    else c.weights.emplace(name, std::move(tensor));
  }
  return c;
}

/// nullptr for `simple`, which is a function rather than a module.
std::unique_ptr<simdattn::AttentionModule> build_module(const GoldenCase& c) {
  const std::string& m = c.module();
  const std::int64_t d_in = c.get_int("d_in"), d_out = c.get_int("d_out");
  const std::int64_t context = c.get_int("context_length"), heads = c.get_int("num_heads");
  const bool bias = c.meta.at("qkv_bias") == "true";
  const double dropout = std::stod(c.meta.at("dropout"));
  std::unique_ptr<simdattn::AttentionModule> module;
  if (m == "simple") return nullptr;
  if (m == "self_attention_v1")
    module = std::make_unique<simdattn::SelfAttentionV1>(d_in, d_out);
  else if (m == "self_attention_v2")
    module = std::make_unique<simdattn::SelfAttentionV2>(d_in, d_out, bias);
  else if (m == "causal_attention")
    module = std::make_unique<simdattn::CausalAttention>(d_in, d_out, context, dropout, bias);
  else if (m == "mha_wrapper")
    module = std::make_unique<simdattn::MultiHeadAttentionWrapper>(d_in, d_out, context, dropout,
                                                                   heads, bias);
  else if (m == "mha")
    module = std::make_unique<simdattn::MultiHeadAttention>(d_in, d_out, context, dropout, heads,
                                                            bias);
  else
    throw std::runtime_error("unknown module in metadata: " + m);
  module->load_state_dict(c.weights);
  return module;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.values()) m = std::max(m, std::fabs(static_cast<double>(v)));
  return m;
}

::testing::AssertionResult matches(const Tensor& expected, const Tensor& actual,
                                   const std::string& what) {
  if (expected.shape() != actual.shape())
    return ::testing::AssertionFailure()
           << what << ": shape " << simdattn::shape_to_string(actual.shape()) << ", expected "
           << simdattn::shape_to_string(expected.shape());
  return simdattn::test::all_close(expected.values(), actual.values(),
                                   kAtolFraction * max_abs(expected), kRtol, what);
}

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  /// Runs the case on `backend` and compares; returns false if the backend is unsupported.
  bool run(Backend backend) {
    const GoldenCase c = load_case(GetParam());
    const std::string what = GetParam() + " (" + simdattn::backend_name(backend) + ")";
    const auto module = build_module(c);
    simdattn::ForwardOptions options;
    options.backend = backend;
    Tensor weights;
    if (c.single_head()) options.attn_weights = &weights;
    Tensor y;
    try {
      y = module ? module->forward(c.x, options) : simdattn::simple_attention(c.x, options);
    } catch (const simdattn::Error& e) {
      if (e.code() == simdattn::ErrorCode::unsupported) {
        unsupported_ = e.what();
        return false;
      }
      throw;
    }
    EXPECT_TRUE(matches(c.y, y, what + " y"));
    if (c.single_head()) {
      EXPECT_TRUE(matches(c.attn_weights, weights, what + " attn_weights"));
    }
    return true;
  }
  std::string unsupported_;
};

TEST_P(Golden, Reference) { EXPECT_TRUE(run(Backend::reference)) << unsupported_; }

TEST_P(Golden, Fast) {
  if (!run(Backend::fast)) {
    GTEST_SKIP() << "fast backend unsupported: " << unsupported_;
  }
}

INSTANTIATE_TEST_SUITE_P(PyTorch, Golden, ::testing::ValuesIn(simdattn::test::safetensors_stems(golden_dir())),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// Guards against a missing or thinned-out data folder making the suite above pass vacuously.
TEST(GoldenData, CoversEveryModule) {
  std::set<std::string> modules;
  for (const auto& stem : simdattn::test::safetensors_stems(golden_dir()))
    modules.insert(read_metadata(golden_dir() / (stem + ".safetensors")).at("module"));
  EXPECT_EQ(modules, (std::set<std::string>{"simple", "self_attention_v1", "self_attention_v2",
                                            "causal_attention", "mha_wrapper", "mha"}));
}

}  // namespace
