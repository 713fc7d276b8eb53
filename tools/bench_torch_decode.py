#!/usr/bin/python3
"""tools/bench_torch_decode.py — the PyTorch peer of bench/bench_decode.cpp: one decode step (one
new token) through GPT-2 small's 12 attention layers (d 768, 12 heads, qkv_bias) with 1024
tokens cached, at a given thread count. Prints one JSON object.

Two variants of the book's MultiHeadAttention with a KV cache:
  book      the book's KV-cache bonus (LLMs-from-scratch, ch04/03_kv-cache): the new K/V are
            torch.cat'ed to the cached ones (a new tensor every step) and the queries attend
            with the mask rows at the current position offset.
  prealloc  the same attention with the cache preallocated at its capacity and the new K/V
            written in place (the layout simdattn uses), so no per-step copy of the cache.

Every timed step sees 1024 cached tokens: after each step the caches are rewound by the one
token it appended (a slice view or a counter, inside the timed loop as in the C++ benchmark;
it costs nothing measurable).

Needs torch (Debian's):
    /usr/bin/python3 tools/bench_torch_decode.py --threads 1
    /usr/bin/python3 tools/bench_torch_decode.py --threads 2 --variant prealloc
"""

import argparse
import json
import os
import statistics
import sys
import time


def _pin_blas_threads(argv):
    """Pins every BLAS/OpenMP pool to --threads before torch loads: torch.set_num_threads alone
    does not reach the OpenBLAS that Debian's torch calls, which would otherwise use all cores."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--threads', type=int, default=1)
    threads = str(pre.parse_known_args(argv)[0].threads)
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[var] = threads


_pin_blas_threads(sys.argv[1:])
import torch  # noqa: E402  (after the thread pinning above)
import torch.nn as nn  # noqa: E402


class MultiHeadAttention(nn.Module):
    """Book §3.6.2 plus the KV-cache bonus's use_cache path (variant 'book'), or a preallocated
    cache written in place (variant 'prealloc')."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False,
                 variant='book'):
        super().__init__()
        assert d_out % num_heads == 0, 'd_out must be divisible by num_heads'
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer('mask', torch.triu(torch.ones(context_length, context_length),
                                                diagonal=1), persistent=False)
        self.variant = variant
        self.context_length = context_length
        self.reset_cache()

    def reset_cache(self):
        self.cache_k, self.cache_v = None, None
        self.ptr_current_pos = 0

    def rewind(self, tokens):
        """Forget the last `tokens` tokens (benchmark only)."""
        self.ptr_current_pos -= tokens
        if self.variant == 'book':
            self.cache_k = self.cache_k[:, :self.ptr_current_pos]
            self.cache_v = self.cache_v[:, :self.ptr_current_pos]

    def forward(self, x, use_cache=False):
        b, num_tokens, d_in = x.shape
        keys_new = self.W_key(x)
        values_new = self.W_value(x)
        queries = self.W_query(x)
        keys_new = keys_new.view(b, num_tokens, self.num_heads, self.head_dim)
        values_new = values_new.view(b, num_tokens, self.num_heads, self.head_dim)
        queries = queries.view(b, num_tokens, self.num_heads, self.head_dim)

        if use_cache and self.variant == 'book':
            if self.cache_k is None:
                self.cache_k, self.cache_v = keys_new, values_new
            else:
                self.cache_k = torch.cat([self.cache_k, keys_new], dim=1)
                self.cache_v = torch.cat([self.cache_v, values_new], dim=1)
            keys, values = self.cache_k, self.cache_v
            keys, values = keys.transpose(1, 2), values.transpose(1, 2)
        elif use_cache:  # prealloc: [b, H, capacity, hd], written in place
            if self.cache_k is None:
                shape = (b, self.num_heads, self.context_length, self.head_dim)
                self.cache_k, self.cache_v = torch.empty(shape), torch.empty(shape)
            p = self.ptr_current_pos
            self.cache_k[:, :, p:p + num_tokens] = keys_new.transpose(1, 2)
            self.cache_v[:, :, p:p + num_tokens] = values_new.transpose(1, 2)
            keys = self.cache_k[:, :, :p + num_tokens]
            values = self.cache_v[:, :, :p + num_tokens]
        else:
            keys, values = keys_new.transpose(1, 2), values_new.transpose(1, 2)
        queries = queries.transpose(1, 2)

        attn_scores = queries @ keys.transpose(2, 3)
        num_tokens_q = queries.shape[-2]
        num_tokens_k = keys.shape[-2]
        if use_cache:
            mask_bool = self.mask.bool()[self.ptr_current_pos:self.ptr_current_pos + num_tokens_q,
                                         :num_tokens_k]
            self.ptr_current_pos += num_tokens_q
        else:
            mask_bool = self.mask.bool()[:num_tokens_q, :num_tokens_k]
        attn_scores.masked_fill_(mask_bool, -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        context_vec = (attn_weights @ values).transpose(1, 2)
        context_vec = context_vec.contiguous().view(b, num_tokens_q, self.d_out)
        return self.out_proj(context_vec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--variant', choices=('book', 'prealloc'), default='book')
    ap.add_argument('--layers', type=int, default=12)
    ap.add_argument('--d-model', type=int, default=768)
    ap.add_argument('--heads', type=int, default=12)
    ap.add_argument('--cached', type=int, default=1024)
    ap.add_argument('--steps', type=int, default=30, help='timed steps per repetition')
    ap.add_argument('--repetitions', type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(123)
    d, cached = args.d_model, args.cached
    layers = [MultiHeadAttention(d, d, cached + 1, 0.0, args.heads, qkv_bias=True,
                                 variant=args.variant).eval() for _ in range(args.layers)]

    with torch.inference_mode():
        h = torch.rand(1, cached, d)
        for layer in layers:  # prefill: the prompt flows through the stack
            h = layer(h, use_cache=True)
        token = torch.rand(1, 1, d)

        def step():
            x = token
            for layer in layers:
                x = layer(x, use_cache=True)
            for layer in layers:
                layer.rewind(1)
            return x

        for _ in range(5):
            step()
        per_step = []
        for _ in range(args.repetitions):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            per_step.append((time.perf_counter() - t0) / args.steps)

    step_bytes = args.layers * (4 * d * d + 2 * (cached + 1) * d) * 4
    print(json.dumps({
        'peer': 'pytorch', 'variant': args.variant, 'torch': torch.__version__,
        'threads': torch.get_num_threads(), 'layers': args.layers, 'd_model': d,
        'heads': args.heads, 'cached': cached,
        'step_ms_median': 1e3 * statistics.median(per_step),
        'step_ms_min': 1e3 * min(per_step),
        'step_ms_all': [round(1e3 * s, 3) for s in per_step],
        'bytes_per_step': step_bytes,
    }))


if __name__ == '__main__':
    main()
