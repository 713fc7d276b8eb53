// src/dispatch/kernel_table.hpp — every kernel of one ISA, resolved once into one table: each
// kernel pointer travels with its tile sizes and blocking, so drivers talk only to this table,
// never to an ISA. There is one table per usable ISA, filled in kernel_table.cpp from a traits
// block per ISA; nothing else in the library names an ISA's kernels.
//
// Adding a kernel family: declare its function-pointer type next to its kernels
// (src/kernels/<family>*.hpp), add a {name, fn, tile} struct member below, and fill it in
// make_table(). Adding a storage type (f16, q8_0, ...) adds entries indexed by that type to the
// families that read it, in the same table.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/attention_params.hpp"
#include "kernels/gemm_params.hpp"
#include "kernels/softmax_params.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn::detail {

/// A register-tile GEMM microkernel with the blocking the driver should use around it.
struct GemmMicrokernel {
  const char* name = nullptr;  ///< "f32_gemm_6x16__avx2": dtype, op, tile, ISA
  GemmUkernelFn fn = nullptr;
  int mr = 0;                  ///< rows of the register tile
  int nr = 0;                  ///< columns of the register tile (a multiple of the panel width)
  std::int64_t mc = 0;         ///< rows of A packed per block (multiple of mr): the L2 block
  std::int64_t kc = 0;         ///< depth per block (from the L2 size: cache_info.cpp says why)
  std::int64_t nc = 0;         ///< columns per task block (at most; whole nr tiles): the L3 block of B
};

/// The small-M (decode) GEMM kernel: no packing of A, prepacked B streamed once.
struct GemmSmallMKernel {
  const char* name = nullptr;
  GemmSmallMFn fn = nullptr;
  int max_m = 0;  ///< m <= max_m takes this path
};

/// The flash-attention kernels (pack the query block, one key-block step, finish).
struct FlashKernels {
  const char* name = nullptr;  ///< "f32_flash_attention_4x24__avx2": keys x queries per tile
  FlashPackFn pack = nullptr;
  FlashBlockFn block = nullptr;
  FlashFinishFn finish = nullptr;
  FlashTileShape tile;
};

/// The row softmax of the public causal_softmax and the book's modules, and the exp it uses.
struct SoftmaxKernels {
  const char* name = nullptr;  ///< "f32_causal_softmax_rows__avx2"
  CausalSoftmaxRowsFn rows = nullptr;
  ExpF32Fn exp = nullptr;
};

/// The one-query attention kernel of KV-cache decode steps (vectorised along head_dim).
struct DecodeKernel {
  const char* name = nullptr;  ///< "f32_decode_attention_row__avx2"
  DecodeRowFn row = nullptr;
  /// Over a cache stored in another type, indexed by WeightStorage (null for f32), and the
  /// rows' dequantizer (for the flash path over such a cache).
  DecodeRowStoredFn stored[kWeightStorageCount] = {};
  KvDequantRowsFn kv_dequant[kWeightStorageCount] = {};
};

/// The storage-type axis: the dequantizer of one packed-weight storage type (null for f32,
/// which the GEMM kernels read directly).
struct DequantKernel {
  const char* name = nullptr;  ///< "f16_dequant_panels__avx2"
  DequantPanelsFn fn = nullptr;
  GemmSmallMStoredFn small_m = nullptr;  ///< the small-M GEMM converting in registers
};

struct KernelTable {
  Isa isa = Isa::sse2;
  GemmMicrokernel gemm;
  GemmSmallMKernel gemm_small_m;
  DequantKernel dequant[kWeightStorageCount];  ///< indexed by WeightStorage
  FlashKernels flash;
  SoftmaxKernels softmax;
  DecodeKernel decode;
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
