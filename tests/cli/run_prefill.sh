#!/usr/bin/env bash
# tests/cli/run_prefill.sh — `simdattn run --prefill P` (the first P tokens through a KV cache,
# then one token at a time) writes the golden y of every causal golden case, for P = 0 (every
# token decoded alone), 1, T/2 and T (one prefill), within rel 1e-5 like the full forward.
# usage: run_prefill.sh SIMDATTN PYTHON GOLDEN_DIR BACKEND
set -euo pipefail
simdattn=$1 python=$2 golden=$3 backend=$4
tool="$(dirname "$0")/kv_tool.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" "$tool" causal_cases "$golden" "$work" >"$work/cases"
count=0
: >"$work/compare"
while read -r name module heads context tokens; do
  for prefill in $(printf "%s\n" 0 1 $((tokens / 2)) "$tokens" | sort -un); do
    out="$work/$name.p$prefill.safetensors"
    args=(run --module "$module" --input "$golden/$name.safetensors" --output "$out"
          --weights "$work/$name.weights.safetensors" --backend "$backend" --prefill "$prefill"
          --context-length "$context")
    [[ $module != mha ]] || args+=(--num-heads "$heads")
    "$simdattn" "${args[@]}"
    echo "compare_y '$golden/$name.safetensors' '$out' 1e-5" >>"$work/compare"
    count=$((count + 1))
  done
done <"$work/cases"
"$python" "$tool" batch <"$work/compare"
(( count >= 12 )) || { echo "only $count prefill runs from $golden" >&2; exit 1; }
echo "run_prefill: $count runs reproduced the golden y on the $backend backend"
