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

#include "kernels/attention_params.hpp"
#include "kernels/gemm_params.hpp"  // WeightStorage
#include "kernels/isa_list.hpp"

namespace simdattn::detail {

// DecodeRowArgs and DecodeRowFn (the calling convention) are in attention_params.hpp.

/// f32_decode_attention_row__<arch>
template <class Arch>
void decode_attention_row(const DecodeRowArgs& args);

/// f16/bf16/q8_0_decode_attention_row__<arch>: see DecodeRowStoredFn.
template <class Arch, WeightStorage S>
void decode_attention_row_stored(const DecodeRowArgs& args);
/// f16/bf16/q8_0_kv_dequant_rows__<arch>: see KvDequantRowsFn.
template <class Arch, WeightStorage S>
void kv_dequant_rows(const unsigned char* src, std::int64_t row_bytes, std::int64_t count,
                     std::int64_t head_dim, float* dst);

#define SIMDATTN_DECODE_STORED(PREFIX, ARCH, S)                                              \
  PREFIX void decode_attention_row_stored<ARCH, S>(const DecodeRowArgs&);                     \
  PREFIX void kv_dequant_rows<ARCH, S>(const unsigned char*, std::int64_t, std::int64_t,      \
                                       std::int64_t, float*);
#define SIMDATTN_DECODE_INSTANTIATIONS(PREFIX, ARCH)                 \
  PREFIX void decode_attention_row<ARCH>(const DecodeRowArgs&);     \
  SIMDATTN_DECODE_STORED(PREFIX, ARCH, WeightStorage::f16)           \
  SIMDATTN_DECODE_STORED(PREFIX, ARCH, WeightStorage::bf16)          \
  SIMDATTN_DECODE_STORED(PREFIX, ARCH, WeightStorage::q8_0)

#define SIMDATTN_DECODE_EXTERN(isa, ARCH) SIMDATTN_DECODE_INSTANTIATIONS(extern template, ARCH)
SIMDATTN_FOR_EACH_COMPILED_ISA(SIMDATTN_DECODE_EXTERN)
#undef SIMDATTN_DECODE_EXTERN

}  // namespace simdattn::detail
