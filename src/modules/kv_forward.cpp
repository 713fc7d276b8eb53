// src/modules/kv_forward.cpp — AttentionModule::forward through a KV cache: validation, making
// room in the cache, the chosen backend, then committing the new tokens.
#include <string>
#include <vector>

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
  if (s.owner_id != core_->id() || s.heads != spec.kv_heads() || s.head_dim != spec.head_dim)
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

void AttentionModule::forward_batch(const Tensor& x, const std::vector<SequenceStep>& steps,
                                    Tensor& y, const ForwardOptions& options) const {
  if (!core_) detail::fail_arg("AttentionModule::forward_batch: the module was moved from");
  const detail::AttentionSpec& spec = core_->spec();
  const char* who = spec.module_name.c_str();  // (no string built: a step allocates nothing)
  if (steps.empty()) detail::fail_arg(who, "::forward_batch: no sequences");
  if (x.rank() != 2)
    detail::fail_arg(who, "::forward_batch: x rank (", x.rank(), ") must be 2 ([rows, d_in]); x has shape ",
                     shape_to_string(x.shape()));
  if (x.dim(1) != spec.d_in)
    detail::fail_arg(who, "::forward_batch: x feature size (", x.dim(1), ") must equal d_in (", spec.d_in, ")");
  if (options.backend != Backend::fast && options.backend != Backend::reference)
    detail::fail_arg(who, "::forward_batch: options.backend (", static_cast<int>(options.backend),
                     ") is not a Backend");
  if (options.attn_weights != nullptr)
    detail::fail_arg(who, "::forward_batch: options.attn_weights is not available through a KVCache");
  if (&y == &x) detail::fail_arg(who, "::forward_batch: y must not alias x");
  // Check every sequence before changing any cache.
  std::int64_t rows = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const SequenceStep& st = steps[i];
    if (st.cache == nullptr) detail::fail_arg(who, "::forward_batch: steps[", i, "].cache is null");
    const KVCache::Storage& s = st.cache->storage();
    if (s.owner_id != core_->id() || s.heads != spec.kv_heads() || s.head_dim != spec.head_dim)
      detail::fail_arg(who, "::forward_batch: steps[", i, "]'s KVCache was created for a different module");
    if (s.batch != 1)
      detail::fail_arg(who, "::forward_batch: steps[", i, "]'s KVCache has batch ", s.batch,
                       "; each sequence needs its own cache of batch 1");
    if (st.tokens < 1) detail::fail_arg(who, "::forward_batch: steps[", i, "].tokens (", st.tokens, ") must be >= 1");
    for (std::size_t j = 0; j < i; ++j)
      if (steps[j].cache == st.cache)
        detail::fail_arg(who, "::forward_batch: steps[", j, "] and steps[", i, "] share a KVCache");
    if (s.length + st.tokens > s.capacity && (!s.sliding || st.tokens > s.capacity))
      detail::fail(ErrorCode::capacity, who, "::forward_batch: steps[", i, "]: appending ", st.tokens,
                   " token(s) to the ", s.length, " held would exceed capacity (", s.capacity, ")");
    rows += st.tokens;  // each <= its capacity (checked above)
  }
  if (rows != x.dim(0))
    detail::fail_arg(who, "::forward_batch: x has ", x.dim(0), " rows; the steps' tokens sum to ", rows);
  const std::int64_t out = spec.output_dim();
  if (!(y.rank() == 2 && y.dim(0) == rows && y.dim(1) == out)) y = Tensor({rows, out});

  const detail::DropoutParams dropout{options.train ? spec.dropout : 0.0, options.seed};
  if (options.backend == Backend::reference) {
    // The oracle: each sequence alone, through the reference cached forward.
    detail::AttentionWeights scratch;
    const detail::AttentionWeights& w = core_->weights(scratch);
    std::int64_t row = 0;
    for (const SequenceStep& st : steps) {
      KVCache::Storage& s = st.cache->storage();
      s.make_room(st.tokens);
      detail::attention_forward_reference_cached(spec, w, x.data() + row * spec.d_in, 1,
                                                 st.tokens, y.data() + row * out, dropout,
                                                 s.view());
      s.commit(st.tokens);
      row += st.tokens;
    }
    return;
  }
  // Per-thread list of the sequences (grow-only: a steady serving loop allocates nothing).
  thread_local std::vector<detail::CachedSequence> seqs;
  seqs.resize(steps.size());
  std::int64_t row = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    KVCache::Storage& s = steps[i].cache->storage();
    s.make_room(steps[i].tokens);  // checked above: cannot throw now
    seqs[i] = detail::CachedSequence{s.view(), 0, steps[i].tokens, row};
    row += steps[i].tokens;
  }
  core_->fast().forward_sequences(x.data(), y.data(), dropout, seqs.data(),
                                  static_cast<std::int64_t>(seqs.size()));
  for (const SequenceStep& st : steps) st.cache->storage().commit(st.tokens);
}

}  // namespace simdattn
