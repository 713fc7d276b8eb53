#!/usr/bin/env bash
# tests/cli/run_llama.sh — `simdattn run --module llama` on the Hugging Face-layout checkpoints
# of tests/data/llama (tools/make_llama_data.py: PyTorch's float32 output beside each): every
# case on both backends, as one ragged call (--lengths) and through per-sequence KV caches
# (--prefill/--chunk), with --hf-layer picking the layer; then the flags' clean failures.
# usage: run_llama.sh SIMDATTN PYTHON LLAMA_DATA_DIR
set -euo pipefail
simdattn=$1 python=$2 data=$3
tool="$(dirname "$0")/st_tool.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A "__metadata__" value, from the header only (st_tool.py reads F32 files; these may be F16).
meta() {
  "$python" -c 'import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    print(json.loads(f.read(n))["__metadata__"][sys.argv[2]])' "$1" "$2"
}

count=0
: >"$work/compare"
for ckpt in "$data"/llama_*.safetensors; do
  name=$(basename "$ckpt" .safetensors)
  io="$data/io/$name.safetensors"
  base=(run --module llama --num-heads "$(meta "$ckpt" num_heads)"
        --num-kv-heads "$(meta "$ckpt" num_kv_heads)" --rope "$(meta "$ckpt" rope)"
        --rope-theta "$(meta "$ckpt" rope_theta)" --hf-layer "$(meta "$ckpt" layer)"
        --lengths "$(meta "$ckpt" lengths)" --weights "$ckpt" --input "$io")
  for backend in fast reference; do
    for mode in whole prefill tokens; do
      out="$work/$name.$backend.$mode.safetensors"
      args=("${base[@]}" --output "$out" --backend "$backend")
      case $mode in
        prefill) args+=(--prefill 5 --chunk 3) ;;
        tokens) args+=(--prefill 1) ;;
      esac
      "$simdattn" "${args[@]}"
      echo "compare '$io' '$out' 1e-5" >>"$work/compare"
      count=$((count + 1))
    done
  done
done
"$python" "$tool" batch <"$work/compare"
echo "run_llama: $count runs matched PyTorch"

# Clean failures: each must exit non-zero with a message naming the problem.
ckpt="$data/llama_0.safetensors" io="$data/io/llama_0.safetensors"
fail() {
  local want=$1
  shift
  if "$simdattn" "$@" >"$work/out" 2>&1; then
    echo "expected failure: $*" >&2
    exit 1
  fi
  grep -q -- "$want" "$work/out" || { echo "message lacks '$want': $(cat "$work/out")" >&2; exit 1; }
}
common=(--weights "$ckpt" --input "$io" --output "$work/y.safetensors" --hf-layer 0)
fail "needs --num-heads" run --module llama "${common[@]}"
fail "must divide num_heads" run --module llama --num-heads 4 --num-kv-heads 3 "${common[@]}"
fail "no tensors named" run --module llama --num-heads 4 --weights "$ckpt" --input "$io" \
  --output "$work/y.safetensors" --hf-layer 7
fail "q_proj.weight" run --module llama --num-heads 4 --weights "$ckpt" --input "$io" \
  --output "$work/y.safetensors"
fail "--lengths gives 1 lengths" run --module llama --num-heads 4 "${common[@]}" --lengths 5
fail "is not in \[1, T" run --module llama --num-heads 4 "${common[@]}" --lengths 5,99
fail "comma-separated" run --module llama --num-heads 4 "${common[@]}" --lengths 5,x
fail "--rope: expected" run --module llama --num-heads 4 "${common[@]}" --rope spiral
fail "--hf-layer needs --module llama" run --module mha --num-heads 4 "${common[@]}"
fail "does not apply to module 'mha'" run --module mha --num-heads 4 --num-kv-heads 2 \
  --weights "$ckpt" --input "$io" --output "$work/y.safetensors"
test ! -e "$work/y.safetensors"
echo "run_llama: errors are reported"
