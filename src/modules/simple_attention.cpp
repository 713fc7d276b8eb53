// src/modules/simple_attention.cpp — book §3.3's self-attention without trainable weights:
// argument checks, then the chosen backend.
#include <cstdint>
#include <utility>
#include <vector>

#include "common/validate.hpp"
#include "drivers/attention.hpp"
#include "modules/attention_core.hpp"
#include "reference/attention_reference.hpp"
#include "simdattn/attention.hpp"

namespace simdattn {

Tensor simple_attention(const Tensor& x, const ForwardOptions& options, SoftmaxKind softmax) {
  const char* who = "simple_attention";
  if (x.rank() != 2 && x.rank() != 3)
    detail::fail_arg(who, ": x rank (", x.rank(), ") must be 2 ([T, d]) or 3 ([B, T, d]);",
                     " x has shape ", shape_to_string(x.shape()));
  const bool batched = x.rank() == 3;
  const std::int64_t batch = batched ? x.dim(0) : 1;
  const std::int64_t tokens = x.dim(x.rank() - 2);
  const std::int64_t dim = x.dim(x.rank() - 1);
  detail::require_positive(who, "batch size B", batch);
  detail::require_positive(who, "sequence length T", tokens);
  detail::require_positive(who, "feature size d", dim);
  if (options.backend != Backend::fast && options.backend != Backend::reference)
    detail::fail_arg(who, ": options.backend (", static_cast<int>(options.backend),
                     ") is not a Backend");
  if (softmax != SoftmaxKind::stable && softmax != SoftmaxKind::naive)
    detail::fail_arg(who, ": softmax (", static_cast<int>(softmax), ") is not a SoftmaxKind");
  // The naive softmax exists to show the overflow of §3.3.1; only the oracle reproduces it.
  if (softmax == SoftmaxKind::naive && options.backend != Backend::reference)
    detail::fail_arg(who, ": softmax (naive) requires backend (reference), got backend (",
                     backend_name(options.backend), ")");

  Tensor y(x.shape());
  Tensor weights;
  if (options.attn_weights != nullptr) {
    const std::int64_t rows = detail::checked_mul(who, "B * T", batch, tokens);
    detail::checked_mul(who, "B * T * T (attn_weights)", rows, tokens);
    weights = Tensor(batched ? std::vector<std::int64_t>{batch, tokens, tokens}
                             : std::vector<std::int64_t>{tokens, tokens});
  }
  float* weights_out = options.attn_weights != nullptr ? weights.data() : nullptr;

  if (options.backend == Backend::reference)
    detail::simple_attention_reference(x.data(), batch, tokens, dim, y.data(), weights_out,
                                       softmax == SoftmaxKind::naive);
  else
    detail::simple_attention_fast(x.data(), batch, tokens, dim, y.data(), weights_out);

  if (options.attn_weights != nullptr) *options.attn_weights = std::move(weights);  // may alias x
  return y;
}

}  // namespace simdattn
