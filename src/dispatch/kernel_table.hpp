// src/dispatch/kernel_table.hpp — the kernels of one ISA, resolved once: each kernel pointer
// travels with its tile sizes and blocking, so drivers talk only to this table, never to an ISA.
//
// Adding a kernel family (softmax, attention blocks, ...): declare its function-pointer type next
// to its kernels (src/kernels/<family>_*.hpp), add a struct {name, fn, tile sizes} member below,
// and fill it per ISA in kernel_table.cpp. Nothing else changes.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/gemm_params.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn::detail {

/// A register-tile GEMM microkernel with the blocking the driver should use around it.
struct GemmMicrokernel {
  const char* name = nullptr;  ///< "f32_gemm_6x16__avx2": dtype, op, tile, ISA
  GemmUkernelFn fn = nullptr;
  int mr = 0;                  ///< rows of the register tile
  int nr = 0;                  ///< columns of the register tile (a multiple of the panel width)
  std::int64_t mc = 0;         ///< rows of A packed per block (multiple of mr): the L2 block
  std::int64_t kc = 0;         ///< depth per block (which cache each block targets: kernel_table.cpp)
  std::int64_t nc = 0;         ///< columns per task block (multiple of nr): the L3 block of B
};

/// The small-M (decode) kernel: no packing of A, prepacked B streamed once.
struct GemmSmallMKernel {
  const char* name = nullptr;
  GemmSmallMFn fn = nullptr;
  int max_m = 0;  ///< m <= max_m takes this path
};

struct KernelTable {
  Isa isa = Isa::sse2;
  GemmMicrokernel gemm;
  GemmSmallMKernel gemm_small_m;
  // Later: softmax and attention kernels, each as a struct like the two above.
};

/// The table of the active ISA (simdattn::active_isa()); cheap enough to call per operation.
const KernelTable& kernels();
/// The table of a given ISA, for tests and benchmarks. Throws Error(unsupported) if the ISA is
/// not usable here (not compiled in, or not supported by this CPU).
const KernelTable& kernels_for(Isa isa);
/// Every GEMM microkernel instantiated for an ISA: the table's plus test-only tile variants
/// (e.g. a two-panel AVX2 tile that exercises the AVX-512 kernel's layout). Throws like
/// kernels_for.
std::vector<GemmMicrokernel> gemm_ukernel_variants(Isa isa);

}  // namespace simdattn::detail
