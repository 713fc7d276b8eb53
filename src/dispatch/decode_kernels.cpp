// src/dispatch/decode_kernels.cpp — resolves the decode kernel per ISA (addresses only: the
// bodies live in the per-ISA translation units).
#include "dispatch/decode_kernels.hpp"

namespace simdattn::detail {

DecodeRowFn decode_row_kernel(Isa isa) noexcept {
  switch (isa) {
#if defined(SIMDATTN_COMPILED_SSE2)
    case Isa::sse2: return &decode_attention_row<FlashArchSse2>;
#endif
#if defined(SIMDATTN_COMPILED_AVX2)
    case Isa::avx2: return &decode_attention_row<FlashArchAvx2>;
#endif
#if defined(SIMDATTN_COMPILED_AVX512)
    case Isa::avx512: return &decode_attention_row<FlashArchAvx512>;
#endif
#if defined(SIMDATTN_COMPILED_NEON64)
    case Isa::neon: return &decode_attention_row<FlashArchNeon64>;
#endif
    default: return nullptr;
  }
}

}  // namespace simdattn::detail
