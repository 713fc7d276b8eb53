// src/kernels/attention_decode.hpp — the short-query attention kernel used by KV-cache decode
// steps, and its per-ISA instantiations (extern template). Body in attention_decode_impl.hpp,
// included only by src/kernels/isa/decode_<isa>.cpp.
//
// Why a kernel apart from flash attention: the flash kernels vectorise across queries (24 per
// register group on AVX2), so a decode step, one query per head, would use one lane in 24 and
// turn a memory-bound pass over the cache into a compute-bound one. This kernel vectorises
// along head_dim instead: each key's row is head_dim contiguous floats in the cache, scores are
// dot products, and P·V is a sequence of row updates of one output row.
#pragma once

#include <cstdint>

#include "kernels/attention_flash.hpp"  // the per-ISA Arch aliases

namespace simdattn::detail {

/// softmax(scale q·K[0..keys)ᵀ) · V[0..keys) for ONE query. Key row j is at k + j * kv_stride
/// for j < split, and at k_wrap + (j - split) * kv_stride after (a KV cache's ring wraps
/// around; likewise v). keep (nullable) multiplies each normalised weight (inverted dropout: 0
/// or 1/(1-p)). As the reference: a NaN score makes the row NaN; an all -inf row weights
/// nothing.
struct DecodeRowArgs {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const float* k_wrap = nullptr;
  const float* v_wrap = nullptr;
  std::int64_t split = 0;  ///< keys before the wrap (== keys when there is none)
  std::int64_t kv_stride = 0;
  std::int64_t keys = 0;  ///< >= 1
  std::int64_t head_dim = 0;
  float scale = 1.0f;
  const float* keep = nullptr;
  float* scores = nullptr;  ///< scratch of >= keys floats
  float* out = nullptr;     ///< head_dim floats
};
using DecodeRowFn = void (*)(const DecodeRowArgs&);

/// f32_decode_attention_row__<arch>
template <class Arch>
void decode_attention_row(const DecodeRowArgs& args);

#define SIMDATTN_DECODE_INSTANTIATIONS(PREFIX, ARCH) \
  PREFIX void decode_attention_row<ARCH>(const DecodeRowArgs&);

#if defined(SIMDATTN_COMPILED_SSE2)
SIMDATTN_DECODE_INSTANTIATIONS(extern template, FlashArchSse2)
#endif
#if defined(SIMDATTN_COMPILED_AVX2)
SIMDATTN_DECODE_INSTANTIATIONS(extern template, FlashArchAvx2)
#endif
#if defined(SIMDATTN_COMPILED_AVX512)
SIMDATTN_DECODE_INSTANTIATIONS(extern template, FlashArchAvx512)
#endif
#if defined(SIMDATTN_COMPILED_NEON64)
SIMDATTN_DECODE_INSTANTIATIONS(extern template, FlashArchNeon64)
#endif

}  // namespace simdattn::detail
