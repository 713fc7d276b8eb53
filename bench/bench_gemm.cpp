// bench/bench_gemm.cpp — SGEMM on GPT-2-small attention shapes: ours (weights prepacked, per
// usable ISA) next to OpenBLAS cblas_sgemm and oneDNN dnnl_sgemm on the same inputs and thread
// count, and the machine's one-thread FMA peak measured in the same run.
//
// Shapes (x [M, K] times an nn.Linear weight [N, K] transposed, so trans_b = yes everywhere):
//   qkv       M = 8192 (8 x 1024 tokens), N = 2304 (3 x 768), K = 768
//   out_proj  M = 8192, N = 768, K = 768
//   cube      1024^3
//   decode    M = 1, N = 2304, K = 768: one token, a GEMV against a 7 MiB weight. It is
//             memory-bound, and a single weight would sit in the 32 MiB L3 between iterations,
//             so the decode benchmarks rotate through enough copies (>= 96 MiB) that every
//             iteration streams its weight from DRAM, as a real model's layers do.
// No bias in any of them (the peers have no fused bias); alpha = 1, beta = 0.
//
// Run, e.g.: simdattn_bench --benchmark_filter=Gemm --benchmark_repetitions=5
//            --benchmark_report_aggregates_only=true   (then compare medians: the machine is
//            shared, and only side-by-side numbers from one run are comparable).
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <oneapi/tbb/info.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "simdattn/gemm.hpp"
#include "simdattn/runtime.hpp"

#if defined(SIMDATTN_BENCH_OPENBLAS)
#include <cblas.h>
#endif
#if defined(SIMDATTN_BENCH_DNNL)
#include <oneapi/dnnl/dnnl.h>
#endif

#if defined(__x86_64__)
// bench/peak_fma_avx2.cpp, compiled with -mavx2 -mfma: `iterations` x 12 independent ymm FMAs.
float simdattn_bench_peak_fma_avx2(long long iterations);
// bench/peak_fma_avx512.cpp, compiled with -mavx512f: `iterations` x 16 independent zmm FMAs.
float simdattn_bench_peak_fma_avx512(long long iterations);
#endif

