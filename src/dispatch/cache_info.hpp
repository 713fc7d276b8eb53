// src/dispatch/cache_info.hpp — the data-cache sizes of the CPU the process runs on, read once
// at run time, and the GEMM blocking derived from them (kernel_table.cpp fills each ISA's
// GemmMicrokernel with it). Baseline code: no ISA-specific instruction runs here.
#pragma once

#include <cstdint>
#include <string>

namespace simdattn::detail {

/// Sizes in bytes of the caches one core sees (0: not found). `source` says where they came
/// from: "sysfs", "sysconf" or "default" (nothing could be read: typical sizes are assumed).
struct CacheSizes {
  std::int64_t l1d = 0;
  std::int64_t l2 = 0;
  std::int64_t l3 = 0;
  const char* source = "default";
};

/// Reads <cpu_dir>/cache/index*/{level,type,size} (Linux sysfs, e.g.
/// /sys/devices/system/cpu/cpu0). Missing or malformed entries leave that level 0; a directory
/// without any gives all zeros. Exposed for tests, which point it at a fake tree.
CacheSizes read_sysfs_cache_sizes(const std::string& cpu_dir);

/// This machine's caches: sysfs for cpu0, then sysconf, then defaults (32 KiB / 512 KiB /
/// 8 MiB), level by level. Read once per process.
const CacheSizes& host_cache_sizes();

/// The blocking of the packed GEMM around an mr x nr register tile (floats), for an L2 of
/// `l2_bytes`. The rule (measured, see cache_info.cpp) is:
///   - mc >= 96 rows (rounded up to whole tiles): each row block streams the packed B once
///     more, so mc bounds B's traffic at 4 / mc bytes per multiply-add even when a busy L3
///     holds none of B (<= 2 GB/s at 90 GFLOP/s);
///   - the packed mc x kc A block plus two kc x nr B micro-panels (the current one and the
///     one being prefetched) fill at most 3/4 of L2, the rest left for C tiles and the A rows
///     being packed, so that neighbours in a shared L3 cannot evict the A block;
///   - kc as large as that allows, in [128, 1024] and a multiple of 16: each depth slice
///     loads and stores every C tile once, so deep slices are cheap ones;
///   - then mc as large as the rest allows, at most 4x its floor.
struct GemmBlocking {
  std::int64_t mc = 0;
  std::int64_t kc = 0;
};
GemmBlocking gemm_blocking_for_l2(int mr, int nr, std::int64_t l2_bytes);

}  // namespace simdattn::detail
