#!/usr/bin/env python3
"""simdattn_bench's GEMM counters: weight_B/s is the bytes of weight one product reads, in the
type it is stored in, per second of real time (decimal units); FLOP/s is 2 m n k per second.

usage: bench_counters.py SIMDATTN_BENCH
Runs the decode shape (1 x 2304 x 768) in f32 and in every stored type on the best ISA, briefly.
"""
import json
import subprocess
import sys

M, N, K = 1, 2304, 768
SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def main() -> int:
    bench = sys.argv[1]
    out = subprocess.run(
        [bench, "--benchmark_filter=^Gemm/decode/simdattn_[a-z0-9]+(_f16|_bf16|_q8_0|_q4_0)?/threads:1/",
         "--benchmark_min_time=0.05", "--benchmark_format=json"],
        check=True, capture_output=True, text=True).stdout
    runs = [r for r in json.loads(out)["benchmarks"] if r.get("run_type") == "iteration"]
    failures = []
    seen = {}
    for r in runs:
        name = r["name"]
        seconds = r["real_time"] * SECONDS[r["time_unit"]]
        stored = next((t for t in ("f16", "bf16", "q8_0", "q4_0") if f"_{t}/" in name), None)
        if stored is None:
            # f32: n k floats. Only the first ISA (the best) is compared with the stored types.
            expected_bytes = N * K * 4.0
            seen.setdefault("f32", expected_bytes)
        else:
            expected_bytes = r.get("weight_bytes", 0.0)
            # Stored bytes per weight, from the formats (plus one 16-column padding panel).
            per_weight = {"f16": 2.0, "bf16": 2.0, "q8_0": 34.0 / 32, "q4_0": 18.0 / 32}[stored]
            lo, hi = N * K * per_weight, (N + 16) * K * per_weight * 1.0001
            if not lo <= expected_bytes <= hi:
                failures.append(f"{name}: weight_bytes {expected_bytes} outside [{lo}, {hi}]")
            seen[stored] = expected_bytes
        rate = expected_bytes / seconds
        if abs(r["weight_B/s"] - rate) > 0.01 * rate:
            failures.append(f"{name}: weight_B/s {r['weight_B/s']:.4g}, expected {rate:.4g}")
        flops = 2.0 * M * N * K / seconds
        if abs(r["FLOP/s"] - flops) > 0.01 * flops:
            failures.append(f"{name}: FLOP/s {r['FLOP/s']:.4g}, expected {flops:.4g}")
    for t in ("f32", "f16", "bf16", "q8_0", "q4_0"):
        if t not in seen:
            failures.append(f"no decode run for {t}")
    for f in failures:
        print("FAIL", f)
    print(f"{len(runs)} runs, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
