#!/usr/bin/env bash
# tests/cli/run_options.sh — `simdattn run` options beyond the golden cases: training-mode dropout
# is deterministic for a seed, changes with it and is the same on both backends, a rank-2 input gives rank-2 outputs, the
# output may replace an existing file, and --threads is accepted.
# usage: run_options.sh SIMDATTN PYTHON GOLDEN_DIR
set -euo pipefail
simdattn=$1 python=$2 golden=$3
tool="$(dirname "$0")/st_tool.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

causal="$golden/causal_attention_0.safetensors"
"$python" "$tool" split "$causal" "$work/w.safetensors"
base=(run --module causal_attention --input "$causal" --weights "$work/w.safetensors"
      --backend reference)

"$simdattn" "${base[@]}" --output "$work/a.safetensors" --dropout 0.5 --train --seed 7
"$simdattn" "${base[@]}" --output "$work/b.safetensors" --dropout 0.5 --train --seed 7
"$simdattn" "${base[@]}" --output "$work/c.safetensors" --dropout 0.5 --train --seed 8
cmp -s "$work/a.safetensors" "$work/b.safetensors" || { echo "same seed, different output" >&2; exit 1; }
if cmp -s "$work/a.safetensors" "$work/c.safetensors"; then echo "seed ignored" >&2; exit 1; fi
# The dropout mask is a function of the seed and positions only: the fast backend (the default)
# drops the same weights as the reference.
"$simdattn" run --module causal_attention --input "$causal" --weights "$work/w.safetensors" \
  --output "$work/fast.safetensors" --dropout 0.5 --train --seed 7
"$python" "$tool" compare "$work/a.safetensors" "$work/fast.safetensors" 1e-5
# Dropout without --train is inference: the golden y again.
"$simdattn" "${base[@]}" --output "$work/eval.safetensors" --dropout 0.5
"$python" "$tool" compare "$causal" "$work/eval.safetensors" 1e-5

# Rank-2 input (golden simple_0 holds x [6, 3]); the output file already exists.
cp "$work/a.safetensors" "$work/simple.safetensors"
"$simdattn" run --module simple --input "$golden/simple_0.safetensors" \
  --output "$work/simple.safetensors" --backend reference --threads 1
"$python" "$tool" compare "$golden/simple_0.safetensors" "$work/simple.safetensors" 1e-5

# --weight-dtype: the module stores its weights in that type; both backends read the stored
# values, so they agree as closely as in f32, and the result differs from the f32 one.
mha="$golden/mha_1.safetensors"
"$python" "$tool" split "$mha" "$work/mw.safetensors"
heads=$("$python" - "$mha" <<'PY'
import json, struct, sys
with open(sys.argv[1], 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    print(json.loads(f.read(n)).get('__metadata__', {}).get('num_heads', '2'))
PY
)
"$simdattn" run --module mha --num-heads "$heads" --input "$mha" --weights "$work/mw.safetensors" \
  --output "$work/f32.safetensors"
for dt in f16 bf16; do
  for be in reference fast; do
    "$simdattn" run --module mha --num-heads "$heads" --input "$mha" --weights "$work/mw.safetensors" \
      --output "$work/$dt.$be.safetensors" --weight-dtype "$dt" --backend "$be"
  done
  "$python" "$tool" compare "$work/$dt.reference.safetensors" "$work/$dt.fast.safetensors" 1e-5
  if cmp -s "$work/$dt.fast.safetensors" "$work/f32.safetensors"; then echo "$dt ignored" >&2; exit 1; fi
done
set +e
"$simdattn" run --module mha --num-heads "$heads" --input "$mha" --weights "$work/mw.safetensors" \
  --output "$work/bad.safetensors" --weight-dtype q4_1 2>"$work/err"
rc=$?
set -e
[[ $rc == 2 ]] && grep -q -- "--weight-dtype" "$work/err" || { echo "bad --weight-dtype: rc $rc" >&2; cat "$work/err" >&2; exit 1; }

# --kv-dtype: the cache stores K/V in that type; a KV-cache run then stays within the type's
# rounding (f16: 2^-11 relative per value) of the golden y, on both backends.
for be in reference fast; do
  "$simdattn" run --module mha --num-heads "$heads" --input "$mha" --weights "$work/mw.safetensors" \
    --output "$work/kv16.$be.safetensors" --prefill 2 --kv-dtype f16 --backend "$be"
  "$python" "$tool" compare "$mha" "$work/kv16.$be.safetensors" 5e-3
done
set +e
"$simdattn" run --module mha --num-heads "$heads" --input "$mha" --weights "$work/mw.safetensors" \
  --output "$work/bad.safetensors" --kv-dtype f16 2>"$work/err"
rc=$?
set -e
[[ $rc == 2 ]] && grep -q -- "--prefill" "$work/err" || { echo "--kv-dtype without --prefill: rc $rc" >&2; cat "$work/err" >&2; exit 1; }

# --help lists run with its synopsis.
"$simdattn" --help | grep -q -- "run --module" || { echo "run missing from --help" >&2; exit 1; }
echo "run_options: ok"
