// src/kernels/isa/decode_sse2.cpp — SSE2 (the x86-64 baseline) instantiation of the decode attention kernel.
// Explicit instantiations only: see attention_decode_impl.hpp and softmax_simd.hpp for why.
#include "kernels/attention_decode_impl.hpp"

namespace simdattn::detail {
SIMDATTN_DECODE_INSTANTIATIONS(template, FlashArchSse2)
}  // namespace simdattn::detail
