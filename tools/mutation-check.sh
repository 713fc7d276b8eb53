#!/usr/bin/env bash
# tools/mutation-check.sh — plants faults into a copy of the tree, one at a time, and checks
# that the unit suite and `simdattn difftest` each catch every one of them on their own: the
# one measure of the tests that does not trust the tests.
#
#   tools/mutation-check.sh [--only N[,N...]] [--cases C]   (C: difftest cases per mutant, 3000)
#
# The copy lives in a temporary folder (SIMDATTN_MUTATION_DIR to keep it); the working tree is
# never touched. After each mutant the original file is written back with a fresh timestamp,
# so make rebuilds it (a restored copy with its old mtime would leave the mutant's object in
# place). Prints one line per mutant and which of the two killed it, then `mutants killed:
# K/N` (K: killed by both), and exits non-zero unless every mutant was killed by both.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
only="" cases=3000
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    *) echo "mutation-check.sh: unknown option '$1' (expected --only N, --cases C)" >&2; exit 2 ;;
  esac
done
work=${SIMDATTN_MUTATION_DIR:-$(mktemp -d /tmp/simdattn-mutation.XXXXXX)}
[ -n "${SIMDATTN_MUTATION_DIR:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree"
# The tree as it is now (tracked and untracked, not ignored), without build folders.
(cd "$top" && git ls-files -co --exclude-standard -z) |
  (cd "$top" && xargs -0 cp --parents -t "$work/tree")
echo "mutation-check: building a copy of the tree in $work (library, tests, CLI)" >&2
cmake -S "$work/tree" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DSIMDATTN_BUILD_BENCH=OFF \
  >"$work/configure.log" 2>&1 || { tail -20 "$work/configure.log"; exit 1; }
build() { cmake --build "$work/build" --parallel 2 --target simdattn_tests simdattn_cli >"$work/build.log" 2>&1; }
build || { tail -20 "$work/build.log"; exit 1; }
tests=$work/build/tests/simdattn_tests
cli=$work/build/tools/simdattn
"$tests" --gtest_brief=1 >"$work/baseline.log" 2>&1 || { echo "mutation-check: the unmutated unit suite fails" >&2; tail "$work/baseline.log"; exit 1; }
# LlamaAttention's run takes as many cases as the chapter's (it was capped at 1500 while
# difftest failed an Inf value under a weight that underflows in float but not in double: an
# element now flagged by the oracle, both answers accepted and counted).
{ "$cli" difftest --cases "$cases" && "$cli" difftest --module llama --cases "$cases"; } >"$work/baseline-difftest.log" 2>&1 || { echo "mutation-check: the unmutated difftest fails" >&2; tail "$work/baseline-difftest.log"; exit 1; }

# id|file|description, then the exact text to replace and its replacement (python literals).
mutants=$(cat <<'EOF'
1|src/kernels/softmax_rows_impl.hpp|softmax NaN test by x != x (ordered != on AVX)
      nan = nan | xsimd::isnan(x);
      vmax = xsimd::max(vmax, x);
@@
      nan = nan | (x != x);
      vmax = xsimd::max(vmax, x);
===
2|src/kernels/softmax_rows_impl.hpp|fused softmax takes a padding lane into its row max
      vmax = xsimd::max(vmax, xsimd::select(lane, x, neg_inf));
@@
      vmax = xsimd::max(vmax, x);
===
3|src/kernels/softmax_simd.hpp|exp polynomial coefficient off by 2e-5 relative
  p = flash_madd<Arch>(p, r, V(5.0000001201e-1f));
@@
  p = flash_madd<Arch>(p, r, V(5.0001001201e-1f));
===
4|src/drivers/attention.cpp|score scale off by 1e-5 (plain forward)
    p.scale = scale;
@@
    p.scale = scale * (1.0f + 1e-5f);
===
5|src/kernels/attention_decode_impl.hpp|decode kernel drops NaN scores (max never takes them)
    vnan = vnan | xsimd::isnan(s);
@@
    (void)vnan;
===
6|src/kernels/attention_decode_impl.hpp|decode softmax without max subtraction
    const V e = nothing ? V(0.0f) : flash_exp<Arch>(V::load_unaligned(scores + j) - vmax);
@@
    const V e = nothing ? V(0.0f) : flash_exp<Arch>(V::load_unaligned(scores + j));
===
7|src/kernels/attention_flash_impl.hpp|flash P·V lets hidden keys reach a query (0 * NaN)
    if (a.causal && q_rel + 1 < keys) masked_from = q_rel + 1 > 0 ? q_rel + 1 : 0;
@@
    (void)q_rel;
===
8|src/kernels/attention_flash_impl.hpp|causal mask hides the diagonal (off by one)
        acc[r][v] = xsimd::select(V(static_cast<float>(rel + r - v * W)) > iota, neg_inf, acc[r][v]);
@@
        acc[r][v] = xsimd::select(V(static_cast<float>(rel + r - v * W)) >= iota, neg_inf, acc[r][v]);
===
9|src/kernels/attention_flash_impl.hpp|online softmax forgets to rescale the running sum
      lsum[c] = V::load_aligned(a.l + q0 + c * W) * alpha[c];
@@
      lsum[c] = V::load_aligned(a.l + q0 + c * W);
===
10|src/modules/kv_cache.cpp|sliding-window cache keeps one token too few
  const std::int64_t drop = length + tokens - capacity;
@@
  const std::int64_t drop = std::min(length, length + tokens - capacity + 1);
===
11|src/common/kv_ring.hpp|ring buffer wraps to slot 0 instead of start + logical - capacity
    return p < capacity ? p : p - capacity;  // logical < capacity, start < capacity
@@
    return p < capacity ? p : 0;
===
12|src/drivers/attention_decode.cpp|decode step misses the query's own key
          p.causal ? std::clamp<std::int64_t>(p.q_offset + t - p.k_offset + 1, 0, p.kv_len)
@@
          p.causal ? std::clamp<std::int64_t>(p.q_offset + t - p.k_offset, 1, p.kv_len)
===
13|src/drivers/attention_flash.cpp|flash dropout mask drawn at swapped (query, key) positions
                                         static_cast<std::uint64_t>(qpos),
                                         static_cast<std::uint64_t>(kpos));
@@
                                         static_cast<std::uint64_t>(kpos),
                                         static_cast<std::uint64_t>(qpos));
