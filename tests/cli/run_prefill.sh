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

# Training mode: the dropout mask is a function of (seed, batch, head, query, key) positions, so
# a prompt + token-by-token run drops exactly what the full forward drops.
read -r name module heads context tokens < <(grep ' mha ' "$work/cases" | head -1)
train=(--module mha --num-heads "$heads" --input "$golden/$name.safetensors"
       --weights "$work/$name.weights.safetensors" --backend "$backend" --dropout 0.5 --train --seed 9)
"$simdattn" run "${train[@]}" --output "$work/train_full.safetensors"
"$simdattn" run "${train[@]}" --output "$work/train_p2.safetensors" --prefill 2
echo "compare_y '$work/train_full.safetensors' '$work/train_p2.safetensors' 1e-5" >>"$work/compare"
"$python" "$tool" batch <"$work/compare"
(( count >= 12 )) || { echo "only $count prefill runs from $golden" >&2; exit 1; }
echo "run_prefill: $count runs reproduced the golden y on the $backend backend"
