// src/drivers/gemm.hpp — the blocked SGEMM driver (BLIS's loops around a register microkernel),
// the small-M (decode) driver, B/A packing and the packed-B layout. No validation here: the API
// layer checks arguments; drivers only assert.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "dispatch/kernel_table.hpp"
#include "kernels/gemm_params.hpp"
#include "simdattn/gemm.hpp"

namespace simdattn::detail {

/// The kernels' name for a public storage type (the enumerators are kept in the same order).
inline WeightStorage weight_storage(DType t) noexcept { return static_cast<WeightStorage>(t); }
static_assert(static_cast<int>(WeightStorage::f16) == static_cast<int>(DType::f16) &&
              static_cast<int>(WeightStorage::bf16) == static_cast<int>(DType::bf16) &&
              static_cast<int>(WeightStorage::q8_0) == static_cast<int>(DType::q8_0) &&
              static_cast<int>(WeightStorage::q4_0) == static_cast<int>(DType::q4_0));

/// Grow-only, 64-byte aligned float storage (packed matrices and per-thread workspaces).
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(std::int64_t n) { ensure(n); }
  AlignedFloats(AlignedFloats&& other) noexcept
      : data_(std::move(other.data_)), capacity_(std::exchange(other.capacity_, 0)) {}
  AlignedFloats& operator=(AlignedFloats&& other) noexcept {
    data_ = std::move(other.data_);
    capacity_ = std::exchange(other.capacity_, 0);
    return *this;
  }
  /// Capacity >= n floats afterwards; contents are unspecified after a reallocation.
  void ensure(std::int64_t n);
  float* data() const noexcept { return data_.get(); }
  std::int64_t capacity() const noexcept { return capacity_; }

 private:
  struct Free {
    void operator()(float* p) const noexcept;
  };
  std::unique_ptr<float[], Free> data_;
  std::int64_t capacity_ = 0;
};

/// A view of op(B), K x N, packed into column panels. Layout (why): panel p holds columns
/// [p*pw, (p+1)*pw) for the FULL depth, k-major (row kk of the panel is pw contiguous floats),
/// panels panel_stride = k*pw floats apart, columns past n zero. Because panels span all of K,
/// a kc-deep block is just a pointer offset (kc0 * pw), and the layout depends on nothing but
/// pw — which is kGemmPanelWidth (16) for every ISA — so one packing serves every ISA, and a
/// module may pack at construction and still run after set_isa(). A tile NR = j * pw wide reads
/// j adjacent panels; `panels` counts the readable ones, including (max tile panels - 1) zero
/// panels of padding past the last.
///
/// Stored weights (storage != f32) keep the same panels in their own type (gemm_params.hpp's
/// WeightStorage layouts): `bytes` and `panel_bytes` address them, `data` is null, and the
/// drivers dequantize a panel's depth slice into f32 right before the f32 kernels use it.
struct PackedB {
  const float* data = nullptr;          ///< f32 panels; null for other storage types
  const unsigned char* bytes = nullptr; ///< panel 0, whatever the storage type
  WeightStorage storage = WeightStorage::f32;
  std::int64_t panel_bytes = 0;         ///< bytes from one panel to the next
  std::int64_t k = 0;
  std::int64_t n = 0;
  std::int64_t panel_width = kGemmPanelWidth;
  std::int64_t panel_stride = 0;        ///< floats from one panel to the next (f32 only)
  std::int64_t panels = 0;

  /// Bytes the packing holds (padding panels included).
  std::int64_t resident_bytes() const noexcept { return panels * panel_bytes; }

  /// Columns [n0, n0 + count) as a view; n0 must be a multiple of panel_width. Lets a caller
  /// write a column range of the product elsewhere (e.g. one head's Q/K/V slice).
  PackedB columns(std::int64_t n0, std::int64_t count) const noexcept;
};

/// Panels to allocate for n columns: ceil(n / pw) + (max_panels_per_tile - 1) zero panels.
std::int64_t packed_b_panel_count(std::int64_t n, std::int64_t pw,
                                  std::int64_t max_panels_per_tile) noexcept;

/// Packs panels [panel_begin, panel_end) of op(B) into dst, which holds the whole packing
/// (panel p starts at dst + p*k*pw). op(B) is K x N: B is [K, N] row-major (trans == no) or
/// [N, K] (trans == yes, nn.Linear's weight). Columns >= n (and whole padding panels) become 0.
void pack_b_panels(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k,
                   std::int64_t n, std::int64_t pw, std::int64_t panel_begin,
                   std::int64_t panel_end, float* dst);

/// Packs all of op(B) (in parallel on the library arena) into storage, returning the view.
PackedB pack_b(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k, std::int64_t n,
               std::int64_t pw, std::int64_t max_panels_per_tile, AlignedFloats& storage);

/// Packs all of op(B) in storage type `storage` (never expanded to f32: each panel is packed
/// into a per-thread f32 panel and encoded from there). Throws Error(invalid_argument) naming
/// the element when a finite weight does not fit the type (|w| > 65504 in f16; a q8_0 or q4_0
/// block whose scale overflows f16). q8_0 and q4_0 need k % 32 == 0 (the caller checks).
PackedB pack_b_stored(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k,
                      std::int64_t n, WeightStorage storage, AlignedFloats& dst);

/// Packs rows [0, rows) x depth [0, kc) of A (row-major, lda) into MR-tall micro-panels: panel
/// r holds rows [r*MR, r*MR + MR) k-major (MR contiguous floats per depth step), rows past
/// `rows` zero. Panel r starts at dst + r*MR*kc.
void pack_a_panels(const float* a, std::int64_t lda, std::int64_t rows, std::int64_t kc, int mr,
                   float* dst) noexcept;

