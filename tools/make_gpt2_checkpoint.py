#!/usr/bin/python3
"""tools/make_gpt2_checkpoint.py — tiny synthetic GPT-2 checkpoints (Hugging Face layout) and
the output of each layer's attention, computed with GPT-2's own attention math in PyTorch.

Writes into --out (tests/data/gpt2/ is committed):

  gpt2_tiny_f32.safetensors         every tensor of a GPT2LMHeadModel-style checkpoint, F32,
                                    keys prefixed `transformer.` (plus an unprefixed
                                    `lm_head.weight`, as such files carry)
  gpt2_tiny_half.safetensors        a GPT2Model-style checkpoint (no prefix) in half precision:
                                    layer 0's attention in F16, layer 1's in BF16, the rest F16,
                                    so one file exercises both conversions
  gpt2_tiny_f32_expected.safetensors / gpt2_tiny_half_expected.safetensors
                                    x [2, 16, 32] and y_layer{i} [2, 16, 32]: layer i's attention
                                    (c_attn, split heads, causal softmax with 1/sqrt(head_dim),
                                    merge heads, c_proj) applied to x

The model: n_embd 32, n_head 4, n_layer 2, n_positions 16, vocab 16. Every tensor of a real
checkpoint is present (ln_1/ln_2, mlp.c_fc/c_proj, attn.bias mask and attn.masked_bias buffers,
wte, wpe, ln_f) so a loader is tested on picking the attention out of the rest. c_attn.weight is
Conv1D's [in, out] = [32, 96] (x @ W + b), c_proj.weight [32, 32].

Why the expected y is exact: the weights are drawn in float32 and, for the half file, rounded to
F16/BF16 first; the reference then runs in float64 on exactly the values the file stores, and
the float64 result is rounded once to float32. The script checks that a float32 run of the same
math agrees within rel 1e-5, which shows a float32 implementation can meet the tests' tolerance.

Needs torch (Debian's), not the safetensors package:
    /usr/bin/python3 tools/make_gpt2_checkpoint.py --out tests/data/gpt2
"""

import argparse
import json
import math
import os
import struct

import torch

N_EMBD, N_HEAD, N_LAYER, N_POSITIONS, VOCAB = 32, 4, 2, 16, 16
BATCH, TOKENS = 2, 16

DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}


def gpt2_attention(x, c_attn_w, c_attn_b, c_proj_w, c_proj_b, n_head, mask, masked_bias):
    """GPT2Attention.forward of Hugging Face transformers (no cache, no head mask), written out:
    Conv1D c_attn, split into q/k/v, _split_heads, _attn (scale 1/sqrt(head_dim), the `bias`
    buffer as causal mask, softmax), _merge_heads, Conv1D c_proj."""
    b, t, d = x.shape
    hd = d // n_head
    qkv = x @ c_attn_w + c_attn_b                                  # Conv1D: x @ W + b
    q, k, v = qkv.split(d, dim=2)

    def split_heads(z):                                            # [B, T, d] -> [B, H, T, hd]
        return z.view(b, t, n_head, hd).permute(0, 2, 1, 3)

    q, k, v = split_heads(q), split_heads(k), split_heads(v)
    w = q @ k.transpose(-1, -2)
    w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype)
    causal = mask[:, :, :t, :t].to(torch.bool)
    w = torch.where(causal, w, torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype))
    w = torch.softmax(w, dim=-1)
    a = w @ v
    a = a.permute(0, 2, 1, 3).contiguous().view(b, t, d)           # _merge_heads
    return a @ c_proj_w + c_proj_b


