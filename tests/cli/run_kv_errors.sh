#!/usr/bin/env bash
# tests/cli/run_kv_errors.sh — bad --prefill / --gpt2-layer uses of `simdattn run` and bad
# `simdattn decode` command lines fail cleanly: non-zero exit, exactly one line on stderr,
# nothing on stdout, nothing in the output folder.
# usage: run_kv_errors.sh SIMDATTN PYTHON GOLDEN_DIR GPT2_DATA_DIR
set -uo pipefail
simdattn=$1 python=$2 golden=$3 gpt2=$4
st="$(dirname "$0")/st_tool.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
outdir="$work/out"
mkdir "$outdir"
out="$outdir/y.safetensors"
failures=0

causal="$golden/causal_attention_0.safetensors"       # x [2, 6, 3], d_out 2, context 6
mha="$golden/mha_0.safetensors"                       # x [2, 6, 3], d_out 2, 2 heads
"$python" "$st" batch <<END
split '$causal' '$work/causal_w.safetensors'
split '$mha' '$work/mha_w.safetensors'
take '$causal' '$work/x.safetensors' x
END
ckpt="$gpt2/gpt2_tiny_f32.safetensors"
gx="$gpt2/gpt2_tiny_f32_expected.safetensors"

check() {  # check NAME ARGS... — the command must fail cleanly
  local name=$1; shift
  "$simdattn" "$@" >"$work/stdout" 2>"$work/stderr"
  local rc=$? lines
  lines=$(wc -l <"$work/stderr")
  local bad=""
  (( rc != 0 )) || bad+=" exit status 0;"
  (( rc < 128 )) || bad+=" crashed (exit $rc);"
  [[ $lines -eq 1 ]] || bad+=" $lines lines on stderr;"
  [[ ! -s $work/stdout ]] || bad+=" output on stdout;"
  [[ -z $(ls -A "$outdir") ]] || bad+=" left $(ls -A "$outdir" | tr '\n' ' ');"
  if [[ -n $bad ]]; then
    echo "FAIL $name:$bad stderr: $(cat "$work/stderr")"
    failures=$((failures + 1))
    rm -rf "${outdir:?}"/*
  else
    echo "ok   $name: $(cat "$work/stderr")"
  fi
}

run_causal=(run --module causal_attention --input "$work/x.safetensors" --output "$out"
            --weights "$work/causal_w.safetensors")
run_gpt2=(run --module mha --num-heads 4 --weights "$ckpt" --input "$gx" --output "$out")

for backend in reference fast; do
  check "prefill-negative-$backend"    "${run_causal[@]}" --backend "$backend" --prefill -1
  check "prefill-over-T-$backend"      "${run_causal[@]}" --backend "$backend" --prefill 7
  check "prefill-huge-$backend"        "${run_causal[@]}" --backend "$backend" --prefill 99999999999999999999
  check "prefill-not-integer-$backend" "${run_causal[@]}" --backend "$backend" --prefill 2.5
  check "prefill-empty-$backend"       "${run_causal[@]}" --backend "$backend" --prefill ''
  check "prefill-no-value-$backend"    "${run_causal[@]}" --backend "$backend" --prefill
  check "prefill-over-context-$backend" "${run_causal[@]}" --backend "$backend" --prefill 2 --context-length 5
done
check prefill-simple            run --module simple --input "$work/x.safetensors" --output "$out" --prefill 1
check prefill-self-attention-v1 run --module self_attention_v1 --input "$work/x.safetensors" --output "$out" \
                                    --weights "$work/causal_w.safetensors" --d-in 3 --d-out 2 --prefill 1
check prefill-self-attention-v2 run --module self_attention_v2 --input "$work/x.safetensors" --output "$out" \
                                    --weights "$work/causal_w.safetensors" --prefill 0
check gpt2-layer-causal         "${run_causal[@]}" --gpt2-layer 0
check gpt2-layer-out-of-range   "${run_gpt2[@]}" --gpt2-layer 2
check gpt2-layer-negative       "${run_gpt2[@]}" --gpt2-layer -1
check gpt2-layer-not-gpt2       run --module mha --num-heads 2 --weights "$work/mha_w.safetensors" \
                                    --input "$work/x.safetensors" --output "$out" --gpt2-layer 0
check gpt2-layer-no-weights     run --module mha --num-heads 4 --input "$gx" --output "$out" --gpt2-layer 0
check gpt2-layer-heads-3        run --module mha --num-heads 3 --weights "$ckpt" --input "$gx" --output "$out" --gpt2-layer 0
check gpt2-layer-wrong-input    run --module mha --num-heads 4 --weights "$ckpt" --input "$work/x.safetensors" \
                                    --output "$out" --gpt2-layer 0

dec=(decode --prompt-tokens 4 --new-tokens 2 --d-model 8 --heads 2)
check decode-no-prompt          decode --new-tokens 2 --d-model 8 --heads 2
check decode-no-new-tokens      decode --prompt-tokens 4 --d-model 8 --heads 2
check decode-zero-new-tokens    decode --prompt-tokens 4 --new-tokens 0 --d-model 8 --heads 2
check decode-negative-prompt    decode --prompt-tokens -1 --new-tokens 2 --d-model 8 --heads 2
check decode-no-heads           decode --prompt-tokens 4 --new-tokens 2 --d-model 8
check decode-no-d-model         decode --prompt-tokens 4 --new-tokens 2 --heads 2
check decode-heads-not-divisor  decode --prompt-tokens 4 --new-tokens 2 --d-model 8 --heads 3
check decode-zero-batch         "${dec[@]}" --batch 0
check decode-zero-layers        "${dec[@]}" --layers 0
check decode-weights-no-layer   decode --prompt-tokens 4 --new-tokens 2 --heads 4 --weights "$ckpt"
check decode-layer-no-weights   "${dec[@]}" --gpt2-layer 0
check decode-d-model-mismatch   decode --prompt-tokens 4 --new-tokens 2 --heads 4 --weights "$ckpt" --gpt2-layer 0 --d-model 16
check decode-layer-out-of-range decode --prompt-tokens 4 --new-tokens 2 --heads 4 --weights "$ckpt" --gpt2-layer 5
check decode-missing-weights    decode --prompt-tokens 4 --new-tokens 2 --heads 4 --weights "$work/nope.safetensors" --gpt2-layer 0
check decode-bad-backend        "${dec[@]}" --backend gpu
check decode-unknown-flag       "${dec[@]}" --bogus
check decode-bad-threads        "${dec[@]}" --threads 0

if (( failures )); then
  echo "run_kv_errors: $failures case(s) failed"
  exit 1
fi
echo "run_kv_errors: all cases failed cleanly"
