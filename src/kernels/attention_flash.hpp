// src/kernels/attention_flash.hpp — declarations of the xsimd flash-attention kernels and the
// per-ISA instantiations that exist (extern template). Bodies live in attention_flash_impl.hpp,
// which only src/kernels/isa/attention_<isa>.cpp include, so the dispatcher can take the
// kernels' addresses without compiling a SIMD body at baseline flags.
#pragma once

#include <cstdint>

#include "kernels/attention_params.hpp"
#include "kernels/isa_list.hpp"

namespace simdattn::detail {

/// Register tile of the flash kernels: MR keys (or head-dim rows) x NV vectors of queries.
/// 4 x 3 vectors = 12 accumulators + 3 query vectors + 1 broadcast = 16 registers: exactly the
/// 16-register ISAs' file, and 12 independent FMA chains cover two FMA pipes x 4 cycles of
/// latency. MR = 4 divides the usual head dims (64, 128, 16...) so the P·V tile has no
/// remainder there. The 32-register ISAs keep the same shape (their vectors are wider).
inline constexpr int kFlashMr = 4;
inline constexpr int kFlashNv = 3;

/// f32_flash_pack_queries__<arch>: see FlashPackArgs.
template <class Arch>
void flash_pack_queries(const FlashPackArgs& args);
/// f32_flash_attention_block__<arch>: one (query block, key block) online-softmax step, see
/// FlashBlockArgs.
template <class Arch>
void flash_attention_block(const FlashBlockArgs& args);
/// f32_flash_attention_finish__<arch>: O^T / l written back as rows, see FlashFinishArgs.
template <class Arch>
void flash_attention_finish(const FlashFinishArgs& args);
/// The tile shape the kernels above were built with.
template <class Arch>
FlashTileShape flash_tile_shape();

#define SIMDATTN_FLASH_INSTANTIATIONS(PREFIX, ARCH)                       \
  PREFIX void flash_pack_queries<ARCH>(const FlashPackArgs&);            \
  PREFIX void flash_attention_block<ARCH>(const FlashBlockArgs&);        \
  PREFIX void flash_attention_finish<ARCH>(const FlashFinishArgs&);      \
  PREFIX FlashTileShape flash_tile_shape<ARCH>();

#define SIMDATTN_FLASH_EXTERN(isa, ARCH) SIMDATTN_FLASH_INSTANTIATIONS(extern template, ARCH)
SIMDATTN_FOR_EACH_COMPILED_ISA(SIMDATTN_FLASH_EXTERN)
#undef SIMDATTN_FLASH_EXTERN

}  // namespace simdattn::detail
