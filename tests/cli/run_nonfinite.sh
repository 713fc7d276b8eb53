#!/usr/bin/env bash
# tests/cli/run_nonfinite.sh — one token of x set to NaN, +inf or -inf, through `simdattn run`
# on every backend and usable ISA: the plain forward follows the book (0 * NaN reaches every
# row of that sequence), and a forward through a KV cache (--prefill P, --chunk C) gives the
# same result for every split: earlier rows untouched, the token's row and later ones
# non-finite, the other sequence untouched.
# usage: run_nonfinite.sh SIMDATTN PYTHON GOLDEN_DIR
set -euo pipefail
simdattn=$1 python=$2 golden=$3
tool="$(dirname "$0")/kv_tool.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" "$tool" causal_cases "$golden" "$work" >"$work/cases"
paths=("--backend reference")
for isa in sse2 avx2 avx512 neon; do
  if "$simdattn" run --module simple --input "$golden/simple_0.safetensors" \
       --output "$work/probe.safetensors" --isa "$isa" 2>/dev/null; then
    paths+=("--backend fast --isa $isa --threads 1" "--backend fast --isa $isa --threads 2")
  fi
done
count=0
: >"$work/checks"
while read -r name module heads context tokens; do
  [[ $module == mha || $module == causal_attention ]] || continue
  w="$work/$name.weights.safetensors"
  T=40
  "$python" "$tool" make_x "$w" "$work/x.safetensors" 2 $T 7
  mod=(--module "$module" --weights "$w" --context-length $T)
  [[ $module != mha ]] || mod+=(--num-heads "$heads")
  for path in "${paths[@]}"; do
    tag="$name.$(echo "$path" | tr -c 'a-z0-9' _)"
    # shellcheck disable=SC2086
    "$simdattn" run "${mod[@]}" $path --input "$work/x.safetensors" --output "$work/$tag.clean.safetensors"
    for value in nan inf -inf; do
      for t in 0 5 23; do
        "$python" "$tool" poke "$work/xp.safetensors" "$work/x.safetensors" 1 $t $value
        out="$work/$tag.$value.$t"
        # shellcheck disable=SC2086
        "$simdattn" run "${mod[@]}" $path --input "$work/xp.safetensors" --output "$out.plain.safetensors"
        [[ $value != nan ]] || echo "nonfinite '$work/$tag.clean.safetensors' '$out.plain.safetensors' 1 $t plain" >>"$work/checks"
        for split in "0 1" "1 1" "3 2" "7 3" "$T 1" "2 5" "0 17"; do
          read -r p c <<<"$split"
          # shellcheck disable=SC2086
          "$simdattn" run "${mod[@]}" $path --input "$work/xp.safetensors" \
            --output "$out.p$p.c$c.safetensors" --prefill "$p" --chunk "$c"
          echo "nonfinite '$work/$tag.clean.safetensors' '$out.p$p.c$c.safetensors' 1 $t cached" >>"$work/checks"
          count=$((count + 1))
        done
      done
    done
  done
done < <(grep -E ' (mha|causal_attention) ' "$work/cases" | sort -k2,2 -u)
"$python" "$tool" batch <"$work/checks" >"$work/log" || { tail -3 "$work/log"; exit 1; }
(( count >= 100 )) || { echo "only $count cached runs" >&2; exit 1; }
echo "run_nonfinite: $count cached runs and their plain forwards hold the NaN/Inf semantics on ${#paths[@]} paths"
