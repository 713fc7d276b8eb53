// src/kernels/isa/decode_avx512.cpp — AVX-512 (-mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx512vl) instantiation of the decode attention kernel.
// Explicit instantiations only: see attention_decode_impl.hpp and softmax_simd.hpp for why.
#include "kernels/attention_decode_impl.hpp"

namespace simdattn::detail {
SIMDATTN_DECODE_INSTANTIATIONS(template, FlashArchAvx512)
}  // namespace simdattn::detail
