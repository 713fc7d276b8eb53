// src/kernels/isa/decode_avx2.cpp — AVX2+FMA3 (-mavx2 -mfma) instantiation of the decode attention kernel.
// Explicit instantiations only: see attention_decode_impl.hpp and softmax_simd.hpp for why.
#include "kernels/attention_decode_impl.hpp"

namespace simdattn::detail {
SIMDATTN_DECODE_INSTANTIATIONS(template, FlashArchAvx2)
}  // namespace simdattn::detail
