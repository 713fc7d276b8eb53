#!/usr/bin/env bash
# tools/run-isa-tests.sh — builds what one ISA needs and runs the unit suite for it: that ISA's
# parameterised cases plus the rest of the suite with that ISA forced as the default.
#
#   tools/run-isa-tests.sh ISA [extra gtest arguments]      ISA: sse2 | avx2 | avx512 | neon
#
#   sse2, avx2  native Release build (preset `release`), run natively
#   neon        cross build (preset `aarch64`, cmake/toolchains/aarch64-linux-gnu.cmake), run
#               under qemu-aarch64 user mode (which does not model Arm's weaker memory order)
#   avx512      native Release build, run natively when this CPU has AVX-512 F/CD/DQ/BW/VL,
#               else (or with RUN_ISA_TESTS_EMULATE=1) by tools/avx512-bochs.sh <simdattn_tests>
#               <gtest args> on an emulated Skylake-X
#
# One run of simdattn_tests with SIMDATTN_ISA=ISA (the default for every non-parameterised
# test) and SIMDATTN_REQUIRE_ISAS=ISA (a skipped case of ISA fails: tests/support/
# required_isas.hpp), filtering out the cases parameterised over the other ISAs. Tests that loop
# over every usable ISA themselves (ISA-by-ISA checks inside one test) still do so. The last line
# is exactly `ISA <isa>: N passed, M failed`; the exit status is non-zero on any failure, a crash,
# a timeout, or when nothing ran. Environment: JOBS (build parallelism, default 2),
# RUN_ISA_TESTS_TIMEOUT (seconds for the test run, default 3600), RUN_ISA_TESTS_EMULATE (1: run
# avx512 under bochs even on an AVX-512 CPU).
set -uo pipefail

usage() { echo "usage: $0 sse2|avx2|avx512|neon [gtest arguments]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
isa=$1; shift
case $isa in sse2|avx2|avx512|neon) ;; *) usage ;; esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
jobs=${JOBS:-2}
limit=${RUN_ISA_TESTS_TIMEOUT:-3600}
die() { echo "run-isa-tests: $*" >&2; echo "ISA $isa: 0 passed, 1 failed"; exit 1; }

if [[ $isa == neon ]]; then
  preset=aarch64
  for tool in aarch64-linux-gnu-g++ qemu-aarch64-static; do
    command -v "$tool" >/dev/null ||
      die "$tool not found; on Debian 12: apt-get install g++-aarch64-linux-gnu qemu-user-static, then dpkg --add-architecture arm64 && apt-get update && apt-get install libtbb-dev:arm64 libgtest-dev:arm64"
  done
  [[ -e /usr/lib/aarch64-linux-gnu/libtbb.so ]] ||
    die "arm64 oneTBB not found; dpkg --add-architecture arm64 && apt-get update && apt-get install libtbb-dev:arm64 libgtest-dev:arm64"
  [[ -e /lib/ld-linux-aarch64.so.1 ]] ||
    die "/lib/ld-linux-aarch64.so.1 not found; apt-get install libc6:arm64"
  # No -L: the loader and libc must both be libc6:arm64's (see the toolchain file).
  runner=(qemu-aarch64-static)
else
  preset=release
  runner=()
  native_avx512=1
  for flag in avx512f avx512cd avx512dq avx512bw avx512vl; do
    grep -qw "$flag" /proc/cpuinfo 2>/dev/null || native_avx512=0
  done
  if [[ $isa == avx512 && $native_avx512 == 1 && ${RUN_ISA_TESTS_EMULATE:-0} != 1 ]]; then
    echo "run-isa-tests: this CPU has AVX-512: running natively (RUN_ISA_TESTS_EMULATE=1 for bochs)" >&2
  elif [[ $isa == avx512 ]]; then
    bochs=$root/tools/avx512-bochs.sh
    [[ -x $bochs ]] ||
      die "tools/avx512-bochs.sh not found or not executable: it runs the AVX-512 tests under an emulator (usage: tools/avx512-bochs.sh <simdattn_tests> <gtest args>); on a machine with AVX-512, run build/release/tests/simdattn_tests with SIMDATTN_ISA=avx512 SIMDATTN_REQUIRE_ISAS=avx512 instead"
    runner=("$bochs")
  fi
fi

build=$root/build/$preset
bin=$build/tests/simdattn_tests
echo "run-isa-tests: building $bin (preset $preset)" >&2
start=$SECONDS
if [[ ! -f $build/CMakeCache.txt ]]; then
  nice -n 10 cmake --preset "$preset" >&2 || die "cmake --preset $preset failed"
fi
nice -n 10 cmake --build --preset "$preset" --target simdattn_tests --parallel "$jobs" >&2 ||
  die "build failed"
echo "run-isa-tests: build took $((SECONDS - start)) s" >&2

# Cases parameterised over another ISA end in /<isa>, /<isa>_1thread or /fast_<isa>_Nthreads.
filter=""
user_filter=0
for arg in "$@"; do [[ $arg == --gtest_filter=* ]] && user_filter=1; done
if [[ $user_filter == 0 ]]; then
  neg=()
  for other in sse2 avx2 avx512 neon; do
    [[ $other == "$isa" ]] && continue
    neg+=("*/$other" "*/${other}_*" "*/*_${other}_*")
  done
  filter="--gtest_filter=-$(IFS=:; echo "${neg[*]}")"
fi

log=$(mktemp "${TMPDIR:-/tmp}/run-isa-tests-$isa.XXXXXX")
trap 'rm -f "$log"' EXIT
echo "run-isa-tests: SIMDATTN_ISA=$isa SIMDATTN_REQUIRE_ISAS=$isa${SIMDATTN_THREADS:+ SIMDATTN_THREADS=$SIMDATTN_THREADS} ${runner[*]} $bin $filter $*" >&2
start=$SECONDS
SIMDATTN_ISA=$isa SIMDATTN_REQUIRE_ISAS=$isa timeout "$limit" \
  "${runner[@]}" "$bin" ${filter:+"$filter"} "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo "run-isa-tests: test run took $((SECONDS - start)) s, exit status $rc" >&2

# Count gtest's tests: its summary when it got that far, else the per-test result lines (a crash
# or a timeout also counts the test that was running as failed).
passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}\.$/\1/p' "$log" | tail -1)
failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\{0,1\}, listed below:$/\1/p' "$log" | tail -1)
skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\}, listed below:$/\1/p' "$log" | tail -1)
if [[ -z $passed ]]; then
  passed=$(grep -c '^\[       OK \]' "$log")
  failed=$(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$log")
  runs=$(grep -c '^\[ RUN      \]' "$log")
  ends=$(grep -cE '^\[ +(OK|FAILED|SKIPPED) +\] .* \([0-9]+ ms\)$' "$log")
  failed=$((failed + runs - ends))
  [[ $rc == 124 ]] && echo "run-isa-tests: timed out after $limit s" >&2
  echo "run-isa-tests: the test program ended without its summary (exit status $rc)" >&2
fi
failed=${failed:-0}
skipped=${skipped:-0}
if [[ $rc != 0 && $failed == 0 ]]; then
  echo "run-isa-tests: the test program failed outside any test (exit status $rc), e.g. a skipped $isa case at exit; counted as one failure" >&2
  failed=1
fi
echo "run-isa-tests: $skipped skipped (not for $isa: a required ISA's case never skips)" >&2
[[ $passed == 0 && $failed == 0 ]] && { echo "run-isa-tests: no test ran" >&2; failed=1; }
echo "ISA $isa: $passed passed, $failed failed"
[[ $failed == 0 && $rc == 0 ]]
