// tests/unit/test_gpt2_layer.cpp — a GPT-2 checkpoint's attention layer run as a
// MultiHeadAttention reproduces GPT-2's own attention math (PyTorch, tools/make_gpt2_checkpoint.py)
// on both backends, every usable ISA, in one forward and through a KV cache; for an F32 checkpoint
// with the `transformer.` prefix and a half-precision one (layer 0 F16, layer 1 BF16).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "simdattn/gpt2.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/runtime.hpp"
#include "simdattn/safetensors.hpp"
#include "support/compare.hpp"

namespace simdattn {
namespace {

const std::string kDir = std::string(SIMDATTN_TEST_DATA_DIR) + "/gpt2/";
constexpr std::int64_t kHeads = 4, kContext = 16;

struct Checkpoint {
  const char* name;  ///< gpt2_tiny_<name>.safetensors and gpt2_tiny_<name>_expected.safetensors
};

/// The stored y is the float64 result rounded once to float32 (see the script), so the bound is
/// the library's own error: rel 1e-5 plus 1e-6 of the largest |y| for the elements near zero,
/// the same criterion as the golden tests.
::testing::AssertionResult matches(const Tensor& expected, const Tensor& actual,
                                   const std::string& what) {
  if (expected.shape() != actual.shape())
    return ::testing::AssertionFailure() << what << ": shape " << shape_to_string(actual.shape())
                                         << ", expected " << shape_to_string(expected.shape());
  double emax = 0.0;
  for (float v : expected.values()) emax = std::max(emax, static_cast<double>(std::fabs(v)));
  return test::all_close(expected.values(), actual.values(), 1e-6 * emax, 1e-5, what);
}

std::vector<std::pair<Backend, Isa>> paths() {
  std::vector<std::pair<Backend, Isa>> out{{Backend::reference, active_isa()}};
  for (Isa isa : usable_isas()) out.push_back({Backend::fast, isa});
  return out;
}

/// Restores the ISA a test forced, however the test ends.
struct IsaGuard {
  Isa saved = active_isa();
  ~IsaGuard() { set_isa(saved); }
};

class Gpt2Layer : public ::testing::TestWithParam<Checkpoint> {};

TEST_P(Gpt2Layer, AttentionMatchesGpt2sMath) {
  const std::string name = GetParam().name;
  const TensorMap ckpt = load_safetensors(kDir + "gpt2_tiny_" + name + ".safetensors");
  const TensorMap expected = load_safetensors(kDir + "gpt2_tiny_" + name + "_expected.safetensors");
  ASSERT_EQ(gpt2_num_layers(ckpt), 2);
  const Tensor& x = expected.at("x");
  const IsaGuard guard;
  for (std::int64_t layer = 0; layer < 2; ++layer) {
    const std::int64_t d = gpt2_model_dim(ckpt, layer);
    ASSERT_EQ(d, 32);
    MultiHeadAttention mha(d, d, kContext, 0.0, kHeads, /*qkv_bias=*/true);
    mha.load_state_dict(gpt2_attention_state_dict(ckpt, layer));
    const Tensor& want = expected.at("y_layer" + std::to_string(layer));
    for (const auto& [backend, isa] : paths()) {
      set_isa(isa);
      ForwardOptions opt;
      opt.backend = backend;
      const std::string what = name + " layer " + std::to_string(layer) + " " +
                               backend_name(backend) + " isa " + isa_name(isa);
      EXPECT_TRUE(matches(want, mha.forward(x, opt), what + " full forward"));
      // The same through a KV cache: a 5-token prompt, then one token at a time.
      KVCache cache(mha, x.dim(0));
      const std::int64_t batch = x.dim(0), tokens = x.dim(1);
      Tensor y({batch, tokens, d});
      for (std::int64_t t = 0; t < tokens;) {
        const std::int64_t n = t == 0 ? 5 : 1;
        Tensor chunk({batch, n, d});
        for (std::int64_t b = 0; b < batch; ++b)
          std::copy_n(x.data() + (b * tokens + t) * d, n * d, chunk.data() + b * n * d);
        const Tensor out = mha.forward(chunk, cache, opt);
        for (std::int64_t b = 0; b < batch; ++b)
          std::copy_n(out.data() + b * n * d, n * d, y.data() + (b * tokens + t) * d);
        t += n;
      }
      EXPECT_TRUE(matches(want, y, what + " through a KV cache"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, Gpt2Layer,
                         ::testing::Values(Checkpoint{"f32"}, Checkpoint{"half"}),
                         [](const ::testing::TestParamInfo<Checkpoint>& info) {
                           return std::string(info.param.name);
                         });

TEST(Gpt2LayerData, HalfCheckpointHoldsHalfPrecisionValues) {
  // Layer 0's attention is stored F16, layer 1's BF16: every value the reader returns must be
  // representable in that format (F16: 11 significant bits; BF16: 8), which shows the file
  // really exercises both conversions rather than F32 data in disguise.
  const TensorMap ckpt = load_safetensors(kDir + "gpt2_tiny_half.safetensors");
  auto significant_bits_at_most = [](float v, int bits) {
    if (v == 0.0f) return true;
    int e = 0;
    const double m = std::frexp(static_cast<double>(v), &e);  // v = m 2^e, 0.5 <= |m| < 1
    const double scaled = std::ldexp(m, bits);
    return scaled == std::round(scaled);
  };
  for (const auto& [layer, bits] : {std::pair<int, int>{0, 11}, std::pair<int, int>{1, 8}}) {
    const Tensor& w = ckpt.at("h." + std::to_string(layer) + ".attn.c_attn.weight");
    int exact_at_fewer_bits = 0;
    for (float v : w.values()) {
      ASSERT_TRUE(significant_bits_at_most(v, bits)) << "layer " << layer << " value " << v;
      exact_at_fewer_bits += significant_bits_at_most(v, bits - 3);
    }
    EXPECT_LT(exact_at_fewer_bits, w.numel() / 2) << "layer " << layer << " looks coarser";
  }
}

}  // namespace
}  // namespace simdattn
