// src/dispatch/attention_kernels.hpp — the softmax and flash-attention kernels of one ISA,
// resolved once, each pointer with the tile it was built for (the same pattern as
// KernelTable; meant to become its `softmax` and `flash` members).
#pragma once

#include "kernels/attention_params.hpp"
#include "kernels/softmax_params.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn::detail {

struct FlashKernels {
  const char* name = nullptr;  ///< "f32_flash_attention_4x24__avx2": keys x queries per tile
  FlashPackFn pack = nullptr;
  FlashBlockFn block = nullptr;
  FlashFinishFn finish = nullptr;
  FlashTileShape tile;
};

struct SoftmaxKernels {
  const char* name = nullptr;  ///< "f32_causal_softmax_rows__avx2"
  CausalSoftmaxRowsFn rows = nullptr;
  ExpF32Fn exp = nullptr;
};

struct AttentionKernelTable {
  Isa isa = Isa::sse2;
  FlashKernels flash;
  SoftmaxKernels softmax;
};

/// The table of the active ISA (simdattn::active_isa()); cheap enough to call per operation.
const AttentionKernelTable& attention_kernels();
/// The table of a given ISA. Throws Error(unsupported) if the ISA is not usable here.
const AttentionKernelTable& attention_kernels_for(Isa isa);

}  // namespace simdattn::detail
