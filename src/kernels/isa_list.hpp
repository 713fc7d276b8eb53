// src/kernels/isa_list.hpp — the one place that knows which ISAs this build compiled.
//
// src/CMakeLists.txt defines SIMDATTN_COMPILED_<ISA> for each per-ISA object it builds. Every
// list over ISAs (the extern-template blocks of the kernel headers, the dispatch table, the
// runtime's "compiled" answer) is written once as an X-macro over SIMDATTN_FOR_EACH_COMPILED_ISA,
// so adding an ISA is: its flags and objects in CMake, one line here, one traits block in
// src/dispatch/kernel_table.cpp.
#pragma once

#include <xsimd/xsimd.hpp>

namespace simdattn::detail {

/// The xsimd architecture each ISA's kernels are instantiated for. Types only: naming them in
/// baseline code compiles no SIMD instruction.
using ArchSse2 = xsimd::sse2;
using ArchAvx2 = xsimd::fma3<xsimd::avx2>;
using ArchAvx512 = xsimd::avx512bw;
#if defined(SIMDATTN_COMPILED_NEON64)
using ArchNeon64 = xsimd::neon64;  // declared by xsimd on AArch64 builds only
#endif

}  // namespace simdattn::detail

#if defined(SIMDATTN_COMPILED_SSE2)
#define SIMDATTN_IF_COMPILED_SSE2(...) __VA_ARGS__
#else
#define SIMDATTN_IF_COMPILED_SSE2(...)
#endif
#if defined(SIMDATTN_COMPILED_AVX2)
#define SIMDATTN_IF_COMPILED_AVX2(...) __VA_ARGS__
#else
#define SIMDATTN_IF_COMPILED_AVX2(...)
#endif
#if defined(SIMDATTN_COMPILED_AVX512)
#define SIMDATTN_IF_COMPILED_AVX512(...) __VA_ARGS__
#else
#define SIMDATTN_IF_COMPILED_AVX512(...)
#endif
#if defined(SIMDATTN_COMPILED_NEON64)
#define SIMDATTN_IF_COMPILED_NEON64(...) __VA_ARGS__
#else
#define SIMDATTN_IF_COMPILED_NEON64(...)
#endif

/// X(isa, Arch) once per compiled ISA: `isa` is the simdattn::Isa enumerator, `Arch` the
/// simdattn::detail alias above.
#define SIMDATTN_FOR_EACH_COMPILED_ISA(X)          \
  SIMDATTN_IF_COMPILED_SSE2(X(sse2, ArchSse2))     \
  SIMDATTN_IF_COMPILED_AVX2(X(avx2, ArchAvx2))     \
  SIMDATTN_IF_COMPILED_AVX512(X(avx512, ArchAvx512)) \
  SIMDATTN_IF_COMPILED_NEON64(X(neon, ArchNeon64))
