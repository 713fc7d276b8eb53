#!/usr/bin/python3
"""tools/make_llama_data.py — PyTorch reference data for LlamaAttention, in Hugging Face's layout.

Each case is one small synthetic checkpoint, NAME.safetensors: the tensors a Hugging Face
Llama-family model keeps for its attention layers (`model.layers.{i}.self_attn.q_proj.weight`,
...; two layers, so a reader must pick the right one), all in the case's storage type. Beside
it, io/NAME.safetensors holds an input `x` [B, T, d_model] with per-sequence `lengths`, and the
layer's output computed here:
  y        in float32, the way transformers' LlamaAttention computes it (inverse frequencies,
           angles and cos/sin in float32, repeat_kv, softmax in float32);
  y64_hi,  the same computation in float64 with exact angles, stored as two float32 tensors
  y64_lo   (y64 = hi + lo to ~1e-14), so a test can tell whether it is at least as accurate as
           PyTorch's float32 run against float64.
Sequence b is x[b, :lengths[b]] run alone; y's rows past lengths[b] are 0.

The configuration is in both files' "__metadata__" (strings): layer, num_heads, num_kv_heads, head_dim, rope
(halves | interleaved | none), rope_theta, context_length, qkv_bias, o_bias, lengths, dtype
(how the checkpoint's weights are stored: F32, F16 or BF16; the reference computes with the
stored values).

Needs Debian's torch (run with the system interpreter); no `safetensors` or `transformers`
package: the format is written with struct + json, and the attention is written out below.
    /usr/bin/python3 tools/make_llama_data.py --out tests/data/llama
    /usr/bin/python3 tools/make_llama_data.py --holdout 40 --out /tmp/llama-holdout
"""

import argparse
import json
import math
import os
import random
import struct

import torch


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_tables(positions, hd, theta, dtype):
    """cos, sin [T, hd] as transformers builds them (float32), or exact in float64."""
    exps = torch.arange(0, hd, 2, dtype=torch.int64).to(dtype) / hd
    inv_freq = 1.0 / (theta ** exps)
    freqs = torch.outer(positions.to(dtype), inv_freq)  # [T, hd/2]
    return freqs.cos(), freqs.sin()


def apply_rope(x, cos, sin, layout):
    """x [B, heads, T, hd]."""
    if layout == 'none':
        return x
    if layout == 'halves':  # transformers' apply_rotary_pos_emb
        c = torch.cat((cos, cos), dim=-1)
        s = torch.cat((sin, sin), dim=-1)
        return x * c + rotate_half(x) * s
    # interleaved: pairs (2i, 2i+1), as Meta's apply_rotary_emb (complex multiply)
    a, b = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = b * cos + a * sin
    return out


