#!/usr/bin/env bash
# Configure must stop, naming the version, when the xsimd headers are not 8.1.x.
#   xsimd_version_check.sh <simdattn source dir>
set -euo pipefail
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/xsimd/xsimd/config"
echo '// fake' > "$work/xsimd/xsimd/xsimd.hpp"
printf '#define XSIMD_VERSION_MAJOR 9\n#define XSIMD_VERSION_MINOR 0\n#define XSIMD_VERSION_PATCH 1\n' \
  > "$work/xsimd/xsimd/config/xsimd_config.hpp"
if cmake -S "$src" -B "$work/build" -DSIMDATTN_XSIMD_INCLUDE_DIR="$work/xsimd" \
     -DSIMDATTN_BUILD_TESTS=OFF -DSIMDATTN_BUILD_BENCH=OFF -DSIMDATTN_BUILD_TOOLS=OFF \
     > "$work/log" 2>&1; then
  echo "xsimd_version_check: configure accepted xsimd 9.0.1" >&2
  exit 1
fi
grep -q "needs xsimd 8.1.x, found '9.0.1'" "$work/log" || { cat "$work/log" >&2; exit 1; }
grep -A3 'CMake Error' "$work/log" | head -n 4
echo "xsimd_version_check: xsimd 9.0.1 refused"