namespace {

struct Shape {
  const char* name;
  std::int64_t m, n, k;
};
constexpr Shape kShapes[] = {{"qkv", 8192, 2304, 768},
                             {"out_proj", 8192, 768, 768},
                             {"cube", 1024, 1024, 1024},
                             {"decode", 1, 2304, 768}};

// Inputs shared by every benchmark of a shape (built once, lazily).
struct Inputs {
  std::vector<float> a;                 // [M, K]
  std::vector<std::vector<float>> w;    // rotation of [N, K] weights
  std::vector<float> c;                 // [M, N]
};

std::size_t rotation(const Shape& s) {
  if (s.m > 8) return 1;  // compute-bound shapes re-read the weight from cache anyway
  const double bytes = double(s.n) * double(s.k) * sizeof(float);
  return static_cast<std::size_t>(std::max(1.0, std::ceil(96.0 * (1 << 20) / bytes)));
}

// Keyed by name: RegisterBenchmark copies its arguments, so a Shape's address is not its id.
Inputs& inputs(const Shape& s) {
  static std::vector<std::unique_ptr<Inputs>> cache(std::size(kShapes));
  std::size_t idx = 0;
  while (std::string(kShapes[idx].name) != s.name) ++idx;
  if (!cache[idx]) {
    auto in = std::make_unique<Inputs>();
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    in->a.resize(static_cast<std::size_t>(s.m * s.k));
    for (float& x : in->a) x = d(rng);
    in->w.resize(rotation(s));
    for (auto& w : in->w) {
      w.resize(static_cast<std::size_t>(s.n * s.k));
      for (float& x : w) x = d(rng);
    }
    in->c.assign(static_cast<std::size_t>(s.m * s.n), 0.0f);
    cache[idx] = std::move(in);
  }
  return *cache[idx];
}

// weight_B/s: the bytes of weight one product reads (f32 n x k unless the caller stores them in
// another type), per second, in decimal units like every GB/s in the README.
void set_counters(benchmark::State& state, const Shape& s, const std::string& label,
                  double weight_bytes = 0.0) {
  if (weight_bytes <= 0.0) weight_bytes = double(s.n) * double(s.k) * sizeof(float);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * double(s.m) * double(s.n) * double(s.k),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.counters["weight_B/s"] = benchmark::Counter(
      weight_bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(label);
}

// Ours: weights prepacked outside the timed loop (modules pack once at construction).
void BM_GemmOurs(benchmark::State& state, const Shape& s, simdattn::Isa isa) {
  const int threads = static_cast<int>(state.range(0));
  simdattn::set_isa(isa);
  simdattn::set_num_threads(threads);
  Inputs& in = inputs(s);
  std::vector<simdattn::PackedMatrix> packed;
  for (const auto& w : in.w)
    packed.emplace_back(w.data(), s.k, simdattn::Transpose::yes, s.k, s.n);
  std::size_t r = 0;
  for (auto _ : state) {
    simdattn::sgemm_packed(s.m, 1.0f, in.a.data(), s.k, packed[r], 0.0f, in.c.data(), s.n);
    benchmark::DoNotOptimize(in.c.data());
    benchmark::ClobberMemory();
    r = r + 1 == packed.size() ? 0 : r + 1;
  }
  set_counters(state, s,
               std::string("simdattn isa=") + simdattn::isa_name(isa) +
                   " threads=" + std::to_string(simdattn::num_threads()));
  simdattn::set_num_threads(0);
}

// Ours on weights stored as f16, bf16 or q8_0 (PackedMatrix's storage type), one ISA. The
// decode shape rotates through >= 96 MiB of *stored* weights, so every iteration streams its
// weight from DRAM in its own type; `weight_bytes` is what one product reads of it.
void BM_GemmOursStored(benchmark::State& state, const Shape& s, simdattn::Isa isa,
                       simdattn::DType type) {
  const int threads = static_cast<int>(state.range(0));
  simdattn::set_isa(isa);
  simdattn::set_num_threads(threads);
  Inputs& in = inputs(s);
  std::vector<simdattn::PackedMatrix> packed;
  packed.emplace_back(in.w[0].data(), s.k, simdattn::Transpose::yes, s.k, s.n, type);
  const double bytes = static_cast<double>(packed[0].resident_bytes());
  const std::size_t copies =
      s.m > 8 ? 1 : static_cast<std::size_t>(std::max(1.0, std::ceil(96.0 * (1 << 20) / bytes)));
  while (packed.size() < copies)
    packed.emplace_back(in.w[packed.size() % in.w.size()].data(), s.k, simdattn::Transpose::yes,
                        s.k, s.n, type);
  std::size_t r = 0;
  for (auto _ : state) {
    simdattn::sgemm_packed(s.m, 1.0f, in.a.data(), s.k, packed[r], 0.0f, in.c.data(), s.n);
    benchmark::DoNotOptimize(in.c.data());
    benchmark::ClobberMemory();
    r = r + 1 == packed.size() ? 0 : r + 1;
  }
  set_counters(state, s,
               std::string("simdattn isa=") + simdattn::isa_name(isa) + " weights=" +
                   simdattn::dtype_name(type) + " threads=" + std::to_string(simdattn::num_threads()),
               bytes);
  state.counters["weight_bytes"] = bytes;
  simdattn::set_num_threads(0);
}

// Ours without prepacking (public sgemm, B packed on every call), active ISA.
void BM_GemmOursUnpacked(benchmark::State& state, const Shape& s) {
  const int threads = static_cast<int>(state.range(0));
  simdattn::set_isa(simdattn::usable_isas().front());
  simdattn::set_num_threads(threads);
  Inputs& in = inputs(s);
  std::size_t r = 0;
  for (auto _ : state) {
    simdattn::sgemm(simdattn::Transpose::yes, s.m, s.n, s.k, 1.0f, in.a.data(), s.k,
                    in.w[r].data(), s.k, 0.0f, in.c.data(), s.n);
    benchmark::DoNotOptimize(in.c.data());
    benchmark::ClobberMemory();
    r = r + 1 == in.w.size() ? 0 : r + 1;
  }
  set_counters(state, s,
               std::string("simdattn sgemm (packs B per call) isa=") +
                   simdattn::isa_name(simdattn::active_isa()) +
                   " threads=" + std::to_string(simdattn::num_threads()));
  simdattn::set_num_threads(0);
}

#if defined(SIMDATTN_BENCH_OPENBLAS)
void BM_GemmOpenBlas(benchmark::State& state, const Shape& s) {
  const int threads = static_cast<int>(state.range(0));
  openblas_set_num_threads(threads);
  Inputs& in = inputs(s);
  std::size_t r = 0;
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(s.m),
                static_cast<int>(s.n), static_cast<int>(s.k), 1.0f, in.a.data(),
                static_cast<int>(s.k), in.w[r].data(), static_cast<int>(s.k), 0.0f, in.c.data(),
                static_cast<int>(s.n));
    benchmark::DoNotOptimize(in.c.data());
    benchmark::ClobberMemory();
    r = r + 1 == in.w.size() ? 0 : r + 1;
  }
  set_counters(state, s,
               std::string("openblas core=") + openblas_get_corename() +
                   " threads=" + std::to_string(openblas_get_num_threads()));
}
#endif

#if defined(SIMDATTN_BENCH_DNNL)
// oneDNN 2.6 from Debian runs on OpenMP; its thread count is OpenMP's. Looked up at run time so
// the bench need not link libgomp itself.
void set_omp_threads(int threads) {
  using Fn = void (*)(int);
  static const Fn fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (fn != nullptr) fn(threads);
}

void BM_GemmOneDnn(benchmark::State& state, const Shape& s) {
  const int threads = static_cast<int>(state.range(0));
  set_omp_threads(threads);
  Inputs& in = inputs(s);
  std::size_t r = 0;
  for (auto _ : state) {
    const dnnl_status_t st = dnnl_sgemm('N', 'T', s.m, s.n, s.k, 1.0f, in.a.data(), s.k,
                                        in.w[r].data(), s.k, 0.0f, in.c.data(), s.n);
    if (st != dnnl_success) {
      state.SkipWithError("dnnl_sgemm failed");
      break;
    }
    benchmark::DoNotOptimize(in.c.data());
    benchmark::ClobberMemory();
    r = r + 1 == in.w.size() ? 0 : r + 1;
  }
  set_counters(state, s, "onednn dnnl_sgemm threads=" + std::to_string(threads));
}
#endif

