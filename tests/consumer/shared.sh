#!/usr/bin/env bash
# Builds simdattn alone as a shared library (tests, benchmarks and tools off), installs it to a
# prefix other than the configured one, checks that it exports the public API and nothing else,
# and runs the consumers against it (check_install.sh).
#   shared.sh <simdattn source dir> <weights.safetensors for the C program>
set -euo pipefail
src=$1
weights=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DSIMDATTN_BUILD_TESTS=OFF -DSIMDATTN_BUILD_BENCH=OFF -DSIMDATTN_BUILD_TOOLS=OFF \
  -DCMAKE_INSTALL_PREFIX="$work/configured-prefix" >/dev/null
nice -n 10 cmake --build "$work/build" --parallel 2 >/dev/null
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
echo "shared.sh: configured, built and installed in $((SECONDS - start)) s"

lib=$(find "$work/prefix" -name 'libsimdattn.so.*.*.*' -type f | head -n 1)
test -n "$lib" || { echo "shared.sh: no versioned libsimdattn.so.* installed" >&2; exit 1; }
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
echo "shared.sh: $(basename "$lib"), soname $soname"
test -e "$(dirname "$lib")/$soname" && test -e "$(dirname "$lib")/libsimdattn.so"

# Every exported symbol is public API: simdattn:: names outside simdattn::detail (their
# typeinfo and vtables included) or simdattn_* C functions. Nothing of xsimd, oneTBB, the
# standard library's templates or the library's internals.
nm -D --defined-only -C "$lib" | sed -E 's/^[0-9a-fA-F]+ [A-Za-z] //' | sort -u > "$work/exported"
bad=$(sed -E 's/^(typeinfo name for|typeinfo for|vtable for|VTT for|construction vtable for|non-virtual thunk to|virtual thunk to) //' \
        "$work/exported" |
      awk '{
        name = $0; sub(/[(<].*/, "", name)   # the qualified name, without arguments
        if (name ~ /^simdattn_[A-Za-z0-9_]+$/) next
        # KVCache::Storage is declared in a public header but defined only inside the library.
        if (name ~ /^simdattn::/ && name !~ /(^|::)detail::|::Storage::/ && $0 !~ /xsimd::|tbb::/) next
        print
      }')
echo "shared.sh: $(wc -l < "$work/exported") exported symbols, e.g.:"
grep -E '^simdattn(::|_)' "$work/exported" | sed -n '1p;$p' | sed 's/^/  /'
for required in 'simdattn::version()' 'simdattn_version' 'simdattn_mha_forward' 'typeinfo for simdattn::Error'; do
  grep -qxF "$required" "$work/exported" || { echo "shared.sh: '$required' is not exported" >&2; exit 1; }
done
if [ -n "$bad" ]; then
  echo "shared.sh: symbols outside the public API are exported:" >&2
  echo "$bad" | head -n 40 >&2
  exit 1
fi

bash "$here/check_install.sh" "$work/prefix" "$weights"
echo "shared.sh: passed in $((SECONDS - start)) s"