def make_model(seed):
    """A checkpoint's tensors (float32), GPT2Model names without prefix. Weights ~ N(0, 0.2)
    and biases ~ N(0, 0.1), larger than GPT-2's init so the attention is far from uniform."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, std=0.2):
        return torch.randn(*shape, generator=g) * std

    d = N_EMBD
    m = {'wte.weight': randn(VOCAB, d), 'wpe.weight': randn(N_POSITIONS, d, std=0.01),
         'ln_f.weight': torch.ones(d), 'ln_f.bias': torch.zeros(d)}
    for i in range(N_LAYER):
        h = 'h.%d.' % i
        m[h + 'ln_1.weight'] = 1 + randn(d, std=0.05)
        m[h + 'ln_1.bias'] = randn(d, std=0.05)
        m[h + 'attn.bias'] = torch.tril(torch.ones(N_POSITIONS, N_POSITIONS)).view(
            1, 1, N_POSITIONS, N_POSITIONS)
        m[h + 'attn.masked_bias'] = torch.tensor(-1e4)
        m[h + 'attn.c_attn.weight'] = randn(d, 3 * d)
        m[h + 'attn.c_attn.bias'] = randn(3 * d, std=0.1)
        m[h + 'attn.c_proj.weight'] = randn(d, d)
        m[h + 'attn.c_proj.bias'] = randn(d, std=0.1)
        m[h + 'ln_2.weight'] = 1 + randn(d, std=0.05)
        m[h + 'ln_2.bias'] = randn(d, std=0.05)
        m[h + 'mlp.c_fc.weight'] = randn(d, 4 * d)
        m[h + 'mlp.c_fc.bias'] = randn(4 * d, std=0.1)
        m[h + 'mlp.c_proj.weight'] = randn(4 * d, d)
        m[h + 'mlp.c_proj.bias'] = randn(d, std=0.1)
    return m


def tensor_bytes(t, dtype):
    """Little-endian raw bytes of t in the safetensors dtype (values already representable)."""
    t = t.detach().to(DTYPES[dtype]).contiguous().reshape(-1)
    if dtype == 'F32':
        return struct.pack('<%df' % t.numel(), *t.tolist())
    bits = t.view(torch.int16).tolist()                             # the exact 16-bit patterns
    return struct.pack('<%dh' % len(bits), *bits)


def write_safetensors(path, tensors, dtypes=None, metadata=None):
    """tensors: name -> float tensor; dtypes: name -> 'F32' | 'F16' | 'BF16' (default F32)."""
    header = {'__metadata__': metadata} if metadata else {}
    blobs, offset = [], 0
    for name in sorted(tensors):
        dtype = (dtypes or {}).get(name, 'F32')
        data = tensor_bytes(tensors[name], dtype)
        header[name] = {'dtype': dtype, 'shape': list(tensors[name].shape),
                        'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - len(text) % 8) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def expected_outputs(model, x):
    """y_layer{i} of every layer, float64 math on the stored values, rounded once to float32."""
    out = {'x': x}
    for i in range(N_LAYER):
        h = 'h.%d.attn.' % i
        args = [model[h + k] for k in ('c_attn.weight', 'c_attn.bias', 'c_proj.weight',
                                       'c_proj.bias')]
        mask, masked_bias = model[h + 'bias'], model[h + 'masked_bias']
        with torch.no_grad():
            y64 = gpt2_attention(x.double(), *[a.double() for a in args], N_HEAD, mask,
                                 masked_bias)
            y32 = gpt2_attention(x, *args, N_HEAD, mask, masked_bias)
        y = y64.float()
        err = ((y32 - y).abs() - 1e-5 * y.abs() - 1e-6 * y.abs().max()).max().item()
        if err > 0:
            raise SystemExit('float32 and float64 disagree beyond rel 1e-5 on layer %d' % i)
        out['y_layer%d' % i] = y
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', required=True, help='output folder (created if missing)')
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    meta = {'n_embd': str(N_EMBD), 'n_head': str(N_HEAD), 'n_layer': str(N_LAYER),
            'n_positions': str(N_POSITIONS),
            'generator': 'tools/make_gpt2_checkpoint.py (torch %s)' % torch.__version__}

    # F32, GPT2LMHeadModel names: `transformer.` prefix, lm_head tied to wte.
    model = make_model(seed=2024)
    full = {'transformer.' + k: v for k, v in model.items()}
    full['lm_head.weight'] = model['wte.weight']
    write_safetensors(os.path.join(args.out, 'gpt2_tiny_f32.safetensors'), full, metadata=meta)
    x = torch.randn(BATCH, TOKENS, N_EMBD, generator=torch.Generator().manual_seed(7))
    write_safetensors(os.path.join(args.out, 'gpt2_tiny_f32_expected.safetensors'),
                      expected_outputs(model, x), metadata=meta)

    # Half precision, GPT2Model names: layer 0's attention F16, layer 1's BF16, the rest F16.
    # The reference uses the rounded values, i.e. exactly what a reader converts back to f32.
    model = make_model(seed=2025)
    dtypes = {}
    for name in model:
        dtype = 'BF16' if name.startswith('h.1.attn.') else 'F16'
        if name.endswith('attn.masked_bias'):
            dtype = 'F32'  # -1e4 as transformers stores it
        dtypes[name] = dtype
        model[name] = model[name].to(DTYPES[dtype]).to(torch.float32)
    write_safetensors(os.path.join(args.out, 'gpt2_tiny_half.safetensors'), model, dtypes,
                      metadata=meta)
    x = torch.randn(BATCH, TOKENS, N_EMBD, generator=torch.Generator().manual_seed(8))
    write_safetensors(os.path.join(args.out, 'gpt2_tiny_half_expected.safetensors'),
                      expected_outputs(model, x), metadata=meta)
    for name in sorted(os.listdir(args.out)):
        print('%-40s %7d bytes' % (name, os.path.getsize(os.path.join(args.out, name))))


if __name__ == '__main__':
    main()
