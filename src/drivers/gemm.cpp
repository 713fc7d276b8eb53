// src/drivers/gemm.cpp — blocking, packing, workspaces and oneTBB tiling for SGEMM (gemm.hpp).
#include "drivers/gemm.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "common/half.hpp"
#include "common/validate.hpp"
#include "drivers/parallel.hpp"

namespace simdattn::detail {
namespace {

/// Below 2^19 multiply-adds a GEMM is not worth waking threads for. m * n * k can pass int64
/// for valid shapes (three dimensions near 2^21 each), so the product is taken in 128 bits.
bool below_threading_threshold(std::int64_t m, std::int64_t n, std::int64_t k) noexcept {
  return static_cast<__int128>(m) * n * k < (__int128{1} << 19);
}

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
constexpr std::int64_t round_up(std::int64_t a, std::int64_t b) { return ceil_div(a, b) * b; }
/// B per small-M task when its rows run as several chunks: the task's B is re-read from L2 while
/// the next task's is requested, so two of them must fit the smallest L2 (256 KiB).
constexpr std::int64_t kRowChunkTaskBytes = 128 * 1024;

// Per-thread packing workspaces. A driver moves the buffer out of the thread_local for as long
// as it uses it and moves it back afterwards: if oneTBB runs another of our tasks on this
// thread meanwhile (work stealing while a nested parallel loop waits), that task finds the slot
// empty and allocates its own instead of clobbering ours.
thread_local AlignedFloats tls_a_workspace;
thread_local AlignedFloats tls_b_workspace;
thread_local AlignedFloats tls_dequant_workspace;  // stored B decoded for the f32 kernels

class BorrowedWorkspace {
 public:
  explicit BorrowedWorkspace(AlignedFloats& slot) : slot_(slot), buf_(std::move(slot)) {}
  ~BorrowedWorkspace() {
    if (buf_.capacity() >= slot_.capacity()) slot_ = std::move(buf_);
  }
  BorrowedWorkspace(const BorrowedWorkspace&) = delete;
  BorrowedWorkspace& operator=(const BorrowedWorkspace&) = delete;
  AlignedFloats& buffer() noexcept { return buf_; }

