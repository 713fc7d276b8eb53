// src/dispatch/runtime.cpp — the process-wide ISA choice and thread count (simdattn/runtime.hpp).
// CPU features are detected once; SIMDATTN_ISA and SIMDATTN_THREADS are read once, at first use.
#include "simdattn/runtime.hpp"

#include <oneapi/tbb/info.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common/validate.hpp"
#include "kernels/isa_list.hpp"
#include "simdattn/error.hpp"

namespace simdattn {
namespace {

constexpr Isa kAllIsas[] = {Isa::avx512, Isa::avx2, Isa::sse2, Isa::neon};  // best first

bool isa_compiled(Isa isa) noexcept {
#define SIMDATTN_COMPILED_CASE(ISA, ARCH) \
  if (isa == Isa::ISA) return true;
  SIMDATTN_FOR_EACH_COMPILED_ISA(SIMDATTN_COMPILED_CASE)
#undef SIMDATTN_COMPILED_CASE
  return false;
}

// Why __builtin_cpu_supports and not xsimd::available_architectures(): xsimd 8.1 reads only the
// CPUID feature bits and never checks (XGETBV) that the OS saves the YMM/ZMM state, so under a
// kernel or hypervisor that disables AVX it would report AVX2 usable and the first kernel would
// fault. libgcc's detector checks the OS-enabled state as well.
struct CpuFeatures {
  bool sse2 = false, avx2_fma = false, avx512 = false, neon = false;
  CpuFeatures() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    sse2 = __builtin_cpu_supports("sse2");
    // The avx2 objects are built with -mf16c too (the f16 dequantizer). Every AVX2 CPU has
    // F16C, but libgcc's detector does not report it (GCC 12 answers 0, clang rejects the
    // name), so it is read from CPUID leaf 1 (ECX bit 29); the YMM state check above covers it.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
    avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    // The avx512 TU is compiled with F, CD, DQ, BW and VL: all five must be present.
    avx512 = avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
#elif defined(__aarch64__)
    neon = true;  // Advanced SIMD is mandatory on AArch64.
#endif
  }
};

const CpuFeatures& cpu() noexcept {
  static const CpuFeatures features;
  return features;
}

bool isa_supported_by_cpu(Isa isa) noexcept {
  switch (isa) {
    case Isa::sse2: return cpu().sse2;
    case Isa::avx2: return cpu().avx2_fma;
    case Isa::avx512: return cpu().avx512;
    case Isa::neon: return cpu().neon;
  }
  return false;
}

std::string isa_list(const std::vector<Isa>& isas) {
  std::string s;
  for (Isa i : isas) {
    if (!s.empty()) s += ", ";
    s += isa_name(i);
  }
  return s.empty() ? std::string("none") : s;
}

[[noreturn]] void fail_unusable(const char* who, Isa isa) {
  detail::fail(ErrorCode::unsupported, who, ": ISA '", isa_name(isa), "' is not usable here (",
               isa_compiled(isa) ? "this CPU does not support it" : "not compiled into this build",
               "); usable ISAs: ", isa_list(usable_isas()));
}

// The active ISA, as an int (-1: not chosen). The environment is read exactly once; an invalid
// SIMDATTN_ISA is remembered and reported by every active_isa() until set_isa() overrides it,
// so the error is never swallowed into a silent fallback.
struct IsaState {
  std::atomic<int> active{-1};
  std::once_flag env_once;
  ErrorCode env_code = ErrorCode::invalid_argument;
  std::string env_error;  // non-empty: SIMDATTN_ISA was set and invalid
};

IsaState& isa_state() {
  static IsaState state;
  return state;
}

void read_isa_env(IsaState& st) {
  std::call_once(st.env_once, [&st] {
    const char* env = std::getenv("SIMDATTN_ISA");
    Isa chosen;
    if (env != nullptr && *env != '\0') {
      try {
        chosen = parse_isa(env);
      } catch (const Error& e) {
        st.env_code = e.code();
        st.env_error = std::string("SIMDATTN_ISA: ") + e.what();
        return;
      }
      if (!isa_usable(chosen)) {
        try {
          fail_unusable("SIMDATTN_ISA", chosen);
        } catch (const Error& e) {
          st.env_code = e.code();
          st.env_error = e.what();
          return;
        }
      }
    } else {
      const auto usable = usable_isas();
      if (usable.empty()) {
        st.env_code = ErrorCode::unsupported;
        st.env_error = "simdattn: no kernel ISA is both compiled into this build and supported "
                       "by this CPU (compiled: " + isa_list(compiled_isas()) + ")";
        return;
      }
      chosen = usable.front();
    }
    int expected = -1;  // a set_isa() that raced ahead of the first read wins
    st.active.compare_exchange_strong(expected, static_cast<int>(chosen));
  });
}

int machine_threads() noexcept {
  const int n = tbb::info::default_concurrency();
  return n < 1 ? 1 : n;
}

int clamp_threads(long n) noexcept {
  const int hw = machine_threads();
  return n > hw ? hw : static_cast<int>(n);
}

// The default thread count, from SIMDATTN_THREADS (read once) or the machine's concurrency.
// A malformed SIMDATTN_THREADS is an error, reported by every num_threads() until a
// set_num_threads(n >= 1) overrides it.
struct ThreadState {
  std::once_flag env_once;
  int env_default = 0;     // 0: not set or invalid
  std::string env_error;   // non-empty: SIMDATTN_THREADS was malformed
  std::atomic<int> requested{0};  // 0: use the default
};

ThreadState& thread_state() {
  static ThreadState state;
  return state;
}

void read_threads_env(ThreadState& st) {
  std::call_once(st.env_once, [&st] {
    const char* env = std::getenv("SIMDATTN_THREADS");
    if (env == nullptr || *env == '\0') return;
    errno = 0;
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (errno != 0 || end == env || *end != '\0' || v < 0) {
      st.env_error = std::string("SIMDATTN_THREADS: expected a non-negative integer, got '") +
                     env + "'";
      return;
    }
    st.env_default = v == 0 ? 0 : clamp_threads(v);
  });
}

}  // namespace