/// What PackedMatrix shares: the storage and its view.
struct PackedData {
  AlignedFloats storage;
  PackedB view;
};

/// C (m x b.n, ldc) = alpha * A (m x b.k, lda) * B + beta * C (+ bias[n]).
///
/// Column groups (c_group > 0): C is stored as n / c_group separate [m, c_group] matrices,
/// c_group_stride floats apart, each with row stride ldc: element (i, j) lives at
/// c + (j / c_group) * c_group_stride + i * ldc + j % c_group. The attention's QKV projection
/// uses it to write Q, K and V head-major ([3 * heads][T][head_dim]) straight from the tiles.
/// c_group must be a multiple of the active microkernel's NR (a tile never straddles groups)
/// and divide n; the arithmetic, hence every bit, is the same as with c_group = 0.
struct GemmArgs;

/// Up to this many rows, a whole_depth call runs the small-M kernel in chunks (gemm_packed).
inline constexpr std::int64_t kGemmRowChunkedMaxM = 64;

/// A driver-level epilogue: called once for every finished block of C (rows [row0, row0 +
/// rows), columns [col0, col0 + cols), final values), by the task that computed it, while the
/// block is still in its cache. Baseline code (the attention's rotary embedding). col_align > 0
/// makes every block's column range start at a multiple of it (it must be a multiple of the
/// microkernel's NR), so a hook that needs whole heads gets them (on the small-M path with
/// column groups, each block is one group); it changes which task computes a block, never the
/// arithmetic.
struct GemmBlockHook {
  void (*fn)(const void* ctx, const GemmArgs& args, std::int64_t row0, std::int64_t rows,
             std::int64_t col0, std::int64_t cols) = nullptr;
  const void* ctx = nullptr;
  std::int64_t col_align = 0;
};

struct GemmArgs {
  std::int64_t m = 0;
  float alpha = 1.0f;
  const float* a = nullptr;
  std::int64_t lda = 0;
  float beta = 0.0f;
  float* c = nullptr;
  std::int64_t ldc = 0;
  const float* bias = nullptr;
  std::int64_t c_group = 0;
  std::int64_t c_group_stride = 0;
  GemmBlockHook hook;
  /// One depth slice of all of K on the blocked path (kc = K): every element is then one
  /// multiply-add chain over k = 0..K-1 stored through the same epilogue as the small-M path,
  /// so a row gets the same bits whatever m is and whichever path m picks (a sequence in a
  /// batched decode gets the bits it gets alone). Costs the blocked path some cache blocking.
  bool whole_depth = false;

  /// Address of C(i, j).
  float* c_at(std::int64_t i, std::int64_t j) const noexcept {
    if (c_group <= 0) return c + i * ldc + j;
    return c + (j / c_group) * c_group_stride + i * ldc + j % c_group;
  }
};

/// C (m rows, ldc) = alpha A (m rows, lda) B + beta C (+ bias): a plain row-major call.
inline GemmArgs gemm_args(std::int64_t m, float alpha, const float* a, std::int64_t lda,
                          float beta, float* c, std::int64_t ldc, const float* bias) {
  GemmArgs args;
  args.m = m;
  args.alpha = alpha;
  args.a = a;
  args.lda = lda;
  args.beta = beta;
  args.c = c;
  args.ldc = ldc;
  args.bias = bias;
  return args;
}

/// Task grid override for tests: rows / columns of C per parallel task (rounded up to the
/// tile); 0 picks automatically. Any split gives the same bits: tasks own disjoint C blocks on
/// one fixed tile grid and never split K.
struct GemmSplit {
  std::int64_t m_block = 0;
  std::int64_t n_block = 0;
};

/// The blocked path: for each task (an m_block x n_block block of C) and each kc-deep slice,
/// pack the A block once into a thread-local workspace, then run the microkernel over the
/// block, NR-wide B micro-panel outer (it stays in L1 or L2) and MR-tall A micro-panel inner. The
/// epilogue (alpha, beta, bias) is fused into the first slice's stores; later slices add.
/// Stored B (b.storage != f32) needs its type's dequantizer: each task dequantizes the kc x NR
/// micro-panel it is about to use into a per-thread f32 buffer (L1/L2), so the products have
/// the bits of the f32 product against the decoded weights.
void gemm_blocked(const GemmMicrokernel& ukernel, const GemmArgs& args, const PackedB& b,
                  GemmSplit split = {}, DequantPanelsFn dequant = nullptr);

/// The small-M path: no A packing; B streamed once, panels split over threads (panels_per_task
/// 0 picks automatically; any split gives the same bits). m > kernel.max_m runs in chunks of
/// max_m rows per task, each row with the bits it has in any chunk.
/// Stored B (b.storage != f32) needs the table's stored_kernel, which converts B in registers
/// inside its FMA loop (B streamed once, in its own type) with the f32 kernel's arithmetic, so
/// the bits are the f32 kernel's on the decoded values. (Dequantizing L2-sized panel groups
/// and running the f32 kernel on them measured 1.6x slower than f32 at the decode shape.)
void gemm_small_m(const GemmSmallMKernel& kernel, const GemmArgs& args, const PackedB& b,
                  std::int64_t panels_per_task = 0, GemmSmallMStoredFn stored_kernel = nullptr);

/// Chooses the path by m only (never by thread count, so bits do not depend on threads).
void gemm_packed(const KernelTable& table, const GemmArgs& args, const PackedB& b);

/// sgemm without a prepacked B: packs op(B) into a reusable per-thread workspace (in column
/// chunks when B is large) and runs gemm_packed.
void gemm_unpacked(const KernelTable& table, Transpose trans_b, std::int64_t n, std::int64_t k,
                   const float* b, std::int64_t ldb, const GemmArgs& args);

}  // namespace simdattn::detail
