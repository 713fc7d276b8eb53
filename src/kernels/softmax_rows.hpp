// src/kernels/softmax_rows.hpp — declarations of the xsimd softmax kernels and the per-ISA
// instantiations that exist (extern template). Bodies live in softmax_rows_impl.hpp, included
// only by src/kernels/isa/softmax_<isa>.cpp.
#pragma once

#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "kernels/isa_list.hpp"
#include "kernels/softmax_params.hpp"

namespace simdattn::detail {

/// f32_causal_softmax_rows__<arch>: see CausalSoftmaxRowsFn.
template <class Arch>
void causal_softmax_rows(float* scores, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                         float scale, std::int64_t offset, bool causal);
/// f32_vexp__<arch>: see ExpF32Fn.
template <class Arch>
void exp_f32(const float* x, float* y, std::int64_t n);

#define SIMDATTN_SOFTMAX_INSTANTIATIONS(PREFIX, ARCH)                                        \
  PREFIX void causal_softmax_rows<ARCH>(float*, std::int64_t, std::int64_t, std::int64_t,   \
                                        float, std::int64_t, bool);                         \
  PREFIX void exp_f32<ARCH>(const float*, float*, std::int64_t);

#define SIMDATTN_SOFTMAX_EXTERN(isa, ARCH) SIMDATTN_SOFTMAX_INSTANTIATIONS(extern template, ARCH)
SIMDATTN_FOR_EACH_COMPILED_ISA(SIMDATTN_SOFTMAX_EXTERN)
#undef SIMDATTN_SOFTMAX_EXTERN

}  // namespace simdattn::detail
