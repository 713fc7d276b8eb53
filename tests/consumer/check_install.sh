#!/usr/bin/env bash
# Checks an installed simdattn: builds this consumer project against it with find_package and
# the C program with nothing but the pkg-config flags, and runs all three.
#   check_install.sh <install prefix> <weights.safetensors for the C program>
set -euo pipefail
prefix=$1
weights=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pc=$(find "$prefix" -name simdattn.pc -path '*/pkgconfig/*' | head -n 1)
test -n "$pc" || { echo "check_install: no simdattn.pc under $prefix" >&2; exit 1; }
pcdir=$(dirname "$pc")
# Relocatable: the prefix is found from the .pc file's folder, and resolves to this install.
grep -qx 'prefix=${pcfiledir}/.*' "$pc" || { echo "check_install: $pc: prefix is not relative to \${pcfiledir}:" >&2; head -n 3 "$pc" >&2; exit 1; }
pc_prefix=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=prefix simdattn)
if [ "$(realpath "$pc_prefix")" != "$(realpath "$prefix")" ]; then
  echo "check_install: pkg-config prefix $pc_prefix is not the install prefix $prefix" >&2
  exit 1
fi

cmake -S "$here" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/build" --parallel 2 >/dev/null
"$work/build/consumer_cpp"
"$work/build/consumer_c" "$weights"

# A C program built with the pkg-config flags alone (a shared libsimdattn is found at run time
# through LD_LIBRARY_PATH: pkg-config gives no rpath).
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs simdattn)
libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir simdattn)
echo "check_install: cc consumer.c $flags"
# shellcheck disable=SC2086
${CC:-cc} "$here/consumer.c" $flags -o "$work/consumer_c_pkgconfig"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/consumer_c_pkgconfig" "$weights" |
  sed 's/^consumer_c:/consumer_c (pkg-config):/'
