// tests/unit/test_llama_torch.cpp — LlamaAttention against PyTorch (tests/data/llama, written by
// tools/make_llama_data.py in Hugging Face's checkpoint layout, two layers per file): each case's
// layer is loaded with hf_attention_state_dict, kept in the checkpoint's own storage type, and
// run on both backends, as a plain forward per sequence and as one ragged forward_batch over all
// sequences. Pass: within rtol 1e-5 of PyTorch's float32 output, or no less accurate than it
// against the float64 run (PyTorch takes the rotary angles in float32, which at long positions
// is further from the exact rotation than the library's double-precision angles). "Within" is
// per element, |ours - torch| <= 1e-5 |torch| + 1e-6 max|y|; "no less accurate" is the largest
// error against float64 over the case.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/safetensors.hpp"
#include "support/test_data.hpp"

namespace simdattn::test {
namespace {

namespace fs = std::filesystem;

/// The committed cases, or SIMDATTN_LLAMA_DATA's (e.g. a held-out set written by
/// `tools/make_llama_data.py --holdout N --out DIR`).
fs::path llama_dir() {
  const char* env = std::getenv("SIMDATTN_LLAMA_DATA");
  return env != nullptr && *env != '\0' ? fs::path(env) : fs::path(SIMDATTN_TEST_DATA_DIR) / "llama";
}

std::vector<std::int64_t> parse_lengths(const std::string& s) {
  std::vector<std::int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

struct Verdict {
  double err = 0.0, torch_err = 0.0;  ///< max |ours - y64| and max |torch32 - y64|
  bool within_rtol = true;            ///< every element within rtol 1e-5 (+ tiny atol) of torch
  bool ok() const { return within_rtol || err <= torch_err; }
};

void score(Verdict& v, double ours, double torch32, double exact, double atol) {
  v.err = std::max(v.err, std::fabs(ours - exact));
  v.torch_err = std::max(v.torch_err, std::fabs(torch32 - exact));
  if (!(std::fabs(ours - torch32) <= atol + 1e-5 * std::fabs(torch32))) v.within_rtol = false;
  if (std::isnan(ours)) v.err = INFINITY;
}

class LlamaTorch : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaTorch, MatchesPyTorch) {
  const fs::path path = llama_dir() / (GetParam() + ".safetensors");
  const auto meta = read_metadata(path);
  const TensorMap file = load_safetensors(path.string());
  const TensorMap io = load_safetensors((llama_dir() / "io" / (GetParam() + ".safetensors")).string());
  const Tensor& x = io.at("x");
  const Tensor& y32 = io.at("y");
  const Tensor& hi = io.at("y64_hi");
  const Tensor& lo = io.at("y64_lo");
  const std::int64_t B = x.dim(0), T = x.dim(1), d = x.dim(2);
  const std::vector<std::int64_t> lengths = parse_lengths(meta.at("lengths"));
  ASSERT_EQ(static_cast<std::int64_t>(lengths.size()), B);

  LlamaAttention m(d, std::stoll(meta.at("num_heads")), std::stoll(meta.at("num_kv_heads")),
                   std::stoll(meta.at("head_dim")), std::stoll(meta.at("context_length")),
                   parse_rope(meta.at("rope")), std::stod(meta.at("rope_theta")),
                   meta.at("qkv_bias") == "true", meta.at("o_bias") == "true");
  m.set_weight_storage(safetensors_storage(path.string()));  // F16/BF16 stay in their type
  m.load_state_dict(hf_attention_state_dict(file, std::stoll(meta.at("layer"))));
  const DType expected_type = meta.at("dtype") == "F16"    ? DType::f16
                              : meta.at("dtype") == "BF16" ? DType::bf16
                                                           : DType::f32;
  EXPECT_EQ(m.weight_storage(), expected_type);

  double ymax = 0.0;
  for (std::int64_t i = 0; i < hi.numel(); ++i) ymax = std::max(ymax, std::fabs(double(hi[i])));
  // An absolute floor of 1e-6 of the output's scale (~8 float32 ulps of its largest element):
  // an output that cancels to near zero has no relative accuracy in any float32 computation.
  const double atol = 1e-6 * ymax;

  for (Backend backend : {Backend::fast, Backend::reference}) {
    ForwardOptions opt;
    opt.backend = backend;
    // Each sequence alone, plain forward.
    Verdict plain;
    // All sequences in one ragged forward_batch (prefill of different lengths).
    std::vector<KVCache> caches;
    std::vector<AttentionModule::SequenceStep> steps;
    std::vector<float> packed;
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t L = lengths[static_cast<std::size_t>(b)];
      const float* xb = x.data() + b * T * d;
      const Tensor xs({L, d}, std::vector<float>(xb, xb + L * d));
      const Tensor ys = m.forward(xs, opt);
      for (std::int64_t i = 0; i < L * d; ++i) {
        const std::int64_t at = b * T * d + i;
        score(plain, ys[i], y32[at], double(hi[at]) + double(lo[at]), atol);
      }
      caches.emplace_back(m, 1);
      packed.insert(packed.end(), xb, xb + L * d);
    }
    for (std::int64_t b = 0; b < B; ++b) steps.push_back({&caches[static_cast<std::size_t>(b)], lengths[static_cast<std::size_t>(b)]});
    Tensor yb;
    m.forward_batch(Tensor({static_cast<std::int64_t>(packed.size()) / d, d}, packed), steps, yb, opt);
    Verdict batched;
    std::int64_t row = 0;
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t L = lengths[static_cast<std::size_t>(b)];
      for (std::int64_t i = 0; i < L * d; ++i) {
        const std::int64_t at = b * T * d + i;
        score(batched, yb[row * d + i], y32[at], double(hi[at]) + double(lo[at]), atol);
      }
      row += L;
    }
    for (const Verdict* v : {&plain, &batched})
      EXPECT_TRUE(v->ok()) << GetParam() << " " << backend_name(backend)
                           << (v == &plain ? " plain" : " forward_batch") << ": max error vs float64 "
                           << v->err << ", PyTorch float32's " << v->torch_err
                           << ", within rtol 1e-5 of PyTorch: " << v->within_rtol;
  }
}

INSTANTIATE_TEST_SUITE_P(HuggingFace, LlamaTorch,
                         ::testing::ValuesIn(safetensors_stems(llama_dir())));

TEST(LlamaTorchData, IsPresent) { EXPECT_GE(safetensors_stems(llama_dir()).size(), 5u); }

}  // namespace
}  // namespace simdattn::test
