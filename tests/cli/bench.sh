#!/usr/bin/env bash
# tests/cli/bench.sh — `simdattn bench gemm` and `bench mha` on tiny shapes: the JSON object has
# the documented fields with sane values (times > 0, GFLOP/s = FLOPs / median, fraction_of_peak
# = gflops / (peak x threads) where a peak was measured), the text form prints, and bad flags
# fail cleanly (exit 2, a message, no JSON).
# usage: bench.sh SIMDATTN PYTHON
set -euo pipefail
simdattn=$1 python=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$simdattn" bench gemm --m 37 --n 50 --k 29 --repeats 3 --threads 1 --json > "$work/gemm.json"
if [ "$(uname -m)" = x86_64 ]; then
  "$simdattn" bench gemm --m 9 --n 20 --k 30 --repeats 1 --threads 1 --isa sse2 --json \
    > "$work/gemm_sse2.json"
else
  echo '{"skip": true}' > "$work/gemm_sse2.json"
fi
"$simdattn" bench mha --batch 2 --tokens 40 --d-model 48 --heads 3 --repeats 2 --json > "$work/mha.json"
"$simdattn" bench mha --batch 1 --tokens 9 --d-model 16 --heads 2 --repeats 1 \
  --backend reference --json > "$work/mha_ref.json"
"$simdattn" bench mha --batch 2 --tokens 40 --d-model 64 --heads 2 --repeats 1 --kv-dtype q8_0 \
  --json > "$work/mha_q8.json"
"$simdattn" bench mha --batch 1 --tokens 12 --d-model 16 --heads 2 --repeats 1 --kv-dtype f16 \
  --backend reference --json > "$work/mha_f16.json"
"$simdattn" bench gemm --m 3 --n 40 --k 64 --repeats 1 --threads 1 --weight-dtype q4_0 --json \
  > "$work/gemm_q4.json"
"$python" - "$work" <<'PY'
import json, math, sys
work = sys.argv[1]
def check(name, flops, extra):
    with open(f"{work}/{name}.json") as f:
        j = json.load(f)
    for key in ["median_s", "min_s", "gflops", "median_process_cpu_s", "threads", "isa",
                "peak_gflops_per_core", "fraction_of_peak"] + extra:
        assert key in j, f"{name}: missing {key}: {j}"
    assert 0 < j["min_s"] <= j["median_s"], j
    assert math.isclose(j["gflops"], flops / j["median_s"] * 1e-9, rel_tol=1e-9), j
    if j["peak_gflops_per_core"] is None:
        assert j["fraction_of_peak"] is None, j
    else:
        assert j["peak_gflops_per_core"] > 0, j
        assert math.isclose(j["fraction_of_peak"],
                            j["gflops"] / (j["peak_gflops_per_core"] * j["threads"]),
                            rel_tol=1e-9), j
    return j
j = check("gemm", 2.0 * 37 * 50 * 29, ["m", "n", "k", "prepacked", "weight_gbytes_per_s",
                                       "gemm_blocking", "caches"])
# The blocking the GEMM runs with, derived from the caches read at start-up.
blk, caches = j["gemm_blocking"], j["caches"]
assert blk["mr"] >= 1 and blk["nr"] >= 1 and blk["mc"] % blk["mr"] == 0 and blk["mc"] >= 96, j
assert 128 <= blk["kc"] <= 1024 and blk["kc"] % 16 == 0 and blk["nc"] >= blk["nr"], j
assert caches["source"] in ("sysfs", "sysconf", "default") and caches["l2_bytes"] > 0, j
# The FMA peak is that of the active ISA: none for sse2 (no FMA), whatever else the CPU has.
with open(f"{work}/gemm_sse2.json") as f:
    j = json.load(f)
if "skip" not in j:
    assert j["isa"] == "sse2" and j["peak_gflops_per_core"] is None, j
    assert j["fraction_of_peak"] is None, j
