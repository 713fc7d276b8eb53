#!/usr/bin/env bash
# tests/cli/decode.sh — `simdattn decode` runs small stacks (random weights and a GPT-2
# checkpoint's layer, both backends, with and without a prompt) and reports sane timings: one
# JSON object with --json, a readable summary without.
# usage: decode.sh SIMDATTN PYTHON GPT2_DATA_DIR
set -euo pipefail
simdattn=$1 python=$2 gpt2=$3
tool="$(dirname "$0")/kv_tool.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

: >"$work/checks"
n=0
run_json() {  # run_json ARGS... — one decode --json run, checked afterwards
  n=$((n + 1))
  "$simdattn" decode "$@" --json >"$work/$n.json"
  echo "decode_json '$work/$n.json'" >>"$work/checks"
}
run_json --prompt-tokens 8 --new-tokens 5 --d-model 32 --heads 4 --layers 3 --batch 2
run_json --prompt-tokens 0 --new-tokens 4 --d-model 24 --heads 3 --backend reference
run_json --prompt-tokens 6 --new-tokens 3 --heads 4 --weights "$gpt2/gpt2_tiny_f32.safetensors" \
         --gpt2-layer 1 --layers 2 --threads 1
run_json --prompt-tokens 3 --new-tokens 2 --heads 4 --weights "$gpt2/gpt2_tiny_half.safetensors" \
         --gpt2-layer 0 --d-model 32 --batch 3
# Many steps through many layers: the normalisation keeps every value finite (checksum).
run_json --prompt-tokens 1 --new-tokens 200 --d-model 16 --heads 2 --layers 24
"$python" "$tool" batch <"$work/checks"

"$simdattn" decode --prompt-tokens 4 --new-tokens 3 --d-model 16 --heads 2 >"$work/text" 2>"$work/err"
grep -q 'prefill  4 token(s)' "$work/text" || { cat "$work/text"; exit 1; }
grep -q 'tokens/s' "$work/text" || { cat "$work/text"; exit 1; }
[[ ! -s $work/err ]] || { echo "unexpected stderr (no terminal, so no progress bar):"; cat "$work/err"; exit 1; }
echo "decode: $n JSON runs and the text summary ok"
