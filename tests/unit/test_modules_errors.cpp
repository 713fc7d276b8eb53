// tests/unit/test_modules_errors.cpp — every bad argument of the module layer throws
// simdattn::Error(invalid_argument) with a message naming the module and the argument, and
// does so before any backend runs (the default options select the fast backend).
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"

namespace {

using simdattn::Backend;
using simdattn::ForwardOptions;
using simdattn::Tensor;
using simdattn::TensorMap;

/// Passes if f throws Error(invalid_argument) whose message contains every needle.
::testing::AssertionResult throws_invalid(const std::function<void()>& f,
                                          const std::vector<std::string>& needles) {
  try {
    f();
  } catch (const simdattn::Error& e) {
    const std::string what = e.what();
    if (e.code() != simdattn::ErrorCode::invalid_argument)
      return ::testing::AssertionFailure() << "code " << static_cast<int>(e.code()) << ": " << what;
    for (const std::string& n : needles)
      if (what.find(n) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << what << "\" lacks \"" << n << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "not a simdattn::Error: " << e.what();
  }
  return ::testing::AssertionFailure() << "nothing thrown";
}

ForwardOptions on(Backend backend) {
  ForwardOptions o;
  o.backend = backend;
  return o;
}

constexpr std::int64_t kHuge = std::int64_t{1} << 40;

TEST(ModuleErrors, DivisibilityMessageIsExact) {
  try {
    simdattn::MultiHeadAttention(768, 770, 1024, 0.0, 12);
    ADD_FAILURE() << "accepted";
  } catch (const simdattn::Error& e) {
    EXPECT_EQ(e.code(), simdattn::ErrorCode::invalid_argument);
    EXPECT_STREQ(e.what(), "MultiHeadAttention: d_out (770) must be divisible by num_heads (12)");
  }
}

TEST(ModuleErrors, NonPositiveSizes) {
  using simdattn::CausalAttention, simdattn::MultiHeadAttention,
      simdattn::MultiHeadAttentionWrapper, simdattn::SelfAttentionV1, simdattn::SelfAttentionV2;
  EXPECT_TRUE(throws_invalid([] { SelfAttentionV1(0, 2); }, {"SelfAttentionV1", "d_in (0)"}));
  EXPECT_TRUE(throws_invalid([] { SelfAttentionV1(3, -1); }, {"SelfAttentionV1", "d_out (-1)"}));
  EXPECT_TRUE(throws_invalid([] { SelfAttentionV2(-3, 2); }, {"SelfAttentionV2", "d_in (-3)"}));
  EXPECT_TRUE(
      throws_invalid([] { SelfAttentionV2(3, 0, true); }, {"SelfAttentionV2", "d_out (0)"}));
  EXPECT_TRUE(
      throws_invalid([] { CausalAttention(0, 2, 4, 0.0); }, {"CausalAttention", "d_in (0)"}));
  EXPECT_TRUE(
      throws_invalid([] { CausalAttention(3, 0, 4, 0.0); }, {"CausalAttention", "d_out (0)"}));
  EXPECT_TRUE(throws_invalid([] { CausalAttention(3, 2, 0, 0.0); },
                             {"CausalAttention", "context_length (0)"}));
  EXPECT_TRUE(throws_invalid([] { CausalAttention(3, 2, -5, 0.0); },
                             {"CausalAttention", "context_length (-5)"}));
  EXPECT_TRUE(throws_invalid([] { MultiHeadAttentionWrapper(3, 2, 4, 0.0, 0); },
                             {"MultiHeadAttentionWrapper", "num_heads (0)"}));
  EXPECT_TRUE(throws_invalid([] { MultiHeadAttentionWrapper(0, 2, 4, 0.0, 2); },
                             {"MultiHeadAttentionWrapper", "d_in (0)"}));
  EXPECT_TRUE(throws_invalid([] { MultiHeadAttentionWrapper(3, 2, 0, 0.0, 2); },
                             {"MultiHeadAttentionWrapper", "context_length (0)"}));
  EXPECT_TRUE(throws_invalid([] { MultiHeadAttention(3, 4, 4, 0.0, -2); },
                             {"MultiHeadAttention", "num_heads (-2)"}));
  EXPECT_TRUE(throws_invalid([] { MultiHeadAttention(3, 0, 4, 0.0, 2); },
                             {"MultiHeadAttention", "d_out (0)"}));
  EXPECT_TRUE(throws_invalid([] { MultiHeadAttention(3, 4, 0, 0.0, 2); },
                             {"MultiHeadAttention", "context_length (0)"}));
  EXPECT_TRUE(throws_invalid([] { MultiHeadAttention(3, 6, 4, 0.0, 4); },
                             {"d_out (6)", "num_heads (4)", "divisible"}));
}

TEST(ModuleErrors, SizesWhoseProductOverflows) {
  using simdattn::MultiHeadAttention, simdattn::MultiHeadAttentionWrapper;
  EXPECT_TRUE(throws_invalid([] { simdattn::SelfAttentionV1(kHuge, kHuge); },
                             {"SelfAttentionV1", "d_in", "overflows"}));
  EXPECT_TRUE(throws_invalid([] { simdattn::SelfAttentionV2(kHuge, kHuge, true); },
                             {"SelfAttentionV2", "d_in", "overflows"}));
  EXPECT_TRUE(throws_invalid([] { MultiHeadAttention(2, kHuge, 4, 0.0, 1); },
                             {"MultiHeadAttention", "d_out", "overflows"}));
  EXPECT_TRUE(throws_invalid([] { MultiHeadAttentionWrapper(2, kHuge, 4, 0.0, kHuge); },
                             {"MultiHeadAttentionWrapper", "num_heads * d_out", "overflows"}));
  // Fits int64 as d_in * d_out but not three matrices of it in bytes.
  EXPECT_TRUE(throws_invalid(
      [] { simdattn::CausalAttention(std::int64_t{1} << 31, std::int64_t{1} << 31, 4, 0.0); },
      {"CausalAttention", "d_in"}));
}

TEST(ModuleErrors, ForwardInputChecksRunBeforeAnyBackend) {
  simdattn::CausalAttention ca(3, 2, 4, 0.0);
  simdattn::SelfAttentionV1 v1(3, 2);
  for (Backend backend : {Backend::fast, Backend::reference}) {
    const ForwardOptions o = on(backend);
    EXPECT_TRUE(
        throws_invalid([&] { ca.forward(Tensor({3}), o); }, {"CausalAttention", "x rank (1)"}));
    EXPECT_TRUE(throws_invalid([&] { ca.forward(Tensor({1, 1, 2, 3}), o); }, {"x rank (4)"}));
    EXPECT_TRUE(throws_invalid([&] { ca.forward(Tensor(), o); }, {"x rank (0)"}));
    EXPECT_TRUE(throws_invalid(
        [&] {
          ca.forward(Tensor({2, 4, 5}), o);
        },
        {"CausalAttention", "x feature size (5)", "d_in (3)"}));
    EXPECT_TRUE(throws_invalid(
        [&] {
          ca.forward(Tensor({0, 3}), o);
        },
        {"CausalAttention", "sequence length T (0)"}));
    EXPECT_TRUE(throws_invalid(
        [&] {
          ca.forward(Tensor({2, 0, 3}), o);
        },
        {"sequence length T (0)"}));
    EXPECT_TRUE(throws_invalid(
        [&] {
          ca.forward(Tensor({0, 2, 3}), o);
        },
        {"CausalAttention", "batch size B (0)"}));
    EXPECT_TRUE(throws_invalid(
        [&] {
          ca.forward(Tensor({5, 3}), o);
        },
        {"CausalAttention", "sequence length T (5)", "context_length (4)"}));
    EXPECT_TRUE(throws_invalid(
        [&] {
          v1.forward(Tensor({0, 3}), o);
        },
        {"SelfAttentionV1", "T (0)"}));
  }
  // Unmasked modules have no context limit.
  EXPECT_NO_THROW(v1.forward(Tensor({50, 3}), on(Backend::reference)));
}

TEST(ModuleErrors, AttnWeightsOnlyForSingleHeadModules) {
  Tensor weights;
  for (Backend backend : {Backend::fast, Backend::reference}) {
    ForwardOptions o = on(backend);
    o.attn_weights = &weights;
    simdattn::MultiHeadAttention mha(3, 4, 4, 0.0, 2);
    simdattn::MultiHeadAttentionWrapper wrapper(3, 2, 4, 0.0, 3);
    EXPECT_TRUE(throws_invalid(
        [&] {
          mha.forward(Tensor({2, 3}), o);
        },
        {"MultiHeadAttention", "attn_weights", "num_heads (2)"}));
    EXPECT_TRUE(throws_invalid(
        [&] {
          wrapper.forward(Tensor({2, 3}), o);
        },
        {"MultiHeadAttentionWrapper", "attn_weights"}));
  }
}

TEST(ModuleErrors, BadBackendValue) {
  simdattn::SelfAttentionV2 v2(3, 2);
  EXPECT_TRUE(throws_invalid(
      [&] {
        v2.forward(Tensor({2, 3}), on(static_cast<Backend>(7)));
      },
      {"SelfAttentionV2", "backend"}));
}

TEST(ModuleErrors, StrictLoadStateDict) {
  simdattn::CausalAttention ca(3, 2, 4, 0.0, true);
  const TensorMap good = ca.state_dict();

  TensorMap missing = good;
  missing.erase("W_key.bias");
  EXPECT_TRUE(throws_invalid([&] { ca.load_state_dict(missing); },
                             {"CausalAttention", "missing", "W_key.bias"}));

  TensorMap shape = good;
  shape["W_value.weight"] = Tensor({3, 2});
  EXPECT_TRUE(
      throws_invalid([&] { ca.load_state_dict(shape); }, {"W_value.weight", "[3, 2]", "[2, 3]"}));

  TensorMap extra = good;
  extra["out_proj.weight"] = Tensor({2, 2});
  EXPECT_TRUE(
      throws_invalid([&] { ca.load_state_dict(extra); }, {"unexpected", "out_proj.weight"}));

  simdattn::SelfAttentionV2 no_bias(3, 2, false);
  TensorMap with_bias = no_bias.state_dict();
  with_bias["W_query.bias"] = Tensor({2});
  EXPECT_TRUE(throws_invalid([&] { no_bias.load_state_dict(with_bias); },
                             {"SelfAttentionV2", "unexpected", "W_query.bias"}));

  simdattn::SelfAttentionV1 v1(3, 2);
  EXPECT_TRUE(throws_invalid([&] { v1.load_state_dict(no_bias.state_dict()); },
                             {"SelfAttentionV1", "missing", "W_query"}));
  EXPECT_TRUE(throws_invalid([&] { v1.load_state_dict({}); }, {"missing"}));

  simdattn::MultiHeadAttentionWrapper w(3, 2, 4, 0.0, 2);
  TensorMap ws = w.state_dict();
  ws["heads.01.mask"] = Tensor({4, 4});
  EXPECT_TRUE(throws_invalid([&] { w.load_state_dict(ws); }, {"unexpected", "heads.01.mask"}));
  ws.erase("heads.01.mask");
  ws.erase("heads.1.W_value.weight");
  EXPECT_TRUE(
      throws_invalid([&] { w.load_state_dict(ws); }, {"missing", "heads.1.W_value.weight"}));

  simdattn::MultiHeadAttention mha(3, 4, 4, 0.0, 2);
  TensorMap ms = mha.state_dict();
  ms.erase("out_proj.bias");
  EXPECT_TRUE(throws_invalid([&] { mha.load_state_dict(ms); }, {"missing", "out_proj.bias"}));
}

TEST(SimpleAttentionErrors, BadArguments) {
  const ForwardOptions ref = on(Backend::reference);
  EXPECT_TRUE(throws_invalid([&] { simdattn::simple_attention(Tensor({4}), ref); },
                             {"simple_attention", "x rank (1)"}));
  EXPECT_TRUE(throws_invalid(
      [&] {
        simdattn::simple_attention(Tensor({0, 3}), ref);
      },
      {"simple_attention", "T (0)"}));
  EXPECT_TRUE(throws_invalid(
      [&] {
        simdattn::simple_attention(Tensor({3, 0}), ref);
      },
      {"simple_attention", "d (0)"}));
  EXPECT_TRUE(throws_invalid(
      [&] {
        simdattn::simple_attention(Tensor({0, 3, 3}), ref);
      },
      {"simple_attention", "B (0)"}));
  EXPECT_TRUE(throws_invalid(
      [] {
        simdattn::simple_attention(Tensor({2, 3}), on(Backend::fast), simdattn::SoftmaxKind::naive);
      },
      {"simple_attention", "naive", "reference"}));
  EXPECT_TRUE(throws_invalid(
      [] {
        simdattn::simple_attention(Tensor({2, 3}), {}, simdattn::SoftmaxKind::naive);
      },
      {"naive"}));
}

}  // namespace
