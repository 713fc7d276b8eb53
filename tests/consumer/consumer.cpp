// Embeds simdattn through its umbrella header: a MultiHeadAttention forward, then the same
// tokens through a KV cache, one at a time; exits non-zero if they disagree or if the library
// linked is not the version of its headers.
#include <simdattn/simdattn.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>

int main() {
  const std::int64_t d = 32, heads = 4, tokens = 9;
  simdattn::MultiHeadAttention mha(d, d, /*context_length=*/16, /*dropout=*/0.0, heads, true);
  mha.init_random(7);
  simdattn::Tensor x({1, tokens, d});
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = std::sin(0.37 * static_cast<double>(i));
  const simdattn::Tensor full = mha.forward(x);

  simdattn::KVCache cache(mha, /*batch=*/1);
  double max_diff = 0.0;
  for (std::int64_t t = 0; t < tokens; ++t) {
    simdattn::Tensor step({1, 1, d});
    for (std::int64_t j = 0; j < d; ++j) step[j] = x[t * d + j];
    const simdattn::Tensor y = mha.forward(step, cache);
    for (std::int64_t j = 0; j < d; ++j)
      max_diff = std::fmax(max_diff, std::fabs(y[j] - full[t * d + j]));
  }
  // The library linked is the one these headers describe.
  const bool same_version = std::strcmp(simdattn::version().string, SIMDATTN_VERSION_STRING) == 0;
  std::printf("consumer_cpp: simdattn %s (headers %s), isa %s, max |full - cached| = %.3g\n",
              simdattn::version().string, SIMDATTN_VERSION_STRING,
              simdattn::isa_name(simdattn::active_isa()), max_diff);
  return same_version && max_diff <= 1e-4 ? 0 : 1;
}
