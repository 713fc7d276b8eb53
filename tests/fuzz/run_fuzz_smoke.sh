#!/usr/bin/env bash
# tests/fuzz/run_fuzz_smoke.sh — builds the libFuzzer targets with clang (a project of their own,
# tests/fuzz/CMakeLists.txt) and runs each named fuzzer for a few seconds, seeded with the test
# corpus. Exits 77 (ctest's skip code) when no clang++ with libFuzzer + ASan + UBSan is available.
#
#   tests/fuzz/run_fuzz_smoke.sh <build dir> [fuzzer...]     (no fuzzer named: run all)
#
# Environment: SIMDATTN_FUZZ_SECONDS (default 10) per fuzzer; SIMDATTN_FUZZ_JOBS (default 2)
# for the build; SIMDATTN_FUZZ_CMAKE_ARGS extra configure arguments; CXX_FUZZ a clang++ to use.
# New inputs that reach new coverage accumulate in <build dir>/corpus/<fuzzer>; a crash leaves
# its input in <build dir>/artifacts/<fuzzer>/ and fails the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:?usage: run_fuzz_smoke.sh <build dir> [fuzzer...]}"
shift
seconds="${SIMDATTN_FUZZ_SECONDS:-10}"
jobs="${SIMDATTN_FUZZ_JOBS:-2}"

skip() { echo "fuzz smoke: SKIPPED: $*"; exit 77; }

cxx=""
for candidate in "${CXX_FUZZ:-}" clang++-14 clang++; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
    cxx="$(command -v "$candidate")"
    break
  fi
done
[ -n "$cxx" ] || skip "no clang++ found (install clang and libclang-rt-14-dev)"
cc="${cxx/clang++/clang}"
command -v "$cc" >/dev/null 2>&1 || cc="$cxx"

# libFuzzer and the sanitizer runtimes ship separately (libclang-rt-*-dev): probe for them.
mkdir -p "$build"
probe="$build/probe"
mkdir -p "$probe"
printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
  'extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }' \
  >"$probe/probe.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" \
    >"$probe/log" 2>&1; then
  skip "$cxx cannot link -fsanitize=fuzzer,address,undefined: $(tail -n 1 "$probe/log")"
fi

echo "fuzz smoke: building with $cxx in $build"
# shellcheck disable=SC2086  # SIMDATTN_FUZZ_CMAKE_ARGS is a list of arguments
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
  ${SIMDATTN_FUZZ_CMAKE_ARGS:-} >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; echo "fuzz smoke: configure failed"; exit 1; }
cmake --build "$build" --parallel "$jobs"

[ -f "$build/fuzzers.txt" ] || { echo "fuzz smoke: $build/fuzzers.txt missing"; exit 1; }
ran=0
while IFS='|' read -r name exe seeds dict; do
  [ -n "$name" ] || continue
  if [ $# -gt 0 ]; then
    wanted=0
    for w in "$@"; do [ "$w" = "$name" ] && wanted=1; done
    [ $wanted -eq 1 ] || continue
  fi
  corpus="$build/corpus/$name"
  artifacts="$build/artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  IFS=',' read -r -a seed_dirs <<<"$seeds"
  args=(-max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10
        -artifact_prefix="$artifacts/")
  [ -n "$dict" ] && args+=(-dict="$dict")
  echo "fuzz smoke: $name for ${seconds}s, seeds: ${seed_dirs[*]}"
  log="$build/$name.log"
  # The first corpus directory receives new inputs; the seed folders in the source tree are
  # only read.
  if ! "$exe" "${args[@]}" "$corpus" "${seed_dirs[@]}" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz smoke: $name FAILED; reproducer(s) in $artifacts/ (run: $exe <file>)"
    exit 1
  fi
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)"
  echo "fuzz smoke: $name OK: ${execs:-?} executions, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files"
  ran=$((ran + 1))
done <"$build/fuzzers.txt"

[ $ran -gt 0 ] || { echo "fuzz smoke: no fuzzer matched: $*"; exit 1; }