def llama_attention(x, w, cfg, dtype):
    """x [T, d] for one sequence -> [T, d]; w holds the HF tensors (float32)."""
    H, G, hd = cfg['num_heads'], cfg['num_kv_heads'], cfg['head_dim']
    x = x.to(dtype)
    T = x.shape[0]

    def lin(name, bias):
        out = x @ w[name + '.weight'].to(dtype).T
        if bias:
            out = out + w[name + '.bias'].to(dtype)
        return out

    q = lin('q_proj', cfg['qkv_bias']).view(1, T, H, hd).transpose(1, 2)
    k = lin('k_proj', cfg['qkv_bias']).view(1, T, G, hd).transpose(1, 2)
    v = lin('v_proj', cfg['qkv_bias']).view(1, T, G, hd).transpose(1, 2)
    cos, sin = rope_tables(torch.arange(T), hd, cfg['rope_theta'], dtype)
    q = apply_rope(q, cos, sin, cfg['rope'])
    k = apply_rope(k, cos, sin, cfg['rope'])
    # repeat_kv: each K/V head serves H / G query heads
    k = k.repeat_interleave(H // G, dim=1)
    v = v.repeat_interleave(H // G, dim=1)
    scores = (q @ k.transpose(2, 3)) / math.sqrt(hd)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(mask, float('-inf'))
    probs = torch.softmax(scores, dim=-1)
    ctx = (probs @ v).transpose(1, 2).reshape(T, H * hd)
    out = ctx @ w['o_proj.weight'].to(dtype).T
    if cfg['o_bias']:
        out = out + w['o_proj.bias'].to(dtype)
    return out


def stored(t, dtype):
    """The values a checkpoint in `dtype` holds (float32 tensor) and their raw bytes."""
    if dtype == 'F32':
        return t, t.contiguous().numpy().tobytes()
    tt = t.to(torch.float16 if dtype == 'F16' else torch.bfloat16)
    raw = tt.contiguous().view(torch.int16).numpy().tobytes()
    return tt.to(torch.float32), raw


def write(path, entries, meta):
    """entries: name -> (dtype string, shape, raw bytes)."""
    header = {'__metadata__': meta}
    data = b''
    for name in sorted(entries):
        dt, shape, blob = entries[name]
        header[name] = {'dtype': dt, 'shape': list(shape), 'data_offsets': [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + data)


def make_case(path, cfg, seed):
    g = torch.Generator().manual_seed(seed)
    d, H, G, hd = cfg['d_model'], cfg['num_heads'], cfg['num_kv_heads'], cfg['head_dim']
    shapes = {'q_proj.weight': (H * hd, d), 'k_proj.weight': (G * hd, d),
              'v_proj.weight': (G * hd, d), 'o_proj.weight': (d, H * hd)}
    if cfg['qkv_bias']:
        shapes.update({'q_proj.bias': (H * hd,), 'k_proj.bias': (G * hd,), 'v_proj.bias': (G * hd,)})
    if cfg['o_bias']:
        shapes['o_proj.bias'] = (d,)
    entries = {}
    weights = None
    for layer in (cfg['layer'], cfg['layer'] + 1):  # the next layer is a decoy with other values
        w = {}
        for name, shape in shapes.items():
            fan_in = shape[1] if len(shape) == 2 else d
            t = (torch.rand(shape, generator=g) * 2 - 1) / math.sqrt(fan_in)
            t, raw = stored(t, cfg['dtype'])
            w[name] = t
            entries['model.layers.%d.self_attn.%s' % (layer, name)] = (cfg['dtype'], shape, raw)
        if layer == cfg['layer']:
            weights = w
    B, T = len(cfg['lengths']), max(cfg['lengths'])
    x = torch.rand((B, T, d), generator=g) * 2 - 1
    y = torch.zeros((B, T, d))
    y64 = torch.zeros((B, T, d), dtype=torch.float64)
    for b, L in enumerate(cfg['lengths']):
        y[b, :L] = llama_attention(x[b, :L], weights, cfg, torch.float32)
        y64[b, :L] = llama_attention(x[b, :L], weights, cfg, torch.float64)
    hi = y64.to(torch.float32)
    lo = (y64 - hi.to(torch.float64)).to(torch.float32)
    io = {}
    for name, t in (('x', x), ('y', y), ('y64_hi', hi), ('y64_lo', lo)):
        io[name] = ('F32', t.shape, t.contiguous().numpy().tobytes())
    meta = {k: str(cfg[k]).lower() if isinstance(cfg[k], bool) else str(cfg[k])
            for k in ('layer', 'num_heads', 'num_kv_heads', 'head_dim', 'rope', 'rope_theta',
                      'context_length', 'qkv_bias', 'o_bias', 'dtype')}
    meta['lengths'] = ','.join(str(L) for L in cfg['lengths'])
    meta['format'] = 'pt'
    write(path, entries, meta)  # the checkpoint alone: every tensor in its storage type
    folder, name = os.path.split(path)
    os.makedirs(os.path.join(folder, 'io'), exist_ok=True)
    write(os.path.join(folder, 'io', name), io, meta)
    err32 = (y.to(torch.float64) - y64).abs().max().item()
    print('%s: max |y32 - y64| = %.3g (max |y| %.3g)' % (path, err32, y64.abs().max().item()))


# The committed cases: GQA, MQA and MHA; both rotary layouts and none; theta from 1e4 to 1e6;
# Qwen2-style q/k/v biases and an o_proj bias; head_dim * H != d_model; ragged batches; F16 and
# BF16 checkpoints; T up to 300.
COMMITTED = [
    dict(d_model=64, num_heads=4, num_kv_heads=2, head_dim=16, rope='halves', rope_theta=10000.0,
         qkv_bias=True, o_bias=False, lengths=[37, 20], layer=0, dtype='F32'),
    dict(d_model=48, num_heads=6, num_kv_heads=1, head_dim=8, rope='interleaved',
         rope_theta=500000.0, qkv_bias=False, o_bias=True, lengths=[50], layer=2, dtype='F32'),
    dict(d_model=96, num_heads=4, num_kv_heads=4, head_dim=24, rope='halves', rope_theta=1000000.0,
         qkv_bias=True, o_bias=False, lengths=[64], layer=1, dtype='BF16'),
    dict(d_model=128, num_heads=8, num_kv_heads=2, head_dim=32, rope='none', rope_theta=10000.0,
         qkv_bias=False, o_bias=False, lengths=[100, 1, 57], layer=0, dtype='F16'),
    dict(d_model=64, num_heads=4, num_kv_heads=2, head_dim=32, rope='halves', rope_theta=10000.0,
         qkv_bias=False, o_bias=False, lengths=[300], layer=5, dtype='F32'),
]


def holdout_cfg(rng):
    hd = rng.choice([8, 16, 24, 32, 64, 80, 96, 128])
    G = rng.choice([1, 2, 4])
    H = G * rng.choice([1, 2, 3, 4])
    B = rng.choice([1, 2, 3])
    return dict(d_model=rng.choice([32, 64, 96, 128]), num_heads=H, num_kv_heads=G, head_dim=hd,
                rope=rng.choice(['halves', 'interleaved']),
                rope_theta=rng.choice([10000.0, 500000.0, 1000000.0]),
                qkv_bias=rng.random() < 0.5, o_bias=rng.random() < 0.3,
                lengths=[rng.randint(1, 300) for _ in range(B)], layer=rng.randint(0, 3),
                dtype=rng.choice(['F32', 'F32', 'F16', 'BF16']))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--holdout', type=int, default=0, help='write N random configurations instead')
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    if args.holdout:
        rng = random.Random(20261202)
        cases = [holdout_cfg(rng) for _ in range(args.holdout)]
        seed0 = 9000
    else:
        cases = COMMITTED
        seed0 = 100
    for i, cfg in enumerate(cases):
        cfg = dict(cfg)
        cfg['context_length'] = max(cfg['lengths'])
        make_case(os.path.join(args.out, 'llama_%d.safetensors' % i), cfg, seed0 + i)


if __name__ == '__main__':
    main()
