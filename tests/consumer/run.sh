#!/usr/bin/env bash
# Installs the built simdattn into a temporary prefix, then configures and builds this consumer
# project against it with find_package, and runs both programs.
#   run.sh <simdattn build dir> <weights.safetensors for the C program>
set -euo pipefail
build=$1
weights=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$here" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" --parallel 2 >/dev/null
test -f "$work/prefix/lib/pkgconfig/simdattn.pc" || test -f "$work/prefix/lib/x86_64-linux-gnu/pkgconfig/simdattn.pc"
"$work/build/consumer_cpp"
"$work/build/consumer_c" "$weights"
