// src/kernels/gemm_generic.hpp — portable scalar f32 GEMM kernels with the same contracts as the
// xsimd ones (GemmUkernelFn, GemmSmallMFn), templated on the tile. They run the real blocked
// driver with odd tiles (3x5, 1x1, 4x7, ...) in tests, so packing and edge handling are tested
// apart from SIMD code. Baseline C++ only; instantiated wherever they are used.
#pragma once

#include <cassert>
#include <cstdint>

#include "kernels/gemm_params.hpp"

namespace simdattn::detail {

/// Applies the epilogue to one accumulated value (same order of operations as the SIMD store:
/// alpha * acc + (beta * c + bias), with beta * c skipped, not multiplied by zero, when beta == 0).
inline float gemm_generic_epilogue(float acc, const float* c, std::int64_t j,
                                   const GemmEpilogue& ep) {
  const float bias = ep.bias != nullptr ? ep.bias[j] : 0.0f;
  if (ep.beta == 0.0f) return acc * ep.alpha + bias;
  return acc * ep.alpha + (ep.beta * *c + bias);
}

/// f32_gemm_<MR>x<NR>__generic with B panels PW columns wide (NR a multiple of PW).
template <int MR, int NR, int PW>
void gemm_ukernel_generic(std::int64_t kc, const float* a_packed, const float* b_packed,
                          std::int64_t b_panel_stride, float* c, std::int64_t ldc,
                          std::int64_t m_valid, std::int64_t n_valid,
                          const GemmEpilogue& epilogue) {
  static_assert(MR >= 1 && NR >= 1 && PW >= 1 && NR % PW == 0, "NR must cover whole panels");
  assert(kc >= 1 && m_valid >= 1 && m_valid <= MR && n_valid >= 1 && n_valid <= NR);
  float acc[MR][NR] = {};
  for (std::int64_t p = 0; p < kc; ++p)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j)
        acc[i][j] += a_packed[p * MR + i] * b_packed[(j / PW) * b_panel_stride + p * PW + j % PW];
  for (std::int64_t i = 0; i < m_valid; ++i)
    for (std::int64_t j = 0; j < n_valid; ++j)
      c[i * ldc + j] = gemm_generic_epilogue(acc[i][j], c + i * ldc + j, j, epilogue);
}

/// f32_gemm_smallm__generic: A read in place, B panels PW columns wide, one column at a time.
template <int MAX_M, int PW>
void gemm_small_m_generic(std::int64_t m, std::int64_t k, const float* a, std::int64_t lda,
                          const float* b_packed, std::int64_t b_panel_stride, std::int64_t n,
                          float* c, std::int64_t ldc, const GemmEpilogue& epilogue) {
  assert(m >= 1 && m <= MAX_M && k >= 1 && n >= 1);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      const float* bj = b_packed + (j / PW) * b_panel_stride + j % PW;
      float acc = 0.0f;
      for (std::int64_t p = 0; p < k; ++p) acc += a[i * lda + p] * bj[p * PW];
      c[i * ldc + j] = gemm_generic_epilogue(acc, c + i * ldc + j, j, epilogue);
    }
}

}  // namespace simdattn::detail
