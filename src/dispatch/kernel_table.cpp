// src/dispatch/kernel_table.cpp — fills one KernelTable per compiled ISA, once. Baseline code:
// it only takes the addresses of the per-ISA kernels (declared extern in the kernel headers) and
// never runs them, so it is safe on any CPU.
#include "dispatch/kernel_table.hpp"

#include "common/validate.hpp"
#include "kernels/gemm_ukernel.hpp"

namespace simdattn::detail {
namespace {

// Blocking (why these values):
// - kc: a kc x NR B micro-panel is re-read for every MR-row slice of the A block, so it should
//   stay in L1 (32 KiB on Zen 3 / Skylake-X): 256 x 16 x 4 B = 16 KiB for 16-wide tiles, leaving
//   room for the streamed A micro-panel (6 x 256 x 4 B = 6 KiB) — BLIS's Zen 3 value.
// - mc: the packed mc x kc A block is re-read for every B micro-panel of the task, so it should
//   stay in L2 (512 KiB per Zen 3 core): 144 x 256 x 4 B = 144 KiB (BLIS Zen 3). It is also
//   the task height, so the parallel grid stays fine-grained for load balance.
// - nc: columns of the task block; the kc x nc slice of packed B (at most ~4 MiB) lives in L3.
//   Tasks narrower than N also exist for load balance when M is small (see the driver).
// Tuning on the 2-vCPU Zen 3 box (1 thread, M = 2048/8192, N = 768/2304, K = 768, paired
// ratios over 25-41 interleaved rounds): mc 72..288 x kc 256..768 all landed within +-3% of
// 144 x 256 — the box's noise — while kc = full K with small mc lost ~9% on N = 2304 (B is
// then re-streamed from L3 per 24-72 rows). So the BLIS values stay. What did matter was
// prefetching (next B micro-panel, C tile, A rows): see the driver and the kernel.
// The AVX-512 values are a starting point (14 x 32 tile: a 192 x 32 x 4 B = 24 KiB B
// micro-panel in a 32/48 KiB L1, a 168 x 192 A block in a 1-2 MiB L2); no AVX-512 machine was
// available to tune them.
constexpr std::int64_t kNcDefault = 4080;

KernelTable make_table(Isa isa) {
  KernelTable t;
  t.isa = isa;
  switch (isa) {
    case Isa::sse2:
#if defined(SIMDATTN_COMPILED_SSE2)
      t.gemm = {"f32_gemm_3x16__sse2",
                &gemm_ukernel_f32<GemmArchSse2, kGemmMrSse2, kGemmNrSse2>,
                kGemmMrSse2, kGemmNrSse2, 144, 256, kNcDefault};
      t.gemm_small_m = {"f32_gemm_smallm__sse2", &gemm_small_m_f32<GemmArchSse2, kGemmMrSse2>,
                        kGemmSmallMaxM};
#endif
      break;
    case Isa::avx2:
#if defined(SIMDATTN_COMPILED_AVX2)
      t.gemm = {"f32_gemm_6x16__avx2",
                &gemm_ukernel_f32<GemmArchAvx2, kGemmMrAvx2, kGemmNrAvx2>,
                kGemmMrAvx2, kGemmNrAvx2, 144, 256, kNcDefault};
      t.gemm_small_m = {"f32_gemm_smallm__avx2", &gemm_small_m_f32<GemmArchAvx2, kGemmMrAvx2>,
                        kGemmSmallMaxM};
#endif
      break;
    case Isa::avx512:
#if defined(SIMDATTN_COMPILED_AVX512)
      t.gemm = {"f32_gemm_14x32__avx512",
                &gemm_ukernel_f32<GemmArchAvx512, kGemmMrAvx512, kGemmNrAvx512>,
                kGemmMrAvx512, kGemmNrAvx512, 168, 192, kNcDefault};
      t.gemm_small_m = {"f32_gemm_smallm__avx512",
                        &gemm_small_m_f32<GemmArchAvx512, kGemmMrAvx512>, kGemmSmallMaxM};
#endif
      break;
    case Isa::neon:
#if defined(SIMDATTN_COMPILED_NEON64)
      t.gemm = {"f32_gemm_6x16__neon64",
                &gemm_ukernel_f32<GemmArchNeon64, kGemmMrNeon64, kGemmNrNeon64>,
                kGemmMrNeon64, kGemmNrNeon64, 144, 256, kNcDefault};
      t.gemm_small_m = {"f32_gemm_smallm__neon64",
                        &gemm_small_m_f32<GemmArchNeon64, kGemmMrNeon64>, kGemmSmallMaxM};
#endif
      break;
  }
  return t;
}

struct Tables {
  KernelTable table[4];
  bool usable[4] = {};
  Tables() {
    for (Isa isa : {Isa::sse2, Isa::avx2, Isa::avx512, Isa::neon}) {
      const int i = static_cast<int>(isa);
      usable[i] = isa_usable(isa);
      if (usable[i]) table[i] = make_table(isa);
    }
  }
};

const Tables& tables() {
  static const Tables t;  // CPU inspected and tables filled exactly once
  return t;
}

}  // namespace

const KernelTable& kernels_for(Isa isa) {
  const Tables& t = tables();
  const int i = static_cast<int>(isa);
  if (i < 0 || i > 3 || !t.usable[i])
    fail(ErrorCode::unsupported, "kernels_for: ISA '", isa_name(isa), "' is not usable here");
  return t.table[i];
}

const KernelTable& kernels() { return kernels_for(active_isa()); }

std::vector<GemmMicrokernel> gemm_ukernel_variants(Isa isa) {
  std::vector<GemmMicrokernel> out{kernels_for(isa).gemm};
#if defined(SIMDATTN_COMPILED_AVX2)
  if (isa == Isa::avx2)
    out.push_back({"f32_gemm_3x32__avx2", &gemm_ukernel_f32<GemmArchAvx2, 3, 32>, 3, 32, 96,
                   256, kNcDefault});
#endif
  return out;
}

}  // namespace simdattn::detail
