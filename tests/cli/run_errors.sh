#!/usr/bin/env bash
# tests/cli/run_errors.sh — every bad command line or input makes `simdattn run` exit non-zero
# with exactly one line on stderr, nothing on stdout, and nothing at all in the output folder
# (no output file, no temporary left over).
# usage: run_errors.sh SIMDATTN PYTHON GOLDEN_DIR
set -uo pipefail
simdattn=$1 python=$2 golden=$3
tool="$(dirname "$0")/st_tool.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
outdir="$work/out"
mkdir "$outdir"
out="$outdir/y.safetensors"
failures=0

# Inputs: x [2, 6, 3] and the weights of a causal case, plus broken variants.
causal="$golden/causal_attention_0.safetensors"       # x [2, 6, 3], d_out 2, context 6
mha="$golden/mha_0.safetensors"                       # x [2, 6, 3], d_out 2, 2 heads
"$python" "$tool" batch <<END
split '$causal' '$work/causal_w.safetensors'
split '$mha' '$work/mha_w.safetensors'
take '$causal' '$work/x.safetensors' x
rand '$work/x_rank1.safetensors' x 3
rand '$work/x_rank4.safetensors' x 1 2 6 3
rand '$work/x_d4.safetensors' x 2 6 4
rand '$work/no_x.safetensors' z 2 6 3
rand '$work/x_empty.safetensors' x 2 0 3
take '$causal' '$work/extra_w.safetensors' W_query.weight W_key.weight W_value.weight y
take '$causal' '$work/missing_w.safetensors' W_query.weight W_key.weight
END
# extra_w holds a key load_state_dict() must reject; missing_w lacks W_value.weight.
printf 'this is not a safetensors file' > "$work/garbage.safetensors"
head -c 100 "$causal" > "$work/truncated.safetensors"
: > "$work/empty.safetensors"

check() {  # check NAME ARGS... — the run must fail cleanly
  local name=$1; shift
  "$simdattn" run "$@" >"$work/stdout" 2>"$work/stderr"
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

ok_args=(--input "$work/x.safetensors" --output "$out" --backend reference)
cw=(--weights "$work/causal_w.safetensors")

check unknown-flag            --module causal_attention "${ok_args[@]}" "${cw[@]}" --bogus
check stray-argument          --module causal_attention "${ok_args[@]}" "${cw[@]}" stray
check missing-module          "${ok_args[@]}" "${cw[@]}"
check missing-input           --module causal_attention --output "$out" "${cw[@]}"
check missing-output          --module causal_attention --input "$work/x.safetensors" "${cw[@]}"
check unknown-module          --module transformer "${ok_args[@]}" "${cw[@]}"
check nonexistent-input       --module simple --input "$work/nope.safetensors" --output "$out"
check nonexistent-weights     --module causal_attention "${ok_args[@]}" --weights "$work/nope.safetensors"
check garbage-input           --module simple --input "$work/garbage.safetensors" --output "$out"
check truncated-input         --module simple --input "$work/truncated.safetensors" --output "$out"
check empty-input             --module simple --input "$work/empty.safetensors" --output "$out"
check garbage-weights         --module causal_attention "${ok_args[@]}" --weights "$work/garbage.safetensors"
check input-without-x         --module simple --input "$work/no_x.safetensors" --output "$out"
check x-rank-1                --module simple --input "$work/x_rank1.safetensors" --output "$out"
check x-rank-4                --module simple --input "$work/x_rank4.safetensors" --output "$out"
check x-zero-tokens           --module simple --input "$work/x_empty.safetensors" --output "$out"
check x-wrong-features        --module causal_attention --input "$work/x_d4.safetensors" --output "$out" "${cw[@]}"
check d-in-disagrees          --module causal_attention "${ok_args[@]}" "${cw[@]}" --d-in 4
check extra-weight-key        --module causal_attention "${ok_args[@]}" --weights "$work/extra_w.safetensors"
check missing-weight-key      --module causal_attention "${ok_args[@]}" --weights "$work/missing_w.safetensors"
check wrong-module-weights    --module self_attention_v1 "${ok_args[@]}" "${cw[@]}"
check tokens-over-context     --module causal_attention "${ok_args[@]}" "${cw[@]}" --context-length 5
check weights-with-simple     --module simple "${ok_args[@]}" "${cw[@]}"
check no-weights              --module causal_attention "${ok_args[@]}"
check mha-without-heads       --module mha "${ok_args[@]}" --weights "$work/mha_w.safetensors"
check mha-heads-not-divisor   --module mha "${ok_args[@]}" --weights "$work/mha_w.safetensors" --num-heads 3
check heads-for-causal        --module causal_attention "${ok_args[@]}" "${cw[@]}" --num-heads 2
check context-for-v2          --module self_attention_v2 "${ok_args[@]}" "${cw[@]}" --context-length 6
check train-without-dropout   --module causal_attention "${ok_args[@]}" "${cw[@]}" --train
check seed-without-train      --module causal_attention "${ok_args[@]}" "${cw[@]}" --dropout 0.5 --seed 3
check dropout-out-of-range    --module causal_attention "${ok_args[@]}" "${cw[@]}" --dropout 1.5 --train
check dropout-for-simple      --module simple "${ok_args[@]}" --dropout 0.5
check bad-backend             --module simple --input "$work/x.safetensors" --output "$out" --backend gpu
check bad-threads             --module simple "${ok_args[@]}" --threads 0
check bad-isa                 --module simple "${ok_args[@]}" --isa mmx
check d-in-not-integer        --module causal_attention "${ok_args[@]}" "${cw[@]}" --d-in 3x
check output-in-missing-dir   --module simple --input "$work/x.safetensors" --output "$work/none/y.safetensors" --backend reference

if (( failures )); then
  echo "run_errors: $failures case(s) failed"
  exit 1
fi
echo "run_errors: all cases failed cleanly"
