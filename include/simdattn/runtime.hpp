// simdattn/runtime.hpp — instruction-set dispatch and thread-count control (process-wide), and
// the version of the library linked.
#pragma once

#include <string>
#include <vector>

#include "simdattn/export.h"
#include "simdattn/version.h"

namespace simdattn {

/// Instruction sets the fast path has kernels for. `avx2` means AVX2 with FMA3.
enum class Isa { sse2, avx2, avx512, neon };

/// "sse2", "avx2", "avx512", "neon".
SIMDATTN_API const char* isa_name(Isa isa) noexcept;
/// Inverse of isa_name; throws Error(invalid_argument) listing the accepted names.
SIMDATTN_API Isa parse_isa(const std::string& name);

/// ISAs whose kernels were compiled into this build.
SIMDATTN_API std::vector<Isa> compiled_isas();
/// ISAs compiled in *and* supported by this CPU, best first.
SIMDATTN_API std::vector<Isa> usable_isas();
SIMDATTN_API bool isa_usable(Isa isa);

/// The ISA that new dispatches use. Defaults to the best usable one, or to SIMDATTN_ISA when set.
/// Throws Error(unsupported) if SIMDATTN_ISA names an ISA that is not usable here.
SIMDATTN_API Isa active_isa();
/// Force an ISA for the whole process. Throws Error(unsupported) if it is not usable: there is
/// never a silent fallback. Not meant to be called while forwards run on other threads.
SIMDATTN_API void set_isa(Isa isa);

/// Threads used by the library's oneTBB arena. Defaults to SIMDATTN_THREADS when set, else to
/// the machine's concurrency. Values above the machine's concurrency are clamped to it.
SIMDATTN_API int num_threads();
/// n >= 1 sets the count (clamped); n == 0 restores the default. Negative n throws.
SIMDATTN_API void set_num_threads(int n);

/// The data caches of this machine, read once, at first use (bytes; L1d and L2 as one core
/// sees them, L3 the size of the cache cpu0 shares). They come from Linux sysfs, else from
/// sysconf (`source` says which: "sysfs" or "sysconf"), and a level neither gives gets a
/// typical size (32 KiB, 512 KiB, 8 MiB; `source` is "default" when nothing was found).
struct CacheInfo {
  long long l1d_bytes;
  long long l2_bytes;
  long long l3_bytes;
  const char* source;
};
SIMDATTN_API CacheInfo cache_info();

/// The packed GEMM's register tile (mr x nr) and blocking on an ISA: A blocks of mc rows, depth
/// slices of at most kc, task blocks of at most nc columns. mc and kc follow from the L2 size in
/// cache_info(), so they can differ between machines, and with them the order in which a
/// GEMM's depth is summed (never between thread counts or runs). Throws Error(unsupported)
/// if the ISA is not usable here.
struct GemmBlockingInfo {
  int mr;
  int nr;
  long long mc;
  long long kc;
  long long nc;
};
SIMDATTN_API GemmBlockingInfo gemm_blocking(Isa isa);

/// The version of the library actually linked (SIMDATTN_VERSION_* give the headers' version);
/// `string` is "major.minor.patch" and lives for the whole program.
struct Version {
  int major;
  int minor;
  int patch;
  const char* string;
};
SIMDATTN_API Version version() noexcept;

}  // namespace simdattn
