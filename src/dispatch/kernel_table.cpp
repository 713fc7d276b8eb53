// src/dispatch/kernel_table.cpp — fills one KernelTable per usable ISA, once, from one traits
// block per ISA. Baseline code: it only takes the addresses of the per-ISA kernels (extern
// template in the kernel headers) and never runs them, so it is safe on any CPU.
#include "dispatch/kernel_table.hpp"

#include "common/validate.hpp"
#include "dispatch/cache_info.hpp"
#include "kernels/attention_decode.hpp"
#include "kernels/attention_flash.hpp"
#include "kernels/dequant.hpp"
#include "kernels/gemm_ukernel.hpp"
#include "kernels/softmax_rows.hpp"

namespace simdattn::detail {
namespace {

// GEMM blocking: mc and kc come from the L2 size read at run time (gemm_blocking_for_l2 in
// cache_info.cpp, which records the measurements behind the rule). nc, the columns of a task
// block, is fixed: B's kc x nc slice is streamed once per row block, and the mc floor of the
// rule keeps that traffic small even when the L3 holds none of it. Narrower tasks also exist
// for load balance when M is small (see the driver).
constexpr std::int64_t kNcDefault = 4080;

/// What differs per ISA besides the instantiations: kernel names. The tiles come from the
/// kernels (GemmTile, flash_tile_shape), the GEMM blocking from the caches.
template <class Arch>
struct IsaTraits;
template <>
struct IsaTraits<ArchSse2> {
  static constexpr Isa isa = Isa::sse2;
  static constexpr const char* gemm = "f32_gemm_3x16__sse2";
  static constexpr const char* gemm_small_m = "f32_gemm_smallm__sse2";
  static constexpr const char* flash = "f32_flash_attention_4x12__sse2";
  static constexpr const char* softmax = "f32_causal_softmax_rows__sse2";
  static constexpr const char* decode = "f32_decode_attention_row__sse2";
  static constexpr const char* dequant[4] = {"f16_dequant_panels__sse2", "bf16_dequant_panels__sse2",
                                              "q8_0_dequant_panels__sse2",
                                              "q4_0_dequant_panels__sse2"};
};
template <>
struct IsaTraits<ArchAvx2> {
  static constexpr Isa isa = Isa::avx2;
  static constexpr const char* gemm = "f32_gemm_6x16__avx2";
  static constexpr const char* gemm_small_m = "f32_gemm_smallm__avx2";
  static constexpr const char* flash = "f32_flash_attention_4x24__avx2";
  static constexpr const char* softmax = "f32_causal_softmax_rows__avx2";
  static constexpr const char* decode = "f32_decode_attention_row__avx2";
  static constexpr const char* dequant[4] = {"f16_dequant_panels__avx2", "bf16_dequant_panels__avx2",
                                              "q8_0_dequant_panels__avx2",
                                              "q4_0_dequant_panels__avx2"};
};
template <>
struct IsaTraits<ArchAvx512> {
  static constexpr Isa isa = Isa::avx512;
  static constexpr const char* gemm = "f32_gemm_14x32__avx512";
  static constexpr const char* gemm_small_m = "f32_gemm_smallm__avx512";
  static constexpr const char* flash = "f32_flash_attention_4x48__avx512";
  static constexpr const char* softmax = "f32_causal_softmax_rows__avx512";
  static constexpr const char* decode = "f32_decode_attention_row__avx512";
  static constexpr const char* dequant[4] = {"f16_dequant_panels__avx512", "bf16_dequant_panels__avx512",
                                              "q8_0_dequant_panels__avx512",
                                              "q4_0_dequant_panels__avx512"};
};
#if defined(SIMDATTN_COMPILED_NEON64)
template <>
struct IsaTraits<ArchNeon64> {
  static constexpr Isa isa = Isa::neon;
  static constexpr const char* gemm = "f32_gemm_6x16__neon64";
  static constexpr const char* gemm_small_m = "f32_gemm_smallm__neon64";
  static constexpr const char* flash = "f32_flash_attention_4x12__neon64";
  static constexpr const char* softmax = "f32_causal_softmax_rows__neon64";
  static constexpr const char* decode = "f32_decode_attention_row__neon64";
  static constexpr const char* dequant[4] = {"f16_dequant_panels__neon64", "bf16_dequant_panels__neon64",
                                              "q8_0_dequant_panels__neon64",
                                              "q4_0_dequant_panels__neon64"};
};
#endif

template <class Arch>
KernelTable make_table() {
  using T = IsaTraits<Arch>;
  constexpr int mr = GemmTile<Arch>::mr, nr = GemmTile<Arch>::nr;
  KernelTable t;
  t.isa = T::isa;
  const GemmBlocking blocking = gemm_blocking_for_l2(mr, nr, host_cache_sizes().l2);
  t.gemm = {T::gemm, &gemm_ukernel_f32<Arch, mr, nr>, mr, nr, blocking.mc, blocking.kc, kNcDefault};
  t.gemm_small_m = {T::gemm_small_m, &gemm_small_m_f32<Arch>, GemmTile<Arch>::small_m_max};
  t.flash = {T::flash, &flash_pack_queries<Arch>, &flash_attention_block<Arch>,
             &flash_attention_finish<Arch>, flash_tile_shape<Arch>()};
  t.softmax = {T::softmax, &causal_softmax_rows<Arch>, &exp_f32<Arch>};
  t.decode.name = T::decode;
  t.decode.row = &decode_attention_row<Arch>;
  constexpr WeightStorage kStored[] = {WeightStorage::f16, WeightStorage::bf16, WeightStorage::q8_0};
  t.decode.stored[static_cast<int>(kStored[0])] = &decode_attention_row_stored<Arch, kStored[0]>;
  t.decode.stored[static_cast<int>(kStored[1])] = &decode_attention_row_stored<Arch, kStored[1]>;
  t.decode.stored[static_cast<int>(kStored[2])] = &decode_attention_row_stored<Arch, kStored[2]>;
  t.decode.kv_dequant[static_cast<int>(kStored[0])] = &kv_dequant_rows<Arch, kStored[0]>;
  t.decode.kv_dequant[static_cast<int>(kStored[1])] = &kv_dequant_rows<Arch, kStored[1]>;
  t.decode.kv_dequant[static_cast<int>(kStored[2])] = &kv_dequant_rows<Arch, kStored[2]>;
  t.dequant[static_cast<int>(WeightStorage::f16)] = {
      T::dequant[0], &dequant_panels<Arch, WeightStorage::f16>,
      &gemm_small_m_stored<Arch, WeightStorage::f16>};
  t.dequant[static_cast<int>(WeightStorage::bf16)] = {
      T::dequant[1], &dequant_panels<Arch, WeightStorage::bf16>,
      &gemm_small_m_stored<Arch, WeightStorage::bf16>};
  t.dequant[static_cast<int>(WeightStorage::q8_0)] = {
      T::dequant[2], &dequant_panels<Arch, WeightStorage::q8_0>,
      &gemm_small_m_stored<Arch, WeightStorage::q8_0>};
  t.dequant[static_cast<int>(WeightStorage::q4_0)] = {
      T::dequant[3], &dequant_panels<Arch, WeightStorage::q4_0>,
      &gemm_small_m_stored<Arch, WeightStorage::q4_0>};
  return t;
}

constexpr int kIsaSlots = 4;  // simdattn::Isa's enumerators

struct Tables {
  KernelTable table[kIsaSlots];
  bool usable[kIsaSlots] = {};
  Tables() {
    // Only ISAs this CPU runs get a table; flash_tile_shape<Arch>() is the one call into an
    // ISA's object made here, so it must stay behind isa_usable().
#define SIMDATTN_FILL_TABLE(ISA, ARCH)                       \
  if (isa_usable(Isa::ISA)) {                                \
    table[static_cast<int>(Isa::ISA)] = make_table<ARCH>(); \
    usable[static_cast<int>(Isa::ISA)] = true;               \
  }
    SIMDATTN_FOR_EACH_COMPILED_ISA(SIMDATTN_FILL_TABLE)
#undef SIMDATTN_FILL_TABLE
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
  if (i < 0 || i >= kIsaSlots || !t.usable[i])
    fail(ErrorCode::unsupported, "kernels_for: ISA '", isa_name(isa), "' is not usable here");
  return t.table[i];
}

const KernelTable& kernels() { return kernels_for(active_isa()); }

std::vector<GemmMicrokernel> gemm_ukernel_variants(Isa isa) {
  std::vector<GemmMicrokernel> out{kernels_for(isa).gemm};
#if defined(SIMDATTN_COMPILED_AVX2)
  if (isa == Isa::avx2) {
    const GemmBlocking b = gemm_blocking_for_l2(3, 32, host_cache_sizes().l2);
    out.push_back({"f32_gemm_3x32__avx2", &gemm_ukernel_f32<ArchAvx2, 3, 32>, 3, 32, b.mc, b.kc,
                   kNcDefault});
  }
#endif
  return out;
}

}  // namespace simdattn::detail

namespace simdattn {

CacheInfo cache_info() {
  const detail::CacheSizes& c = detail::host_cache_sizes();
  return {c.l1d, c.l2, c.l3, c.source};
}

GemmBlockingInfo gemm_blocking(Isa isa) {
  const detail::GemmMicrokernel& g = detail::kernels_for(isa).gemm;
  return {g.mr, g.nr, g.mc, g.kc, g.nc};
}

}  // namespace simdattn
