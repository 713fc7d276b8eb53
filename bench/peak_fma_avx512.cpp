// bench/peak_fma_avx512.cpp — the machine's one-thread AVX-512 FMA peak: 16 independent zmm FMA
// chains (two 512-bit FMA pipes x 4 cycles of latency need >= 8; 16 leaves slack, and a CPU
// with one 512-bit pipe shows it here as half the rate). Compiled with -mavx512f
// (bench/CMakeLists.txt) and called only when the CPU runs AVX-512; it holds this one function
// and no shared inline code.
#include <immintrin.h>

float simdattn_bench_peak_fma_avx512(long long iterations) {
  const __m512 x = _mm512_set1_ps(0.99999994f), y = _mm512_set1_ps(1e-7f);
  __m512 a[16];
  for (int c = 0; c < 16; ++c) a[c] = _mm512_set1_ps(0.1f * static_cast<float>(c));
  for (long long i = 0; i < iterations; ++i) {
    a[0] = _mm512_fmadd_ps(a[0], x, y);
    a[1] = _mm512_fmadd_ps(a[1], x, y);
    a[2] = _mm512_fmadd_ps(a[2], x, y);
    a[3] = _mm512_fmadd_ps(a[3], x, y);
    a[4] = _mm512_fmadd_ps(a[4], x, y);
    a[5] = _mm512_fmadd_ps(a[5], x, y);
    a[6] = _mm512_fmadd_ps(a[6], x, y);
    a[7] = _mm512_fmadd_ps(a[7], x, y);
    a[8] = _mm512_fmadd_ps(a[8], x, y);
    a[9] = _mm512_fmadd_ps(a[9], x, y);
    a[10] = _mm512_fmadd_ps(a[10], x, y);
    a[11] = _mm512_fmadd_ps(a[11], x, y);
    a[12] = _mm512_fmadd_ps(a[12], x, y);
    a[13] = _mm512_fmadd_ps(a[13], x, y);
    a[14] = _mm512_fmadd_ps(a[14], x, y);
    a[15] = _mm512_fmadd_ps(a[15], x, y);
  }
  __m512 s = a[0];
  for (int c = 1; c < 16; ++c) s = _mm512_add_ps(s, a[c]);
  float out[16];
  _mm512_storeu_ps(out, s);
  float sum = 0.0f;
  for (float v : out) sum += v;
  return sum;
}
