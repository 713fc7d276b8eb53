// src/dispatch/attention_kernels.cpp — fills one AttentionKernelTable per usable ISA, once.
// Baseline code: it only takes the addresses of the per-ISA kernels (extern template in the
// kernel headers) and never runs them.
#include "dispatch/attention_kernels.hpp"

#include "common/validate.hpp"
#include "kernels/attention_flash.hpp"
#include "kernels/softmax_rows.hpp"

namespace simdattn::detail {
namespace {

template <class Arch>
void fill(AttentionKernelTable& t, const char* flash_name, const char* softmax_name) {
  t.flash = {flash_name, &flash_pack_queries<Arch>, &flash_attention_block<Arch>,
             &flash_attention_finish<Arch>, flash_tile_shape<Arch>()};
  t.softmax = {softmax_name, &causal_softmax_rows<Arch>, &exp_f32<Arch>};
}

AttentionKernelTable make_table(Isa isa) {
  AttentionKernelTable t;
  t.isa = isa;
  switch (isa) {
    case Isa::sse2:
#if defined(SIMDATTN_COMPILED_SSE2)
      fill<FlashArchSse2>(t, "f32_flash_attention_4x12__sse2", "f32_causal_softmax_rows__sse2");
#endif
      break;
    case Isa::avx2:
#if defined(SIMDATTN_COMPILED_AVX2)
      fill<FlashArchAvx2>(t, "f32_flash_attention_4x24__avx2", "f32_causal_softmax_rows__avx2");
#endif
      break;
    case Isa::avx512:
#if defined(SIMDATTN_COMPILED_AVX512)
      fill<FlashArchAvx512>(t, "f32_flash_attention_4x48__avx512",
                            "f32_causal_softmax_rows__avx512");
#endif
      break;
    case Isa::neon:
#if defined(SIMDATTN_COMPILED_NEON64)
      fill<FlashArchNeon64>(t, "f32_flash_attention_4x12__neon64",
                            "f32_causal_softmax_rows__neon64");
#endif
      break;
  }
  return t;
}

struct Tables {
  AttentionKernelTable table[4];
  bool usable[4] = {};
  Tables() {
    for (Isa isa : {Isa::sse2, Isa::avx2, Isa::avx512, Isa::neon}) {
      const int i = static_cast<int>(isa);
      usable[i] = isa_usable(isa) && make_table(isa).flash.block != nullptr;
      if (usable[i]) table[i] = make_table(isa);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const AttentionKernelTable& attention_kernels_for(Isa isa) {
  const Tables& t = tables();
  const int i = static_cast<int>(isa);
  if (i < 0 || i > 3 || !t.usable[i])
    fail(ErrorCode::unsupported, "attention_kernels_for: ISA '", isa_name(isa),
         "' is not usable here");
  return t.table[i];
}

const AttentionKernelTable& attention_kernels() { return attention_kernels_for(active_isa()); }

}  // namespace simdattn::detail
