// src/kernels/isa/decode_neon64.cpp — NEON (aarch64) instantiation of the decode attention kernel.
// Explicit instantiations only: see attention_decode_impl.hpp and softmax_simd.hpp for why.
#include "kernels/attention_decode_impl.hpp"

namespace simdattn::detail {
SIMDATTN_DECODE_INSTANTIATIONS(template, FlashArchNeon64)
}  // namespace simdattn::detail
