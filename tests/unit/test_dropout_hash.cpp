// tests/unit/test_dropout_hash.cpp — the dropout mask against expectations that do not come from
// src/common/dropout.hpp's code: the reference and fast paths share that hash, so the
// differential tests cannot see a fault in it. Here (1) a table written by
// tools/make_dropout_table.py, which reimplements the hash from its documented definition,
// (2) the keep fraction's binomial statistics and the 1/(1-p) scale, and (3) training-mode
// forwards of the book's classes in PyTorch under the same mask (tests/data/dropout/), on
// both backends and every usable ISA.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/dropout.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/runtime.hpp"
#include "simdattn/safetensors.hpp"
#include "support/compare.hpp"
#include "support/test_data.hpp"

namespace simdattn {
namespace {

using detail::DropoutParams;

struct HashRow {
  std::uint64_t seed, b, h, i, j, bits53;
  unsigned keep;  ///< bit r: kept at kRates[r]
};

constexpr double kRates[] = {0.1, 0.25, 0.5, 0.75, 0.9};
constexpr HashRow kTable[] = {
#include "dropout_hash_table.inc"
};

TEST(DropoutHash, MatchesTheIndependentReimplementation) {
  static_assert(sizeof(kTable) / sizeof(kTable[0]) == 64);
  for (const HashRow& r : kTable) {
    const std::string at = "seed " + std::to_string(r.seed) + " b " + std::to_string(r.b) +
                           " h " + std::to_string(r.h) + " i " + std::to_string(r.i) + " j " +
                           std::to_string(r.j);
    const double u = detail::dropout_uniform(r.seed, r.b, r.h, r.i, r.j);
    EXPECT_EQ(u, static_cast<double>(r.bits53) / 9007199254740992.0) << at;
    for (std::size_t k = 0; k < std::size(kRates); ++k)
      EXPECT_EQ(detail::dropout_keep(DropoutParams{kRates[k], r.seed}, r.b, r.h, r.i, r.j),
                ((r.keep >> k) & 1u) != 0)
          << at << " p " << kRates[k];
  }
}

TEST(DropoutHash, KeepFractionWithinSixSigmaOfOneMinusP) {
  // 2^20 draws over (b, h, i, j) for each p; Binomial(n, 1-p) has sigma sqrt(n p (1-p)).
  for (double p : {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99}) {
    const DropoutParams d{p, 20261201};
    std::int64_t n = 0, kept = 0;
    for (std::uint64_t b = 0; b < 4; ++b)
      for (std::uint64_t h = 0; h < 4; ++h)
        for (std::uint64_t i = 0; i < 256; ++i)
          for (std::uint64_t j = 0; j < 256; ++j, ++n) kept += detail::dropout_keep(d, b, h, i, j);
    const double sigma = std::sqrt(n * p * (1 - p));
    EXPECT_LE(std::fabs(kept - n * (1 - p)), 6 * sigma)
        << "p " << p << ": kept " << kept << " of " << n;
  }
  // p = 0 keeps everything, whatever the hash says.
  EXPECT_TRUE(detail::dropout_keep(DropoutParams{0.0, 1}, 0, 0, 0, 0));
}


struct IsaRestore {
  Isa isa = active_isa();
  ~IsaRestore() { set_isa(isa); }
};

std::vector<std::pair<Backend, Isa>> paths() {
  std::vector<std::pair<Backend, Isa>> out{{Backend::reference, active_isa()}};
  for (Isa isa : usable_isas()) out.push_back({Backend::fast, isa});
  return out;
}

// Inverted dropout as torch's nn.Dropout computes it (tools/make_dropout_table.py checks that
// on torch): kept weights times float32(1/(1-p)), in float32 on the fast path (bit for bit;
// the reference multiplies in double and rounds once, so within 4u of that product), dropped
// ones exactly 0; none in eval mode.
TEST(DropoutHash, KeptWeightsScaleByOneOverOneMinusPOnEveryPath) {
  const std::int64_t B = 2, T = 40, din = 5, dout = 3;
  const IsaRestore restore;
  for (double p : {0.1, 0.3, 0.9}) {
    EXPECT_EQ((DropoutParams{p, 0}.keep_scale()), 1.0 / (1.0 - p));
    CausalAttention ca(din, dout, T, p);
    ca.init_random(3);
    const Tensor x = test::lcg_tensor({B, T, din}, 11);
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    for (const auto& [backend, isa] : paths()) {
      set_isa(isa);
      const std::string what = std::string(backend_name(backend)) + " " + isa_name(isa) + " p " +
                               std::to_string(p);
      ForwardOptions o;
      o.backend = backend;
      Tensor plain, dropped, eval;
      o.attn_weights = &plain;
      ca.forward(x, o);
      o.train = true;
      o.seed = 99;
      o.attn_weights = &dropped;
      ca.forward(x, o);
      std::int64_t n = 0, zeros = 0;
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t i = 0; i < T; ++i)
          for (std::int64_t j = 0; j <= i; ++j, ++n) {
            const std::int64_t at = (b * T + i) * T + j;
            if (detail::dropout_keep(DropoutParams{p, 99}, b, 0, i, j)) {
              const float want = plain[at] * scale;
              if (backend == Backend::fast) {  // float weight times float scale, as torch does
                EXPECT_EQ(dropped[at], want) << what << " kept weight at " << at;
              } else {  // fl(w s) from double vs fl(fl(w) fl(s)): three roundings, <= 4u
                EXPECT_LE(std::fabs(dropped[at] - want), std::fabs(want) * 0x1p-22f)
                    << what << " kept weight at " << at << ": " << dropped[at] << " vs " << want;
              }
            } else {
              EXPECT_EQ(dropped[at], 0.0f) << what << " dropped weight at " << at;
              ++zeros;
            }
          }
      EXPECT_GT(zeros, 0) << what;
      EXPECT_LT(zeros, n) << what;
      o.train = false;
      o.attn_weights = &eval;
      ca.forward(x, o);
      EXPECT_TRUE(test::bitwise_equal(plain.values(), eval.values(), what + " eval mode"));
    }
  }
}


::testing::AssertionResult close(const Tensor& want, const Tensor& got, const std::string& what) {
  if (want.shape() != got.shape())
    return ::testing::AssertionFailure() << what << ": shape " << shape_to_string(got.shape());
  double m = 0;
  for (float v : want.values()) m = std::max(m, double(std::fabs(v)));
  // As the golden tests: the stored values are float64 rounded once, the sizes tiny.
  return test::all_close(want.values(), got.values(), 1e-6 * m, 1e-5, what);
}

class DropoutTorch : public ::testing::TestWithParam<const char*> {};

// The book's CausalAttention / MultiHeadAttention in training mode, PyTorch, under this mask:
// pins the whole training forward (mask indices b, h, i, j; the scale; dropout after the
// softmax, before P·V) to the book's semantics.
TEST_P(DropoutTorch, TrainingForwardMatchesTheBooksClasses) {
  const std::string path = std::string(SIMDATTN_TEST_DATA_DIR) + "/dropout/" + GetParam() +
                           ".safetensors";
  const auto meta = test::read_metadata(path);
  TensorMap file = load_safetensors(path);
  const Tensor x = file.at("x"), y = file.at("y");
  Tensor want_w;
  if (file.count("attn_weights")) want_w = file.at("attn_weights");
  TensorMap sd;
  for (auto& [k, t] : file)
    if (k != "x" && k != "y" && k != "attn_weights") sd.emplace(k, t);
  const auto geti = [&](const char* k) { return std::stoll(meta.at(k)); };
  const double p = std::stod(meta.at("dropout"));
  std::unique_ptr<AttentionModule> m;
  if (meta.at("module") == "causal_attention")
    m = std::make_unique<CausalAttention>(geti("d_in"), geti("d_out"), geti("context_length"), p,
                                          meta.at("qkv_bias") == "true");
  else
    m = std::make_unique<MultiHeadAttention>(geti("d_in"), geti("d_out"), geti("context_length"),
                                             p, geti("num_heads"), meta.at("qkv_bias") == "true");
  m->load_state_dict(sd);
  const IsaRestore restore;
  for (const auto& [backend, isa] : paths()) {
    set_isa(isa);
    const std::string what = std::string(GetParam()) + " " + backend_name(backend) + " " +
                             isa_name(isa);
    ForwardOptions o;
    o.backend = backend;
    o.train = true;
    o.seed = std::stoull(meta.at("mask_seed"));
    Tensor w;
    if (!want_w.empty()) o.attn_weights = &w;
    EXPECT_TRUE(close(y, m->forward(x, o), what + " y"));
    if (!want_w.empty()) {
      EXPECT_TRUE(close(want_w, w, what + " attn_weights"));
      o.attn_weights = nullptr;  // the fast path then takes the flash kernels, not the GEMMs
      EXPECT_TRUE(close(y, m->forward(x, o), what + " y without weights"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(PyTorch, DropoutTorch, ::testing::Values("causal_train", "mha_train"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

}  // namespace
}  // namespace simdattn
