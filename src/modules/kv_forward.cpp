// src/modules/kv_forward.cpp — AttentionModule::forward through a KV cache: validation, making
// room in the cache, the chosen backend, then committing the new tokens.
#include "common/validate.hpp"
#include "drivers/attention.hpp"
#include "modules/attention_core.hpp"
#include "modules/kv_cache_storage.hpp"
#include "reference/attention_cached_reference.hpp"
#include "simdattn/attention.hpp"

namespace simdattn {

Tensor AttentionModule::forward(const Tensor& x, KVCache& cache,
                                const ForwardOptions& options) const {
  Tensor y;
  forward_into(x, cache, y, options);
  return y;
}

void AttentionModule::forward_into(const Tensor& x, KVCache& cache, Tensor& y,
                                   const ForwardOptions& options) const {
  if (!core_) detail::fail_arg("AttentionModule::forward: the module was moved from");
  const detail::AttentionSpec& spec = core_->spec();
  const char* who = spec.module_name.c_str();
  KVCache::Storage& s = cache.storage();  // Error on a moved-from cache
  // Identity, then shape: a cache must never be read or written with another module's sizes.
  if (s.owner_id != core_->id() || s.heads != spec.num_heads || s.head_dim != spec.head_dim)
    detail::fail_arg(who, ": the KVCache was created for a different module");
  if (x.rank() != 2 && x.rank() != 3)
    detail::fail_arg(who, ": x rank (", x.rank(), ") must be 2 ([T, d_in]) or 3 ([B, T, d_in]);",
                     " x has shape ", shape_to_string(x.shape()));
  const std::size_t r = x.rank();
  const std::int64_t batch = r == 3 ? x.dim(0) : 1;
  const std::int64_t tokens = x.dim(r - 2);
  if (x.dim(r - 1) != spec.d_in)
    detail::fail_arg(who, ": x feature size (", x.dim(r - 1), ") must equal d_in (", spec.d_in,
                     "); x has shape ", shape_to_string(x.shape()));
  if (batch != s.batch)
    detail::fail_arg(who, ": x batch size (", batch, ") must equal the KVCache's batch (",
                     s.batch, ")");
  detail::require_positive(who, "sequence length T", tokens);
  if (options.backend != Backend::fast && options.backend != Backend::reference)
    detail::fail_arg(who, ": options.backend (", static_cast<int>(options.backend),
                     ") is not a Backend");
  if (options.attn_weights != nullptr)
    detail::fail_arg(who, ": options.attn_weights is not available through a KVCache");

  if (&y == &x) detail::fail_arg(who, ": forward_into: y must not alias x");
  // y is reused as is when its shape matches (compared in place: a decode step allocates
  // nothing on the heap, tests/unit/test_no_allocation.cpp).
  const std::int64_t out = spec.output_dim();
  const bool same = y.rank() == r && (r == 3 ? y.dim(0) == batch && y.dim(1) == tokens && y.dim(2) == out
                                             : y.dim(0) == tokens && y.dim(1) == out);
  if (!same)
    y = Tensor(r == 3 ? std::vector<std::int64_t>{batch, tokens, out}
                      : std::vector<std::int64_t>{tokens, out});
  s.make_room(tokens);  // throws Error(capacity) before anything changes
  const detail::DropoutParams dropout{options.train ? spec.dropout : 0.0, options.seed};
  const detail::KVRing ring = s.view();
  if (options.backend == Backend::reference) {
    detail::AttentionWeights scratch;  // stays empty for f32 weights (no copy)
    detail::attention_forward_reference_cached(spec, core_->weights(scratch), x.data(), batch,
                                               tokens, y.data(), dropout, ring);
  } else {
    core_->fast().forward_cached(x.data(), batch, tokens, y.data(), dropout, ring);
  }
  s.commit(tokens);
}

}  // namespace simdattn
