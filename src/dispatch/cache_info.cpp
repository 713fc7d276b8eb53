// src/dispatch/cache_info.cpp — cache sizes read at run time, and the GEMM blocking rule.
//
// Why this rule (1 thread, the packed GEMM at the attention-projection shapes, against oneDNN's
// sgemm in the same run):
// - 2-vCPU Zen 3, 512 KiB L2, AVX2 6 x 16: the hand-tuned values were mc 96, kc 1024, i.e.
//   the A block plus the B micro-panels fill the whole L2; on the K = 768 shapes the slice is
//   768 deep. With neighbours busy the packed GEMM fell to 65% of peak while oneDNN held 90%.
//   The rule keeps a quarter of L2 free (mc 96, kc 768 there: the same at K = 768; at
//   K = 1024 it gives two 512-deep slices, which measured 0.88 of peak there against 0.90 for
//   one 1024-deep slice).
// - 2-vCPU Xeon with AVX-512 (2 MiB L2, 48 KiB L1d), 14 x 32: the old fixed values (mc 168,
//   kc 192, so that B's micro-panel sat in L1) ran at 0.84-0.91x oneDNN's speed on QKV and
//   0.87-0.89x on out_proj; a deep slice (kc 768 to 1024) at 0.97-1.07x with the machine quiet,
//   flat in mc from 84 to 308 (README, SGEMM; with the L3 thrashed by a neighbour, QKV stays
//   ahead and out_proj falls to 0.88-0.98x). The L2 streams both operands fast enough; what costs is loading and
//   storing C once per depth slice.
#include "dispatch/cache_info.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>

namespace simdattn::detail {
namespace {

// "48K", "2048K", "32M", "1G" or a plain byte count; 0 when malformed.
std::int64_t parse_size(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::int64_t v = 0;
  std::size_t digits = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i, ++digits) {
    if (v > (std::int64_t{1} << 40)) return 0;
    v = v * 10 + (text[i] - '0');
  }
  if (digits == 0) return 0;
  std::int64_t unit = 1;
  if (i < text.size()) {
    switch (std::toupper(static_cast<unsigned char>(text[i]))) {
      case 'K': unit = std::int64_t{1} << 10; ++i; break;
      case 'M': unit = std::int64_t{1} << 20; ++i; break;
      case 'G': unit = std::int64_t{1} << 30; ++i; break;
      default: break;
    }
  }
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (i != text.size() || v > std::numeric_limits<std::int64_t>::max() / unit) return 0;
  return v * unit;
}

bool read_line(const std::string& path, std::string& out) {
  std::ifstream in(path);
  return static_cast<bool>(std::getline(in, out));
}

std::int64_t sysconf_bytes(int name) {
  const long v = ::sysconf(name);
  return v > 0 ? static_cast<std::int64_t>(v) : 0;
}

}  // namespace

CacheSizes read_sysfs_cache_sizes(const std::string& cpu_dir) {
  CacheSizes c;
  c.source = "sysfs";
  for (int index = 0; index < 16; ++index) {
    const std::string dir = cpu_dir + "/cache/index" + std::to_string(index) + "/";
    std::string level, type, size;
    if (!read_line(dir + "level", level)) break;
    if (!read_line(dir + "type", type) || !read_line(dir + "size", size)) continue;
    if (type != "Data" && type != "Unified") continue;  // skip instruction caches
    const std::int64_t bytes = parse_size(size);
    if (level == "1") c.l1d = bytes;
    else if (level == "2") c.l2 = bytes;
    else if (level == "3") c.l3 = bytes;
  }
  return c;
}

const CacheSizes& host_cache_sizes() {
  static const CacheSizes sizes = [] {
    CacheSizes c = read_sysfs_cache_sizes("/sys/devices/system/cpu/cpu0");
    if (c.l1d == 0 && c.l2 == 0 && c.l3 == 0) {
      c = CacheSizes{};
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
      c.l1d = sysconf_bytes(_SC_LEVEL1_DCACHE_SIZE);
      c.l2 = sysconf_bytes(_SC_LEVEL2_CACHE_SIZE);
      c.l3 = sysconf_bytes(_SC_LEVEL3_CACHE_SIZE);
      if (c.l1d != 0 || c.l2 != 0 || c.l3 != 0) c.source = "sysconf";
#endif
    }
    // A level still unknown gets a common size (512 KiB of L2 gives Zen 3's tuned blocking).
    if (c.l1d == 0) c.l1d = std::int64_t{32} << 10;
    if (c.l2 == 0) c.l2 = std::int64_t{512} << 10;
    if (c.l3 == 0) c.l3 = std::int64_t{8} << 20;
    return c;
  }();
  return sizes;
}

GemmBlocking gemm_blocking_for_l2(int mr, int nr, std::int64_t l2_bytes) {
  constexpr std::int64_t kMinBlockRows = 96, kMinDepth = 128, kMaxDepth = 1024, kDepthStep = 16;
  const std::int64_t mc_floor = (kMinBlockRows + mr - 1) / mr * mr;
  const std::int64_t mc_cap = 4 * mc_floor;
  // Floats of L2 the A block and two B micro-panels may take.
  const std::int64_t budget = std::max<std::int64_t>(l2_bytes, 0) / 4 * 3 / 4;
  GemmBlocking b;
  b.kc = budget / (mc_floor + 2 * nr) / kDepthStep * kDepthStep;
  b.kc = std::clamp(b.kc, kMinDepth, kMaxDepth);
  b.mc = (budget / b.kc - 2 * nr) / mr * mr;
  b.mc = std::clamp(b.mc, mc_floor, mc_cap);
  return b;
}

}  // namespace simdattn::detail
