#!/usr/bin/env bash
# tests/cli/run_gpt2.sh — `simdattn run --module mha --gpt2-layer N --num-heads 4 --weights
# CHECKPOINT` reproduces GPT-2's attention (tools/make_gpt2_checkpoint.py) for both layers of the
# F32 (`transformer.`-prefixed) and the half-precision checkpoints, on both backends, in one
# forward and with --prefill.
# usage: run_gpt2.sh SIMDATTN PYTHON GPT2_DATA_DIR
set -euo pipefail
simdattn=$1 python=$2 data=$3
tool="$(dirname "$0")/kv_tool.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count=0
: >"$work/compare"
for ckpt in f32 half; do
  for layer in 0 1; do
    for backend in fast reference; do
      for prefill in none 5; do
        out="$work/$ckpt.$layer.$backend.$prefill.safetensors"
        args=(run --module mha --gpt2-layer "$layer" --num-heads 4
              --weights "$data/gpt2_tiny_$ckpt.safetensors"
              --input "$data/gpt2_tiny_${ckpt}_expected.safetensors" --output "$out"
              --backend "$backend")
        [[ $prefill == none ]] || args+=(--prefill "$prefill")
        "$simdattn" "${args[@]}"
        echo "compare_y '$data/gpt2_tiny_${ckpt}_expected.safetensors' '$out' 1e-5 y_layer$layer" \
          >>"$work/compare"
        count=$((count + 1))
      done
    done
  done
done
"$python" "$tool" batch <"$work/compare"
echo "run_gpt2: $count runs reproduced GPT-2's attention"
