#!/usr/bin/env bash
# tests/cli/run_golden.sh — `simdattn run` reproduces every golden case (PyTorch's y and
# attn_weights within rel 1e-5), with the dimensions inferred from the weights where they can be.
# usage: run_golden.sh SIMDATTN PYTHON GOLDEN_DIR BACKEND
set -euo pipefail
simdattn=$1 python=$2 golden=$3 backend=$4
tool="$(dirname "$0")/st_tool.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One interpreter start to split out the weights, one to compare everything: Python's start-up
# (slow behind version-manager shims) would otherwise dominate the test.
"$python" "$tool" cases "$golden" "$work" >"$work/cases"
count=0
: >"$work/compare"
while read -r name module heads context; do
  args=(run --module "$module" --input "$golden/$name.safetensors"
        --output "$work/$name.out.safetensors" --backend "$backend")
  [[ $module == simple ]] || args+=(--weights "$work/$name.weights.safetensors")
  [[ $module != mha ]] || args+=(--num-heads "$heads")
  # Odd-numbered causal cases pass the context length; even ones let it default to T.
  if [[ $module == causal_attention || $module == mha* ]] && (( ${name##*_} % 2 == 1 )); then
    args+=(--context-length "$context")
  fi
  "$simdattn" "${args[@]}"
  echo "compare '$golden/$name.safetensors' '$work/$name.out.safetensors' 1e-5" >>"$work/compare"
  count=$((count + 1))
done <"$work/cases"
"$python" "$tool" batch <"$work/compare"
(( count >= 6 )) || { echo "only $count golden files in $golden" >&2; exit 1; }
echo "run_golden: $count cases reproduced on the $backend backend"
