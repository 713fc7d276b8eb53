// src/kernels/gemm_params.hpp — the calling convention shared by every f32 GEMM kernel (SIMD and
// generic) and the drivers that call them: signatures, the fused epilogue, the packed-B layout.
// Plain declarations only: this header is included by baseline and per-ISA code alike.
#pragma once

#include <cstdint>

namespace simdattn::detail {

/// Width, in columns, of one packed-B panel for every built-in kernel and every ISA. Fixed so
/// that a PackedMatrix packed under one ISA stays valid after set_isa() switches to another.
inline constexpr std::int64_t kGemmPanelWidth = 16;
/// The widest built-in microkernel spans this many panels (the AVX-512 14x32 tile). Packed B
/// carries that many minus one zero panels past its last one, so a wide tile at the right edge
/// (or on a column sub-view starting at any panel) never reads past the allocation.
inline constexpr std::int64_t kGemmMaxPanelsPerTile = 2;

/// The store step fused into a kernel: C = alpha * acc + beta * C (+ bias[j]). beta == 0 never
/// reads C (C may hold NaN or garbage). bias points at the tile's first column, or is null.
struct GemmEpilogue {
  float alpha = 1.0f;
  float beta = 0.0f;
  const float* bias = nullptr;
  /// A cache hint riding along with the call, not part of the store: `prefetch_lines` 64-byte
  /// lines from `prefetch` on (the driver's next B micro-panel) that the microkernel requests
  /// spread over its depth loop, so they overlap the FMAs instead of stalling in a burst.
  /// The f32 small-M kernel takes it as what its caller reads after the call (the next task's
  /// B) and spreads the lines over its row passes. Never dereferenced; kernels without the
  /// hint ignore it.
  const float* prefetch = nullptr;
  std::int64_t prefetch_lines = 0;
};

/// Microkernel: an MR x NR tile of C from a packed A micro-panel (kc x MR, k-major, rows past
/// m_valid zero) and NR / panel_width packed B panels (each kc x panel_width, k-major; the next
/// panel starts b_panel_stride floats later). Writes only rows < m_valid and columns < n_valid
/// of C. Never allocates, throws or spawns threads; preconditions are asserted.
using GemmUkernelFn = void (*)(std::int64_t kc, const float* a_packed, const float* b_packed,
                               std::int64_t b_panel_stride, float* c, std::int64_t ldc,
                               std::int64_t m_valid, std::int64_t n_valid,
                               const GemmEpilogue& epilogue);

/// Small-M kernel (the decode case): C[m, n] from A read in place (row-major, lda) and n columns
/// of packed B starting at b_packed (full depth k, panels b_panel_stride apart), streaming B
/// once. m <= the kernel's max_m. Never allocates, throws or spawns threads.
using GemmSmallMFn = void (*)(std::int64_t m, std::int64_t k, const float* a, std::int64_t lda,
                              const float* b_packed, std::int64_t b_panel_stride, std::int64_t n,
                              float* c, std::int64_t ldc, const GemmEpilogue& epilogue);

/// How packed B stores its values (simdattn::DType, kernel side). Layouts, per panel of
/// kGemmPanelWidth (16) columns and the full depth k, panels `panel_bytes` apart:
///   f32         row kk: 16 floats at panel + kk * 64 bytes (the layout above)
///   f16, bf16   row kk: 16 uint16 at panel + kk * 32 bytes
///   q8_0        block b = kk / 32 at panel + b * 544 bytes: 16 f16 scales (one per column),
///               then 32 rows of 16 int8; row kk's values at block + 32 + (kk % 32) * 16
///   q4_0        block b = kk / 32 at panel + b * 288 bytes: 16 f16 scales, then 16 row pairs
///               of 16 bytes; byte j of pair i holds column j of row 2i in its low nibble and of
///               row 2i + 1 in its high nibble (so one 16-byte load feeds two consecutive rows):
///               q itself in the low nibble, q - 8 in 4-bit two's complement (q ^ 8) in the high
///               one, so a sign-extended byte shifted right by 4 is the odd row's q - 8
enum class WeightStorage : int { f32 = 0, f16 = 1, bf16 = 2, q8_0 = 3, q4_0 = 4 };
inline constexpr int kWeightStorageCount = 5;
inline constexpr std::int64_t kQ8Block = 32;  ///< the block of q8_0 and q4_0
inline constexpr std::int64_t kQ8BlockBytes = 16 * 2 + kQ8Block * 16;      ///< per panel: 544
inline constexpr std::int64_t kQ4BlockBytes = 16 * 2 + kQ8Block * 16 / 2;  ///< per panel: 288
/// Whether s stores blocks of kQ8Block along the depth.
constexpr bool is_blocked(WeightStorage s) noexcept {
  return s == WeightStorage::q8_0 || s == WeightStorage::q4_0;
}
/// Bytes of one packed panel of depth k (k a multiple of kQ8Block for q8_0 and q4_0).
constexpr std::int64_t packed_panel_bytes(WeightStorage s, std::int64_t k) noexcept {
  return s == WeightStorage::f32    ? k * 16 * 4
         : s == WeightStorage::q8_0 ? (k / kQ8Block) * kQ8BlockBytes
         : s == WeightStorage::q4_0 ? (k / kQ8Block) * kQ4BlockBytes
                                    : k * 16 * 2;
}

/// A KV-cache row of head_dim values in storage type s: f32 / f16 / bf16 values back to back;
/// q8_0 as head_dim / 32 blocks of [f16 scale][32 int8] (34 bytes: GGUF's block_q8_0).
inline constexpr std::int64_t kQ8KvBlockBytes = 2 + kQ8Block;
constexpr std::int64_t kv_row_bytes(WeightStorage s, std::int64_t head_dim) noexcept {
  return s == WeightStorage::f32    ? head_dim * 4
         : s == WeightStorage::q8_0 ? (head_dim / kQ8Block) * kQ8KvBlockBytes
                                    : head_dim * 2;
}

/// Dequantizer: depth rows [k0, k0 + kc) of `panels` consecutive stored panels (b_panels, panel
/// `panel_bytes` apart) into f32 panels at dst (panel q at dst + q * kc * 16, row r of it at
/// + r * 16). Exact: every stored value has an f32 equal. Never allocates or throws.
using DequantPanelsFn = void (*)(const unsigned char* b_panels, std::int64_t panel_bytes,
                                 std::int64_t panels, std::int64_t k0, std::int64_t kc,
                                 float* dst);

/// Small-M kernel on stored B (not f32): GemmSmallMFn's contract with B in its storage type
/// (b_packed at panel 0, panels panel_bytes apart), converted in registers inside the FMA loop;
/// the bits are those of the f32 small-M kernel on the decoded values.
using GemmSmallMStoredFn = void (*)(std::int64_t m, std::int64_t k, const float* a,
                                    std::int64_t lda, const unsigned char* b_packed,
                                    std::int64_t panel_bytes, std::int64_t n, float* c,
                                    std::int64_t ldc, const GemmEpilogue& epilogue);

}  // namespace simdattn::detail