#if defined(__x86_64__)
// The one-thread FMA peak of this machine (lanes x 2 FLOPs x FMA pipes x clock, at the vector
// width of AVX2 or AVX-512): the ceiling the microkernel of that ISA is judged against,
// measured in the same run because the clock of a shared VM drifts.
struct PeakLoop {
  float (*fn)(long long);
  int chains, lanes;
  const char* label;
};
constexpr PeakLoop kPeakAvx2{&simdattn_bench_peak_fma_avx2, 12, 8,
                             "12 independent ymm FMA chains, 1 thread"};
constexpr PeakLoop kPeakAvx512{&simdattn_bench_peak_fma_avx512, 16, 16,
                               "16 independent zmm FMA chains, 1 thread"};

void BM_GemmPeakFmaOneThread(benchmark::State& state, PeakLoop loop) {
  constexpr long long kIters = 1 << 22;
  for (auto _ : state) benchmark::DoNotOptimize(loop.fn(kIters));
  state.counters["FLOP/s"] = benchmark::Counter(double(kIters) * loop.chains * loop.lanes * 2,
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.SetLabel(loop.label);
}
#endif

int register_all() {
  const int hw = tbb::info::default_concurrency();
  std::vector<int> thread_counts{1};
  if (hw > 1) thread_counts.push_back(hw);
  const auto configure = [&](benchmark::internal::Benchmark* b) {
    b->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
    for (int t : thread_counts) b->Arg(t);
  };
#if defined(__x86_64__)
  if (simdattn::isa_usable(simdattn::Isa::avx2))
    benchmark::RegisterBenchmark("Gemm/peak_fma_avx2", BM_GemmPeakFmaOneThread, kPeakAvx2)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  if (simdattn::isa_usable(simdattn::Isa::avx512))
    benchmark::RegisterBenchmark("Gemm/peak_fma_avx512", BM_GemmPeakFmaOneThread, kPeakAvx512)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
#endif
  // Shape-major, so each shape's contenders run back to back (drift hits them alike).
  for (const Shape& s : kShapes) {
    const std::string shape = std::string("Gemm/") + s.name + "/";
    for (simdattn::Isa isa : simdattn::usable_isas())
      configure(benchmark::RegisterBenchmark((shape + "simdattn_" + simdattn::isa_name(isa)).c_str(),
                                             BM_GemmOurs, s, isa));
    // Stored weights on the best ISA, beside its f32 run.
    for (simdattn::DType type : {simdattn::DType::f16, simdattn::DType::bf16, simdattn::DType::q8_0,
                                 simdattn::DType::q4_0}) {
      const simdattn::Isa best = simdattn::usable_isas().front();
      configure(benchmark::RegisterBenchmark(
          (shape + "simdattn_" + simdattn::isa_name(best) + "_" + simdattn::dtype_name(type)).c_str(),
          BM_GemmOursStored, s, best, type));
    }
    if (s.m > 8)
      configure(benchmark::RegisterBenchmark((shape + "simdattn_unpacked").c_str(),
                                             BM_GemmOursUnpacked, s));
#if defined(SIMDATTN_BENCH_OPENBLAS)
    configure(benchmark::RegisterBenchmark((shape + "openblas").c_str(), BM_GemmOpenBlas, s));
#endif
#if defined(SIMDATTN_BENCH_DNNL)
    configure(benchmark::RegisterBenchmark((shape + "onednn").c_str(), BM_GemmOneDnn, s));
#endif
  }

  std::string usable;
  for (simdattn::Isa isa : simdattn::usable_isas()) usable += std::string(simdattn::isa_name(isa)) + " ";
  benchmark::AddCustomContext("simdattn_usable_isas", usable);
  benchmark::AddCustomContext("simdattn_default_threads", std::to_string(simdattn::num_threads()));
  benchmark::AddCustomContext("tbb_default_concurrency", std::to_string(hw));
#if defined(SIMDATTN_BENCH_OPENBLAS)
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype ? coretype : "(unset)");
  benchmark::AddCustomContext("openblas_corename", openblas_get_corename());
  benchmark::AddCustomContext("openblas_config", openblas_get_config());
#endif
#if defined(SIMDATTN_BENCH_DNNL)
  const dnnl_version_t* v = dnnl_version();
  benchmark::AddCustomContext("onednn_version", std::to_string(v->major) + "." +
                                                    std::to_string(v->minor) + "." +
                                                    std::to_string(v->patch) + " cpu_runtime=" +
                                                    std::to_string(v->cpu_runtime));
#endif
  return 0;
}
const int kRegistered = register_all();

}  // namespace

// The suite's main, weak so that whichever bench/ file's main the linker keeps, it is this one.
__attribute__((weak)) int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