 private:
  AlignedFloats& slot_;
  AlignedFloats buf_;
};

// Depth slices: ceil(K / kc) equal slices rather than full kc slices plus a thin remainder
// (K = 1024 with kc = 768 is 2 x 512; K = 257 with kc 256 is 129 + 128, not 256 + 1), so no slice pays the
// fixed cost of loading and storing C for a handful of FMAs. Depends only on K and the kernel.
std::int64_t depth_step(std::int64_t k, std::int64_t kc) {
  return ceil_div(k, ceil_div(k, kc));
}

// The task grid: row_blocks x col_blocks blocks of whole tiles. Block r covers tiles
// [r * tiles_m / row_blocks, (r + 1) * tiles_m / row_blocks), so blocks differ by at most one
// tile and a static partition stays balanced. Every element is computed by the same tile
// whatever the grid, hence the same bits for any thread count.
struct TaskGrid {
  std::int64_t tiles_m, tiles_n, row_blocks, col_blocks;
  std::int64_t max_block_rows(std::int64_t mr) const { return ceil_div(tiles_m, row_blocks) * mr; }
};

// Automatic grid: blocks of at most mc rows (the A block the kernel is tuned for) and at most nc
// columns. With several threads: at least 4 blocks per thread (rows first; columns only when
// rows run out, since each column block repacks its A block), and a block count that is a
// multiple of the thread count, so the static partition gives every thread the same work.
TaskGrid make_grid(const GemmMicrokernel& uk, std::int64_t m, std::int64_t n, std::int64_t k,
                   GemmSplit split) {
  TaskGrid g{};
  g.tiles_m = ceil_div(m, uk.mr);
  g.tiles_n = ceil_div(n, uk.nr);
  const auto blocks = [](std::int64_t tiles, std::int64_t block, std::int64_t tile) {
    return ceil_div(tiles, std::max<std::int64_t>(1, ceil_div(block, tile)));
  };
  if (split.m_block > 0 || split.n_block > 0) {
    g.row_blocks = blocks(g.tiles_m, split.m_block > 0 ? split.m_block : uk.mc, uk.mr);
    g.col_blocks = blocks(g.tiles_n, split.n_block > 0 ? split.n_block : uk.nc, uk.nr);
    return g;
  }
  g.row_blocks = blocks(g.tiles_m, uk.mc, uk.mr);
  g.col_blocks = blocks(g.tiles_n, uk.nc, uk.nr);
  const std::int64_t threads = num_threads();
  // Below ~0.5 M multiply-adds a second thread costs more to wake than it saves.
  if (threads <= 1 || below_threading_threshold(m, n, k)) return g;
  const std::int64_t want = 4 * threads;
  if (g.row_blocks * g.col_blocks < want)
    g.row_blocks = std::min(g.tiles_m, ceil_div(want, g.col_blocks));
  if (g.row_blocks * g.col_blocks < want)
    g.col_blocks = std::min(g.tiles_n, ceil_div(want, g.row_blocks));
  // Round the count up to a multiple of the threads where the tiles allow it.
  if (g.row_blocks * g.col_blocks % threads != 0) {
    const std::int64_t rb = round_up(g.row_blocks, threads);
    if (rb <= g.tiles_m) g.row_blocks = rb;
  }
  return g;
}

}  // namespace

void AlignedFloats::Free::operator()(float* p) const noexcept {
  ::operator delete[](p, std::align_val_t(64));
}

void AlignedFloats::ensure(std::int64_t n) {
  if (n <= capacity_) return;
  data_.reset();
  capacity_ = 0;
  data_.reset(static_cast<float*>(
      ::operator new[](static_cast<std::size_t>(n) * sizeof(float), std::align_val_t(64))));
  capacity_ = n;
}

PackedB PackedB::columns(std::int64_t n0, std::int64_t count) const noexcept {
  assert(n0 % panel_width == 0 && n0 >= 0 && count >= 1 && n0 + count <= n);
  PackedB v = *this;
  const std::int64_t p0 = n0 / panel_width;
  if (data != nullptr) v.data = data + p0 * panel_stride;
  v.bytes = bytes + p0 * panel_bytes;
  v.n = count;
  v.panels = panels - p0;
  return v;
}

std::int64_t packed_b_panel_count(std::int64_t n, std::int64_t pw,
                                  std::int64_t max_panels_per_tile) noexcept {
  return ceil_div(n, pw) + (max_panels_per_tile - 1);
}

namespace {

// Panel p of op(B) into `panel` (k x pw floats).
void pack_b_panel(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k,
                  std::int64_t n, std::int64_t pw, std::int64_t p, float* panel) {
  {
    const std::int64_t j0 = p * pw;
    const std::int64_t width = j0 >= n ? 0 : std::min(pw, n - j0);
    if (trans == Transpose::no) {
      // Row kk of op(B) is row kk of B: one contiguous run per depth step.
      for (std::int64_t kk = 0; kk < k; ++kk) {
        float* out = panel + kk * pw;
        const float* in = b + kk * ldb + j0;
        for (std::int64_t j = 0; j < width; ++j) out[j] = in[j];
        for (std::int64_t j = width; j < pw; ++j) out[j] = 0.0f;
      }
    } else {
      // op(B)[kk][j] = B[j][kk]: read each of the panel's B rows sequentially, in depth blocks
      // so the panel rows being written stay in L1.
      constexpr std::int64_t kBlock = 64;
      for (std::int64_t k0 = 0; k0 < k; k0 += kBlock) {
        const std::int64_t k1 = std::min(k, k0 + kBlock);
        for (std::int64_t j = 0; j < width; ++j) {
          const float* in = b + (j0 + j) * ldb;
          for (std::int64_t kk = k0; kk < k1; ++kk) panel[kk * pw + j] = in[kk];
        }
        for (std::int64_t kk = k0; kk < k1; ++kk)
          for (std::int64_t j = width; j < pw; ++j) panel[kk * pw + j] = 0.0f;
      }
    }
  }
}

}  // namespace

void pack_b_panels(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k,
                   std::int64_t n, std::int64_t pw, std::int64_t panel_begin,
                   std::int64_t panel_end, float* dst) {
  for (std::int64_t p = panel_begin; p < panel_end; ++p)
    pack_b_panel(b, ldb, trans, k, n, pw, p, dst + p * k * pw);
}

PackedB pack_b(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k, std::int64_t n,
               std::int64_t pw, std::int64_t max_panels_per_tile, AlignedFloats& storage) {
  PackedB v;
  v.k = k;
  v.n = n;
  v.panel_width = pw;
  v.panel_stride = k * pw;
  v.panels = packed_b_panel_count(n, pw, max_panels_per_tile);
  storage.ensure(v.panels * v.panel_stride);
  float* dst = storage.data();
  v.data = dst;
  v.bytes = reinterpret_cast<const unsigned char*>(dst);
  v.panel_bytes = v.panel_stride * static_cast<std::int64_t>(sizeof(float));
  // Several panels per task: a task of ~64 KiB or more amortises the scheduling.
  const std::int64_t per_task = std::max<std::int64_t>(1, ceil_div(16384, k * pw));
  parallel_for_blocks(ceil_div(v.panels, per_task), [&](std::int64_t t) {
    const std::int64_t p0 = t * per_task;
    pack_b_panels(b, ldb, trans, k, n, pw, p0, std::min(v.panels, p0 + per_task), dst);
  });
  return v;
}

namespace {

// Encodes one f32 panel (k x 16, k-major) into `out` in storage type s. Returns false, with
// (row, col) of the first value that does not fit, when one does not.
bool encode_panel(const float* panel, std::int64_t k, WeightStorage s, unsigned char* out,
                  std::int64_t& bad_row, std::int64_t& bad_col) {
  constexpr std::int64_t PW = kGemmPanelWidth;
  if (is_blocked(s)) {
    const std::int64_t block_bytes = packed_panel_bytes(s, kQ8Block);
    for (std::int64_t blk = 0; blk < k / kQ8Block; ++blk) {
      unsigned char* block = out + blk * block_bytes;
      unsigned char* codes = block + 2 * PW;
      for (std::int64_t j = 0; j < PW; ++j) {
        const float* in = panel + blk * kQ8Block * PW + j;
        std::uint16_t d;
        if (s == WeightStorage::q8_0) {
          std::int8_t q[kQ8Block];
          d = q8_0_encode_block(in, PW, q);
          for (std::int64_t r = 0; r < kQ8Block; ++r)
            codes[r * PW + j] = static_cast<unsigned char>(q[r]);
        } else {
          std::uint8_t q[kQ8Block];
          d = q4_0_encode_block(in, PW, q);
          for (std::int64_t pair = 0; pair < kQ8Block / 2; ++pair)  // high: q - 8 in 4 bits
            codes[pair * PW + j] =
                static_cast<unsigned char>(q[2 * pair] | ((q[2 * pair + 1] ^ 8) << 4));
        }
        // The scale overflowed f16: max |w| > 65504 * 127 (q8_0) or 65504 * 8 (q4_0).
        if ((d & 0x7fffu) == 0x7c00u) {
          bad_row = blk * kQ8Block;
          bad_col = j;
          return false;
        }
        std::memcpy(block + 2 * j, &d, 2);
      }
    }
    return true;
  }
  for (std::int64_t i = 0; i < k * PW; ++i) {
    const float w = panel[i];
    std::uint16_t h;
    if (s == WeightStorage::f16) {
      h = f32_to_f16(w);
      if ((h & 0x7fffu) == 0x7c00u && std::isfinite(w)) {
        bad_row = i / PW;
        bad_col = i % PW;
        return false;
      }
    } else {
      h = f32_to_bf16(w);  // bf16 has f32's range: every finite f32 rounds to a finite value
    }                      // or, above 3.39e38, to Inf, as f32 arithmetic would overflow there
    std::memcpy(out + 2 * i, &h, 2);
  }
  return true;
}

}  // namespace

PackedB pack_b_stored(const float* b, std::int64_t ldb, Transpose trans, std::int64_t k,
                      std::int64_t n, WeightStorage storage, AlignedFloats& dst) {
  constexpr std::int64_t PW = kGemmPanelWidth;
  assert(!is_blocked(storage) || k % kQ8Block == 0);
  PackedB v;
  v.storage = storage;
  v.k = k;
  v.n = n;
  v.panel_width = PW;
  v.panel_stride = 0;
  v.panels = packed_b_panel_count(n, PW, kGemmMaxPanelsPerTile);
  v.panel_bytes = packed_panel_bytes(storage, k);
  const std::int64_t total = v.panels * v.panel_bytes;
  dst.ensure(ceil_div(total, static_cast<std::int64_t>(sizeof(float))));
  auto* out = reinterpret_cast<unsigned char*>(dst.data());
  v.bytes = out;
  // One panel per task: each packs its panel into a per-thread f32 panel (k x 16 floats) and
  // encodes it; the f32 form never exists for more than one panel per thread.
  struct Bad {
    std::int64_t row = -1, col = -1;
  };
  std::vector<Bad> bad(static_cast<std::size_t>(v.panels));
  parallel_for_blocks(v.panels, [&](std::int64_t p) {
    BorrowedWorkspace workspace(tls_b_workspace);
    AlignedFloats& panel = workspace.buffer();
    panel.ensure(k * PW);
    pack_b_panel(b, ldb, trans, k, n, PW, p, panel.data());
    Bad& mine = bad[static_cast<std::size_t>(p)];
    if (!encode_panel(panel.data(), k, storage, out + p * v.panel_bytes, mine.row, mine.col))
      mine.col += p * PW;
  });
  for (const Bad& e : bad)
    if (e.row >= 0)
      fail_arg("PackedMatrix: op(B)[", e.row, "][", e.col, "] does not fit ",
               storage == WeightStorage::f16    ? "f16 (|w| <= 65504)"
               : storage == WeightStorage::q8_0 ? "q8_0 (a block's max |w| must be <= 65504 * 127)"
                                                : "q4_0 (a block's max |w| must be <= 65504 * 8)");
  return v;
}

namespace {

// Full micro-panels with the tile height known at compile time: depth-outer, so each step
// writes MR contiguous floats (one or two cache lines) from MR sequential row streams, which
// the compiler unrolls completely. ~4x faster than a row-outer strided copy.
template <int MR>
void pack_a_full_panel(const float* a, std::int64_t lda, std::int64_t kc, float* panel) noexcept {
  const float* rows[MR];
  for (int i = 0; i < MR; ++i) rows[i] = a + i * lda;
  for (std::int64_t p = 0; p < kc; ++p)
    for (int i = 0; i < MR; ++i) panel[p * MR + i] = rows[i][p];
}

using PackFullPanelFn = void (*)(const float*, std::int64_t, std::int64_t, float*) noexcept;

PackFullPanelFn full_panel_packer(int mr) noexcept {
  switch (mr) {
    case 3: return &pack_a_full_panel<3>;
    case 6: return &pack_a_full_panel<6>;
    case 14: return &pack_a_full_panel<14>;
    default: return nullptr;
  }
}

}  // namespace

void pack_a_panels(const float* a, std::int64_t lda, std::int64_t rows, std::int64_t kc, int mr,
                   float* dst) noexcept {
  const PackFullPanelFn full = full_panel_packer(mr);
  // Each row contributes only kc floats (1 KiB) before the copy jumps lda ahead: too short a
  // stream for the hardware prefetcher, and A comes from DRAM (it is read once per GEMM). So
  // request the rows of the micro-panel two ahead while copying this one.
  constexpr std::int64_t kLine = 64 / sizeof(float);
  const auto prefetch_rows = [&](std::int64_t r_begin) {
    const std::int64_t r_end = std::min(rows, r_begin + mr);
    for (std::int64_t r = r_begin; r < r_end; ++r)
      for (std::int64_t p = 0; p < kc; p += kLine) __builtin_prefetch(a + r * lda + p, 0, 3);
  };
  prefetch_rows(0);
  prefetch_rows(mr);
  for (std::int64_t r0 = 0; r0 < rows; r0 += mr) {
    float* panel = dst + r0 * kc;  // (r0 / mr) * mr * kc
    const float* in = a + r0 * lda;
    prefetch_rows(r0 + 2 * mr);
    if (full != nullptr && r0 + mr <= rows) {
      full(in, lda, kc, panel);
      continue;
    }
    // Generic tile heights and the bottom edge: rows past `rows` are zero.
    const std::int64_t valid = std::min<std::int64_t>(mr, rows - r0);
    for (std::int64_t p = 0; p < kc; ++p)
      for (int i = 0; i < mr; ++i) panel[p * mr + i] = i < valid ? in[i * lda + p] : 0.0f;
  }
}

void gemm_blocked(const GemmMicrokernel& uk, const GemmArgs& args, const PackedB& b,
                  GemmSplit split, DequantPanelsFn dequant) {
  const bool stored = b.storage != WeightStorage::f32;
  assert(!stored || dequant != nullptr);
  const std::int64_t m = args.m, n = b.n, k = b.k;
  const std::int64_t mr = uk.mr, nr = uk.nr, pw = b.panel_width;
  assert(m >= 1 && n >= 1 && k >= 1 && uk.fn != nullptr);
  assert(nr % pw == 0 && "a tile must cover whole panels");
  assert(ceil_div(round_up(n, nr), pw) <= b.panels && "packed B lacks padding panels");
  assert((args.c_group <= 0 || args.c_group % nr == 0) && "a tile must not straddle C groups");
  const std::int64_t kc_step = args.whole_depth ? k : depth_step(k, uk.kc);
  const TaskGrid grid = make_grid(uk, m, n, k, split);

  // Column blocks in units of `unit` tiles (a hook's col_align; 1 otherwise).
  assert(args.hook.col_align <= 0 || args.hook.col_align % nr == 0);
  const std::int64_t unit = args.hook.col_align > 0 ? args.hook.col_align / nr : 1;
  const std::int64_t units_n = ceil_div(grid.tiles_n, unit);
  const std::int64_t col_blocks = std::min(grid.col_blocks, units_n);

  parallel_for_blocks(grid.row_blocks * col_blocks, [&](std::int64_t task) {
    const std::int64_t rb = task / col_blocks, cb = task % col_blocks;
    const std::int64_t m0 = rb * grid.tiles_m / grid.row_blocks * mr;
    const std::int64_t m1 = std::min(m, (rb + 1) * grid.tiles_m / grid.row_blocks * mr);
    const std::int64_t n0 = cb * units_n / col_blocks * unit * nr;
    const std::int64_t n1 = std::min(n, (cb + 1) * units_n / col_blocks * unit * nr);
    BorrowedWorkspace workspace(tls_a_workspace);
    AlignedFloats& a_pack = workspace.buffer();
    a_pack.ensure(round_up(m1 - m0, mr) * kc_step);
    BorrowedWorkspace b_workspace(tls_dequant_workspace);
    AlignedFloats& b_decoded = b_workspace.buffer();  // one kc x nr micro-panel (stored B)
    if (stored) b_decoded.ensure(kc_step * nr);
    for (std::int64_t k0 = 0; k0 < k; k0 += kc_step) {
      const std::int64_t kc = std::min(kc_step, k - k0);
      pack_a_panels(args.a + m0 * args.lda + k0, args.lda, m1 - m0, kc, uk.mr, a_pack.data());
      // The first slice applies beta and bias; later slices accumulate into C.
      const GemmEpilogue ep = k0 == 0 ? GemmEpilogue{args.alpha, args.beta, args.bias}
                                      : GemmEpilogue{args.alpha, 1.0f, nullptr};
      constexpr std::int64_t kFloatsPerLine = 64 / sizeof(float);
      const std::int64_t lines_per_panel = ceil_div(kc * pw, kFloatsPerLine);
      const std::int64_t b_lines_per_call =
          ceil_div(lines_per_panel * (nr / pw), ceil_div(m1 - m0, mr));
      for (std::int64_t j = n0; j < n1; j += nr) {
        const float* b_panel = nullptr;
        std::int64_t b_stride = b.panel_stride;
        if (stored) {
          // Decoded once per (task, slice, column) and reused by every A micro-panel below.
          dequant(b.bytes + (j / pw) * b.panel_bytes, b.panel_bytes, nr / pw, k0, kc,
                  b_decoded.data());
          b_panel = b_decoded.data();
          b_stride = kc * pw;
        } else {
          b_panel = b.data + (j / pw) * b.panel_stride + k0 * pw;
        }
        GemmEpilogue tile_ep = ep;
        if (tile_ep.bias != nullptr) tile_ep.bias += j;
        const std::int64_t n_valid = std::min(nr, n1 - j);
        // The next B micro-panel comes from L3 (the kc x n slice of B is far larger than L2):
        // left to the hardware, its first kernel call stalls on every line (measured: ~12% of
        // the time on K = 768 shapes). So each call of this column requests a share of it,
        // spread by the kernel over its depth loop (a burst of prefetches here stalled the
        // driver on full miss buffers: 4-6% of the GEMM time in profiles). A share never
        // crosses a panel boundary; the lines are contiguous within a panel.
        const float* next =
            !stored && j + nr < n1 ? b_panel + (nr / pw) * b.panel_stride : nullptr;
        std::int64_t next_panel = 0, next_line = 0;  // progress through the next micro-panel
        const float* a_panel = a_pack.data();
        for (std::int64_t i = m0; i < m1; i += mr, a_panel += mr * kc) {
          tile_ep.prefetch = nullptr;
          tile_ep.prefetch_lines = 0;
          if (next != nullptr) {
            const std::int64_t lines = std::min(b_lines_per_call, lines_per_panel - next_line);
            tile_ep.prefetch = next + next_panel * b.panel_stride + next_line * kFloatsPerLine;
            tile_ep.prefetch_lines = lines;
            next_line += lines;
            if (next_line == lines_per_panel) {
              next_line = 0;
              if (++next_panel == nr / pw) next = nullptr;
            }
          }
          uk.fn(kc, a_panel, b_panel, b_stride, args.c_at(i, j), args.ldc,
                std::min(mr, m1 - i), n_valid, tile_ep);
        }
      }
    }
    if (args.hook.fn != nullptr) args.hook.fn(args.hook.ctx, args, m0, m1 - m0, n0, n1 - n0);
  });
}

void gemm_small_m(const GemmSmallMKernel& kernel, const GemmArgs& args, const PackedB& b,
                  std::int64_t panels_per_task, GemmSmallMStoredFn stored_kernel) {
  const bool stored = b.storage != WeightStorage::f32;
  assert(!stored || stored_kernel != nullptr);
  const std::int64_t n = b.n, pw = b.panel_width;
  assert(args.m >= 1 && kernel.fn != nullptr);
  const std::int64_t panels = ceil_div(n, pw);
  std::int64_t per_task = panels_per_task;
  if (args.c_group > 0) {
    // One task per column group: the kernel writes a task's columns as one [m, cols] matrix.
    assert(args.c_group % pw == 0 && "column groups must be whole panels");
    per_task = args.c_group / pw;
  } else if (per_task <= 0) {
    // Several tasks per thread for balance, but each at least 8 panels (8 x k x 64 B of B)
    // so the streams stay long.
    const std::int64_t threads = num_threads();
    const bool tiny = below_threading_threshold(args.m, n, b.k);
    per_task = threads <= 1 || tiny ? panels
                                    : std::max<std::int64_t>(8, ceil_div(panels, 4 * threads));
  }
  const bool row_chunks = args.m > kernel.max_m;
  if (row_chunks && args.c_group <= 0) {
    // Row chunks re-read the task's B from cache while the next task's B is requested: keep
    // the two within ~256 KiB (any L2).
    const std::int64_t fit = std::max<std::int64_t>(1, kRowChunkTaskBytes / (b.k * pw * 4));
    per_task = std::min(per_task, fit);
  }
  if (args.hook.col_align > 0 && args.c_group <= 0) {  // (column groups are blocks already)
    assert(args.hook.col_align % pw == 0);
    per_task = round_up(per_task, args.hook.col_align / pw);
  }
  parallel_for_blocks(ceil_div(panels, per_task), [&](std::int64_t t) {
    const std::int64_t p0 = t * per_task;
    const std::int64_t j0 = p0 * pw;
    const std::int64_t cols = std::min(n, (p0 + per_task) * pw) - j0;
    GemmEpilogue ep{args.alpha, args.beta, args.bias != nullptr ? args.bias + j0 : nullptr};
    // More rows than the kernel takes run as chunks of max_m rows over the same columns: the
    // task's B comes from memory for the first chunk and from L2 for the others, and every row
    // gets the same bits as in any other chunking. Those chunks are compute-bound, so each
    // requests a share of the next task's B (f32, contiguous panels): the memory stream then
    // runs under the FMAs instead of after them.
    const std::int64_t chunks = ceil_div(args.m, std::int64_t{kernel.max_m});
    const float* next = !stored && row_chunks && p0 + per_task < panels
                            ? b.data + (p0 + per_task) * b.panel_stride
                            : nullptr;
    std::int64_t next_lines =
        next != nullptr ? std::min(per_task, panels - p0 - per_task) * b.panel_stride / 16 : 0;
    std::int64_t chunks_left = chunks;
    for (std::int64_t r0 = 0; r0 < args.m; r0 += kernel.max_m) {
      const std::int64_t rows = std::min<std::int64_t>(kernel.max_m, args.m - r0);
      const float* a = args.a + r0 * args.lda;
      const std::int64_t lines = next_lines / chunks_left--;
      ep.prefetch = next;
      ep.prefetch_lines = lines;
      if (next != nullptr) next += lines * 16;
      next_lines -= lines;
      if (!stored) {
        kernel.fn(rows, b.k, a, args.lda, b.data + p0 * b.panel_stride, b.panel_stride, cols,
                  args.c_at(r0, j0), args.ldc, ep);
      } else {
        // Stored B: the kernel converts it in registers, streaming it once in its own type.
        stored_kernel(rows, b.k, a, args.lda, b.bytes + p0 * b.panel_bytes, b.panel_bytes, cols,
                      args.c_at(r0, j0), args.ldc, ep);
      }
    }
    if (args.hook.fn != nullptr) args.hook.fn(args.hook.ctx, args, 0, args.m, j0, cols);
  });
}

void gemm_packed(const KernelTable& table, const GemmArgs& args, const PackedB& b) {
  assert(b.panel_width == kGemmPanelWidth);
  const DequantKernel& dq = table.dequant[static_cast<int>(b.storage)];
  // Row-invariant calls (whole_depth) of a few dozen rows, a batched decode step, stay on the
  // small-M kernel in row chunks: B streams once, no tile computes padding rows, and the bits
  // are those of the same rows alone. Larger ones take the blocked path with one depth slice.
  const bool chunked = args.whole_depth && args.m <= kGemmRowChunkedMaxM;
  if (args.m <= table.gemm_small_m.max_m || chunked)
    gemm_small_m(table.gemm_small_m, args, b, 0, dq.small_m);
  else
    gemm_blocked(table.gemm, args, b, {}, dq.fn);
}

void gemm_unpacked(const KernelTable& table, Transpose trans_b, std::int64_t n, std::int64_t k,
                   const float* b, std::int64_t ldb, const GemmArgs& args) {
  // Pack at most ~32 MiB of B at a time; chunks are a multiple of every tile width (32) so
  // the tile grid, and hence the bits, are the same as for a single chunk.
  assert(args.c_group <= 0 && "column groups are for prepacked B only");
  constexpr std::int64_t kMaxPackedFloats = std::int64_t{1} << 23;
  const std::int64_t cols_fit = (kMaxPackedFloats / k) / 32 * 32;
  const std::int64_t chunk = std::max<std::int64_t>(32, std::min(round_up(n, 32), cols_fit));
  BorrowedWorkspace workspace(tls_b_workspace);
  AlignedFloats& storage = workspace.buffer();
  for (std::int64_t n0 = 0; n0 < n; n0 += chunk) {
    const std::int64_t cols = std::min(chunk, n - n0);
    const float* b_chunk = trans_b == Transpose::no ? b + n0 : b + n0 * ldb;
    const PackedB view = pack_b(b_chunk, ldb, trans_b, k, cols, kGemmPanelWidth,
                                kGemmMaxPanelsPerTile, storage);
    GemmArgs chunk_args = args;
    chunk_args.c = args.c + n0;
    if (args.bias != nullptr) chunk_args.bias = args.bias + n0;
    gemm_packed(table, chunk_args, view);
  }
}

}  // namespace simdattn::detail