b, t, d, h = 2, 40, 48, 3
mha_flops = 2*b*t*d*3*d + 4*b*h*(d/h)*t*(t+1)/2 + 2*b*t*d*d
j = check("mha", mha_flops, ["batch", "tokens", "d_model", "heads", "backend", "peak_rss_mib"])
assert j["backend"] == "fast" and j["batch"] == 2 and j["tokens"] == 40, j
b, t, d, h = 1, 9, 16, 2
j = check("mha_ref", 2*b*t*d*3*d + 4*b*h*(d/h)*t*(t+1)/2 + 2*b*t*d*d, ["backend"])
assert j["backend"] == "reference", j
assert j["kv_dtype"] is None and j["kv_bytes"] is None, j
# Through a KV cache: its type and bytes ([B, heads, T, hd] for K and V, in the stored type:
# q8_0 rows of hd / 32 blocks of 34 bytes, f16 2 bytes a value).
b, t, d, h = 2, 40, 64, 2
j = check("mha_q8", 2*b*t*d*3*d + 4*b*h*(d/h)*t*(t+1)/2 + 2*b*t*d*d, ["kv_dtype", "kv_bytes"])
assert j["kv_dtype"] == "q8_0" and j["kv_bytes"] == 2 * b * h * t * (d // h // 32) * 34, j
b, t, d, h = 1, 12, 16, 2
j = check("mha_f16", 2*b*t*d*3*d + 4*b*h*(d/h)*t*(t+1)/2 + 2*b*t*d*d, ["kv_dtype", "kv_bytes"])
assert j["kv_dtype"] == "f16" and j["kv_bytes"] == 2 * b * t * d * 2 and j["backend"] == "reference", j
# q4_0 weights: 3 panels of 16 columns (40 padded to 48) plus one padding panel, each k / 32
# blocks of 16 f16 scales and 32 x 16 nibbles (288 bytes).
j = check("gemm_q4", 2.0 * 3 * 40 * 64, ["weight_dtype", "weight_bytes"])
assert j["weight_dtype"] == "q4_0" and j["weight_bytes"] == 4 * (64 // 32) * 288, j
PY

# Text form.
"$simdattn" bench gemm --m 8 --n 16 --k 8 --repeats 1 | grep -q "GFLOP/s" \
  || { echo "bench gemm text output lacks GFLOP/s" >&2; exit 1; }
"$simdattn" bench mha --batch 1 --tokens 8 --d-model 16 --heads 2 --repeats 1 | grep -q "GFLOP/s" \
  || { echo "bench mha text output lacks GFLOP/s" >&2; exit 1; }

# Bad flags: exit 2 with a message on stderr and nothing on stdout.
expect_usage_error() {
  local want=$1; shift
  set +e
  "$simdattn" "$@" > "$work/out" 2> "$work/err"
  local rc=$?
  set -e
  if [ "$rc" -ne 2 ] || [ -s "$work/out" ] || ! grep -q -- "$want" "$work/err"; then
    echo "expected exit 2 mentioning '$want' for: $*; got $rc:" >&2
    cat "$work/out" "$work/err" >&2
    exit 1
  fi
}
expect_usage_error "--m" bench gemm --n 4 --k 4 --json
expect_usage_error "divisible" bench mha --d-model 30 --heads 4 --json
expect_usage_error "tokens" bench mha --tokens 0 --json
expect_usage_error "backend" bench mha --backend quick --json
expect_usage_error "kv-dtype" bench mha --kv-dtype q4 --json
expect_usage_error "kv-dtype" bench mha --kv-dtype q4_0 --json  # a weight type only
expect_usage_error "weight-dtype" bench gemm --m 2 --n 2 --k 2 --weight-dtype q4_1 --json
# A cache type the shape cannot hold is the library's error: exit 1, its message, no JSON.
set +e
"$simdattn" bench mha --tokens 8 --d-model 32 --heads 2 --kv-dtype q8_0 --json > "$work/out" 2> "$work/err"
rc=$?
set -e
if [ "$rc" -ne 1 ] || [ -s "$work/out" ] || ! grep -q "head_dim (16)" "$work/err"; then
  echo "expected exit 1 naming head_dim (16) for a q8_0 cache of head_dim 16; got $rc:" >&2
  cat "$work/out" "$work/err" >&2
  exit 1
fi
echo "bench: ok"