===
14|src/kernels/gemm_ukernel_impl.hpp|GEMM epilogue drops the bias on full tiles
          gemm_madd<Arch>(acc[i][v], alpha, bias).store_unaligned(c + i * ldc + v * W);
@@
          (acc[i][v] * alpha).store_unaligned(c + i * ldc + v * W);
===
15|src/drivers/attention.cpp|plain forward loses the book's 0 * NaN propagation
    p.propagate_masked_nonfinite = true;  // the book's attn_weights @ values: 0 * NaN is NaN
@@
    p.propagate_masked_nonfinite = false;
===
16|src/kernels/dequant_impl.hpp|q8_0/q4_0 weight panels take the next column's scales
        dequant_impl::f16_row<Arch>(block, scale);
@@
        dequant_impl::f16_row<Arch>(block + 2, scale);
===
17|src/kernels/dequant_impl.hpp|stored small-M GEMM swaps adjacent depth rows
          bv[q * VPP + v] = row_vector<Arch, S>(b + q * panel_bytes + p * PW * 2, v);
@@
          bv[q * VPP + v] = row_vector<Arch, S>(b + q * panel_bytes + (p ^ 1) * PW * 2, v);
===
18|src/common/half.hpp|q8_0 KV rows keep 31 of each block's 32 values
      std::memcpy(b + 2, q, 32);
@@
      std::memcpy(b + 2, q, 31);
===
19|src/kernels/attention_decode_impl.hpp|stored-cache decode scales a q8_0 block by its neighbour's d
             V(scales_cached ? scale[b] : block_scale(b));
