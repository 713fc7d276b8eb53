#!/usr/bin/env bash
# Installs the built simdattn into a temporary prefix that is not the one it was configured
# with, moves that install elsewhere (packages are relocatable), and checks it with
# check_install.sh: find_package and pkg-config consumers, built and run.
#   run.sh <simdattn build dir> <weights.safetensors for the C program>
set -euo pipefail
build=$1
weights=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
configured=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$build/CMakeCache.txt")
cmake --install "$build" --prefix "$work/staged" >/dev/null
mkdir -p "$work/moved"
mv "$work/staged" "$work/moved/prefix"
prefix="$work/moved/prefix"
if [ "$(realpath -m "$configured")" = "$(realpath "$prefix")" ]; then
  echo "run.sh: the test prefix must differ from the configured one ($configured)" >&2
  exit 1
fi
echo "run.sh: configured for $configured, installed to $work/staged, moved to $prefix"
bash "$here/check_install.sh" "$prefix" "$weights"
