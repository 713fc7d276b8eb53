// tests/fuzz/fuzz_module.cpp — libFuzzer target for module construction and forward: the input
// bytes choose a module, its sizes (zero and out-of-range ones included), dropout, backend,
// KV-cache splits, and the raw bits of the inputs and weights (NaN and Inf included). Any
// simdattn::Error is a correct answer; a crash, a sanitizer report, a wrong output shape or
// another exception type is a bug.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "simdattn/simdattn.hpp"

namespace {

class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  /// A size in [lo, hi], read from one byte.
  std::int64_t size(std::int64_t lo, std::int64_t hi) { return lo + byte() % (hi - lo + 1); }
  float value() {
    // Half the time a small ordinary number, half the time raw bits (NaN, Inf, subnormals).
    if (byte() & 1) return static_cast<float>(static_cast<std::int8_t>(byte())) / 32.0f;
    std::uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits = (bits << 8) | byte();
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

void check(bool ok) {
  if (!ok) std::abort();
}

std::unique_ptr<simdattn::AttentionModule> make(Bytes& in, int kind, std::int64_t d_in,
                                                std::int64_t d_out, std::int64_t context,
                                                double dropout, std::int64_t heads, bool bias) {
  switch (kind) {
    case 0: return std::make_unique<simdattn::SelfAttentionV1>(d_in, d_out);
    case 1: return std::make_unique<simdattn::SelfAttentionV2>(d_in, d_out, bias);
    case 2:
      return std::make_unique<simdattn::CausalAttention>(d_in, d_out, context, dropout, bias);
    case 3:
      return std::make_unique<simdattn::MultiHeadAttentionWrapper>(d_in, d_out, context, dropout,
                                                                   heads, bias);
    default:
      (void)in;
      return std::make_unique<simdattn::MultiHeadAttention>(d_in, d_out, context, dropout, heads,
                                                            bias);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  const int kind = in.byte() % 6;  // 5: simple_attention
  const std::int64_t d_in = in.size(-1, 24), d_out = in.size(-1, 24);
  const std::int64_t heads = in.size(-1, 5), context = in.size(-1, 20);
  const std::int64_t batch = in.size(0, 3), tokens = in.size(0, 20);
  const bool bias = in.byte() & 1;
  const bool train = in.byte() & 1;
  const double dropout = static_cast<double>(in.byte()) / 200.0;  // up to 1.275: some invalid
  const simdattn::Backend backend =
      (in.byte() & 1) ? simdattn::Backend::fast : simdattn::Backend::reference;
  const std::int64_t prefill = in.size(-1, 20);
  try {
    simdattn::ForwardOptions opt;
    opt.backend = backend;
    opt.train = train;
    opt.seed = in.byte();
    simdattn::Tensor x({batch, tokens, d_in < 0 ? 0 : d_in});
    for (float& v : x.values()) v = in.value();
    if (kind == 5) {
      const simdattn::Tensor y = simdattn::simple_attention(x, opt);
      check(y.shape() == x.shape());
      return 0;
    }
    auto module = make(in, kind, d_in, d_out, context, dropout, heads, bias);
    simdattn::TensorMap state;
    for (const simdattn::ParamInfo& p : module->parameters()) {
      simdattn::Tensor t(p.shape);
      for (float& v : t.values()) v = in.value();
      state.emplace(p.name, std::move(t));
    }
    if (in.byte() % 8 == 0 && !state.empty()) state.erase(state.begin());  // a missing key
    module->load_state_dict(state);
    if (prefill >= 0 && module->causal()) {
      simdattn::KVCache cache(*module, batch, in.size(0, 24), in.byte() & 1);
      std::int64_t t = 0;
      while (t < tokens) {
        const std::int64_t n = std::min(tokens - t, t == 0 && prefill > 0 ? prefill : std::int64_t{1});
        simdattn::Tensor part({batch, n, d_in});
        for (std::int64_t b = 0; b < batch; ++b)
          for (std::int64_t i = 0; i < n * d_in; ++i)
            part[b * n * d_in + i] = x[(b * tokens + t) * d_in + i % (n * d_in)];
        const simdattn::Tensor y = module->forward(part, cache, opt);
        check(y.numel() == batch * n * module->output_dim());
        t += n;
      }
      return 0;
    }
    const simdattn::Tensor y = module->forward(x, opt);
    check(y.numel() == batch * tokens * module->output_dim());
  } catch (const simdattn::Error&) {
    // A documented error: the right answer to a bad configuration.
  }
  return 0;
}