@@
             V(scales_cached ? scale[b ^ 1] : block_scale(b ^ 1));
===
20|src/common/rope.hpp|fast rotary embedding turns the first of each pair the wrong way
      x[ia] = a * c - b * s;
@@
      x[ia] = a * c + b * s;
===
21|src/drivers/attention_decode.cpp|decode reads K/V head h % G instead of h / (H / G)
  const std::int64_t kvh = h / p.kv_group, kv_heads = p.heads / p.kv_group;
@@
  const std::int64_t kv_heads = p.heads / p.kv_group, kvh = h % kv_heads;
===
22|src/drivers/attention.cpp|cached rows are rotated from position 0 in every call
      for (std::int64_t t = 0; t < seqs[i].tokens; ++t) pos[seqs[i].row + t] = seqs[i].cache.position + t;
@@
      for (std::int64_t t = 0; t < seqs[i].tokens; ++t) pos[seqs[i].row + t] = t;
===
23|src/kernels/dequant_impl.hpp|q4_0 small-M GEMM multiplies a pair's odd row by the even row's input
              acc[i][u] = gemm_madd<Arch>(V(a[i * lda + p + 1]), hi, acc[i][u]);
@@
              acc[i][u] = gemm_madd<Arch>(V(a[i * lda + p]), hi, acc[i][u]);
===
24|src/kernels/dequant_impl.hpp|q4_0 weight panels repeat the even row of a whole pair
      if (both) (hi * d).store_unaligned(dst + (r + 1 - r0) * PW + v * W);
@@
      if (both) (lo * d).store_unaligned(dst + (r + 1 - r0) * PW + v * W);
EOF
)

apply() {  # apply FILE (old/new on stdin, separated by a line "@@"); fails unless old occurs once
  python3 -c '
import sys
path = sys.argv[1]
old, new = sys.stdin.read().split("\n@@\n")
text = open(path).read()
if text.count(old) != 1:
    sys.exit("mutation-check: the text to mutate occurs %d times in %s" % (text.count(old), path))
open(path, "w").write(text.replace(old, new))' "$1"
}

total=0 both=0 by_unit=0 by_diff=0
printf '%-3s %-62s %-10s %-10s\n' id mutant "unit" difftest
while IFS= read -r -d $'\x1e' block; do
  header=${block%%$'\n'*}
  body=${block#*$'\n'}
  body=${body%$'\n'}
  IFS='|' read -r id file desc <<<"$header"
  [ -z "$only" ] || [[ ",$only," == *",$id,"* ]] || continue
  total=$((total + 1))
  cp "$work/tree/$file" "$work/original"
  printf '%s' "$body" | apply "$work/tree/$file"
  unit=survived diff=survived
  if ! build; then
    unit="build-fail" diff="build-fail"
  else
    timeout 600 "$tests" --gtest_brief=1 >"$work/unit-$id.log" 2>&1 || unit=killed
    # The chapter-3 modules and the softmax (`all`), then LlamaAttention (its own run).
    { timeout 600 "$cli" difftest --cases "$cases" &&
        timeout 600 "$cli" difftest --module llama --cases "$cases"; } >"$work/difftest-$id.log" 2>&1 ||
      diff=killed
  fi
  cat "$work/original" >"$work/tree/$file"  # new mtime: make rebuilds the restored file
  touch "$work/tree/$file"
  [ "$unit" != killed ] || by_unit=$((by_unit + 1))
  [ "$diff" != killed ] || by_diff=$((by_diff + 1))
  [ "$unit" != killed ] || [ "$diff" != killed ] || both=$((both + 1))
  printf '%-3s %-62s %-10s %-10s\n' "$id" "$desc" "$unit" "$diff"
done < <(printf '%s\n' "$mutants" | awk 'BEGIN{RS="\n===\n"; ORS="\036"} {print}')
build >/dev/null || true
echo "unit suite killed $by_unit/$total, difftest killed $by_diff/$total"
echo "mutants killed: $both/$total"
[ "$both" -eq "$total" ] && [ "$total" -gt 0 ]