const char* isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::sse2: return "sse2";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  for (Isa i : kAllIsas)
    if (name == isa_name(i)) return i;
  detail::fail_arg("parse_isa: unknown ISA '", name, "'; expected one of sse2, avx2, avx512, neon");
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> out;
  for (Isa i : kAllIsas)
    if (isa_compiled(i)) out.push_back(i);
  return out;
}

std::vector<Isa> usable_isas() {
  std::vector<Isa> out;
  for (Isa i : kAllIsas)
    if (isa_usable(i)) out.push_back(i);
  return out;
}

bool isa_usable(Isa isa) { return isa_compiled(isa) && isa_supported_by_cpu(isa); }

Isa active_isa() {
  IsaState& st = isa_state();
  int a = st.active.load(std::memory_order_acquire);
  if (a >= 0) return static_cast<Isa>(a);
  read_isa_env(st);
  a = st.active.load(std::memory_order_acquire);
  if (a >= 0) return static_cast<Isa>(a);
  throw Error(st.env_code, st.env_error);
}

void set_isa(Isa isa) {
  if (!isa_usable(isa)) fail_unusable("set_isa", isa);
  IsaState& st = isa_state();
  read_isa_env(st);  // consume the environment now so it can never overwrite this choice
  st.active.store(static_cast<int>(isa), std::memory_order_release);
}

int num_threads() {
  ThreadState& st = thread_state();
  const int req = st.requested.load(std::memory_order_acquire);
  if (req > 0) return req;
  read_threads_env(st);
  if (!st.env_error.empty()) throw Error(ErrorCode::invalid_argument, st.env_error);
  return st.env_default > 0 ? st.env_default : machine_threads();
}

void set_num_threads(int n) {
  if (n < 0) detail::fail_arg("set_num_threads: n (", n, ") must be >= 0 (0 restores the default)");
  ThreadState& st = thread_state();
  read_threads_env(st);
  st.requested.store(n == 0 ? 0 : clamp_threads(n), std::memory_order_release);
}

}  // namespace simdattn
