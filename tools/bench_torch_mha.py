#!/usr/bin/python3
"""tools/bench_torch_mha.py — the PyTorch peers of `simdattn bench mha` / bench/bench_mha.cpp:
one causal multi-head attention forward at the same shapes and thread counts, printing one JSON
line per (implementation, shape, threads).

Implementations (both in eval mode under torch.inference_mode(), qkv_bias, no dropout):
  book     the book's chapter-3 MultiHeadAttention (§3.6.2), verbatim: three nn.Linear, the
           [B, H, T, T] scores masked with a registered triu buffer, softmax, weights @ values,
           out_proj.
  nn       torch.nn.MultiheadAttention(batch_first=True) called as mha(x, x, x,
           attn_mask=<bool causal mask>, need_weights=False).

Each configuration runs in its own child process, so peak_rss_mib (ru_maxrss of that child) is
that configuration's own high-water mark; a configuration that runs out of memory prints an
"error" field instead of timings. GFLOP/s counts the same causal-useful FLOPs as simdattn:
2 B T d 3d + 4 B H hd T (T+1)/2 + 2 B T d d.

    /usr/bin/python3 tools/bench_torch_mha.py --threads 1 2
    /usr/bin/python3 tools/bench_torch_mha.py --impl book --batch 8 --tokens 1024 --threads 1
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SHAPES = [(8, 1024), (1, 128), (1, 512), (1, 2048), (1, 4096), (1, 8192)]


def useful_flops(b, t, d, h):
    hd = d // h
    return 2 * b * t * d * 3 * d + 4 * b * h * hd * t * (t + 1) / 2 + 2 * b * t * d * d


def run_one(impl, batch, tokens, d, heads, threads, repeats):
    import torch
    import torch.nn as nn

    class MultiHeadAttention(nn.Module):
        """Book §3.6.2, as printed."""

        def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
            super().__init__()
            assert d_out % num_heads == 0, "d_out must be divisible by num_heads"
            self.d_out = d_out
            self.num_heads = num_heads
            self.head_dim = d_out // num_heads
            self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
            self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
            self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
            self.out_proj = nn.Linear(d_out, d_out)
            self.dropout = nn.Dropout(dropout)
            self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length),
                                                    diagonal=1))

        def forward(self, x):
            b, num_tokens, d_in = x.shape
            keys = self.W_key(x)
            queries = self.W_query(x)
            values = self.W_value(x)
            keys = keys.view(b, num_tokens, self.num_heads, self.head_dim)
            values = values.view(b, num_tokens, self.num_heads, self.head_dim)
            queries = queries.view(b, num_tokens, self.num_heads, self.head_dim)
            keys = keys.transpose(1, 2)
            queries = queries.transpose(1, 2)
            values = values.transpose(1, 2)
            attn_scores = queries @ keys.transpose(2, 3)
            mask_bool = self.mask.bool()[:num_tokens, :num_tokens]
            attn_scores.masked_fill_(mask_bool, -torch.inf)
            attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
            attn_weights = self.dropout(attn_weights)
            context_vec = (attn_weights @ values).transpose(1, 2)
            context_vec = context_vec.contiguous().view(b, num_tokens, self.d_out)
            context_vec = self.out_proj(context_vec)
            return context_vec

    torch.set_num_threads(threads)
    torch.manual_seed(123)
    x = torch.rand(batch, tokens, d) * 2 - 1
    if impl == "book":
        module = MultiHeadAttention(d, d, tokens, 0.0, heads, qkv_bias=True).eval()
        fwd = lambda: module(x)
    else:
        module = nn.MultiheadAttention(d, heads, bias=True, batch_first=True).eval()
        mask = torch.triu(torch.ones(tokens, tokens, dtype=torch.bool), diagonal=1)
        fwd = lambda: module(x, x, x, attn_mask=mask, need_weights=False)[0]
    times, cpu = [], []
    with torch.inference_mode():
        fwd()  # warm-up
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            fwd()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    med = statistics.median(times)
    return {
        "median_s": med, "min_s": min(times), "median_process_cpu_s": statistics.median(cpu),
        "gflops": useful_flops(batch, tokens, d, heads) / med * 1e-9,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }


def pinned_env(threads):
    """The child's environment with every BLAS/OpenMP pool pinned to `threads`.
    torch.set_num_threads alone does not reach the OpenBLAS that Debian's torch calls for its
    matmuls (measured: at --threads 1 a child used ~2 CPU-seconds per wall second on 2 cores),
    so without this a "1 thread" peer quietly runs on every core."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", nargs="+", choices=("book", "nn"), default=["book", "nn"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1])
    ap.add_argument("--batch", type=int, help="with --tokens: one shape instead of the list")
    ap.add_argument("--tokens", type=int)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:  # one configuration, in this process
        impl, threads = args.impl[0], args.threads[0]
        out = {"impl": impl, "batch": args.batch, "tokens": args.tokens, "d_model": args.d_model,
               "heads": args.heads}
        try:
            out.update(run_one(impl, args.batch, args.tokens, args.d_model, args.heads, threads,
                               args.repeats))
        except (RuntimeError, MemoryError) as e:  # e.g. the [B, H, T, T] scores do not fit
            out.update({"threads": threads, "error": str(e).split("\n")[0][:200]})
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps(out), flush=True)
        return

    shapes = [(args.batch, args.tokens)] if args.batch and args.tokens else SHAPES
    for b, t in shapes:
        for threads in args.threads:
            for impl in args.impl:
                cmd = [sys.executable, __file__, "--child", "--impl", impl, "--threads",
                       str(threads), "--batch", str(b), "--tokens", str(t), "--d-model",
                       str(args.d_model), "--heads", str(args.heads), "--repeats",
                       str(args.repeats if b * t <= 4096 else max(1, min(args.repeats, 3)))]
                r = subprocess.run(cmd, capture_output=True, text=True,
                                   env=pinned_env(threads))
                line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else json.dumps(
                    {"impl": impl, "batch": b, "tokens": t, "threads": threads,
                     "error": "child exited with %d: %s" % (r.returncode, r.stderr.strip()[-200:])})
                print(line, flush=True)


if __name__ == "__main__":
    main()
