#!/usr/bin/python3
"""tools/make_golden.py — PyTorch golden data for the chapter-3 attention modules.

Implements the book's classes ("Build a Large Language Model (From Scratch)", ch. 3) as the book
writes them, runs them with fixed seeds in eval mode and writes one safetensors file per case:
the module's state_dict() (exact names, including the `mask` buffers), the input `x`, the output
`y` and, for the single-head modules, `attn_weights`; the configuration goes into
"__metadata__" as strings (module, d_in, d_out, context_length, num_heads, qkv_bias, dropout).

Needs Debian's torch, so run it with the system interpreter:
    /usr/bin/python3 tools/make_golden.py --set golden  --out tests/data/golden
    /usr/bin/python3 tools/make_golden.py --set holdout --out /tmp/simdattn-holdout
    /usr/bin/python3 tools/make_golden.py --set long    --out tests/data/golden_long

`golden` is committed and read by tests/unit/test_golden.cpp and tests/cli/; `holdout` is a
disjoint set of configurations (other seeds, other sizes) that no test sees, used to check
`simdattn run` on configurations nobody tuned against. `long` (committed, read by
tests/unit/test_golden_long.cpp) holds a few sizes that reach the fast path's blocking; see
write_long(). Neither needs the `safetensors` package:
the format is written with struct + json.

Why the stored y is computed in float64: weights and inputs are drawn in float32 (so they are
exact in both precisions), then the same module is run once in float32, as the book does, and
once in float64. The float64 result, rounded to float32, is stored: it is the exact answer up to
one rounding, so a test tolerance measures the library's error alone. The script checks that the
float32 run agrees with it within the tests' tolerance, which shows a plain float32
implementation can meet it.
"""

import argparse
import json
import math
import os
import random
import struct
import sys

import torch
import torch.nn as nn


# ---------------------------------------------------------------------------------------------
# The book's classes. The only addition is `self.last_attn_weights`, a side record of the
# attention weights the forward already computes (the book's forward does not return them).
# ---------------------------------------------------------------------------------------------

def simple_attention(inputs):
    """§3.3.2: self-attention without trainable weights (2-D input, as in the book)."""
    attn_scores = inputs @ inputs.T
    attn_weights = torch.softmax(attn_scores, dim=-1)
    all_context_vecs = attn_weights @ inputs
    return all_context_vecs, attn_weights


class SelfAttention_v1(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x):
        keys = x @ self.W_key
        queries = x @ self.W_query
        values = x @ self.W_value
        attn_scores = queries @ keys.T  # omega
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        self.last_attn_weights = attn_weights
        context_vec = attn_weights @ values
        return context_vec


class SelfAttention_v2(nn.Module):
    def __init__(self, d_in, d_out, qkv_bias=False):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)

    def forward(self, x):
        keys = self.W_key(x)
        queries = self.W_query(x)
        values = self.W_value(x)
        attn_scores = queries @ keys.T
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        self.last_attn_weights = attn_weights
        context_vec = attn_weights @ values
        return context_vec


class CausalAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.d_out = d_out
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer('mask', torch.triu(torch.ones(context_length, context_length),
                                                diagonal=1))

    def forward(self, x):
        b, num_tokens, d_in = x.shape
        keys = self.W_key(x)
        queries = self.W_query(x)
        values = self.W_value(x)
        attn_scores = queries @ keys.transpose(1, 2)
        attn_scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        self.last_attn_weights = attn_weights
        context_vec = attn_weights @ values
        return context_vec


class MultiHeadAttentionWrapper(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.heads = nn.ModuleList(
            [CausalAttention(d_in, d_out, context_length, dropout, qkv_bias)
             for _ in range(num_heads)])

    def forward(self, x):
        return torch.cat([head(x) for head in self.heads], dim=-1)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        assert (d_out % num_heads == 0), "d_out must be divisible by num_heads"
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer('mask', torch.triu(torch.ones(context_length, context_length),
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


# ---------------------------------------------------------------------------------------------
# Running a case. The library accepts [T, d_in] and [B, T, d_in] for every module; the book's
# classes take what the book gives them (2-D for simple/v1/v2, 3-D for the causal ones), so the
# adapters below apply a 2-D module to each batch element, or add a batch axis of one.
# ---------------------------------------------------------------------------------------------

SINGLE_HEAD = ('simple', 'self_attention_v1', 'self_attention_v2', 'causal_attention')

BOOK_INPUTS = [[0.43, 0.15, 0.89],  # Your     (x^1)
               [0.55, 0.87, 0.66],  # journey  (x^2)
               [0.57, 0.85, 0.64],  # starts   (x^3)
               [0.22, 0.58, 0.33],  # with     (x^4)
               [0.77, 0.25, 0.10],  # one      (x^5)
               [0.05, 0.80, 0.55]]  # step     (x^6)


def build(cfg):
    m = cfg['module']
    if m == 'simple':
        return None
    if m == 'self_attention_v1':
        return SelfAttention_v1(cfg['d_in'], cfg['d_out'])
    if m == 'self_attention_v2':
        return SelfAttention_v2(cfg['d_in'], cfg['d_out'], cfg['qkv_bias'])
    if m == 'causal_attention':
        return CausalAttention(cfg['d_in'], cfg['d_out'], cfg['context_length'], cfg['dropout'],
                               cfg['qkv_bias'])
    if m == 'mha_wrapper':
        return MultiHeadAttentionWrapper(cfg['d_in'], cfg['d_out'], cfg['context_length'],
                                         cfg['dropout'], cfg['num_heads'], cfg['qkv_bias'])
    if m == 'mha':
        return MultiHeadAttention(cfg['d_in'], cfg['d_out'], cfg['context_length'],
                                  cfg['dropout'], cfg['num_heads'], cfg['qkv_bias'])
    raise ValueError('unknown module ' + m)


def forward(module, name, x):
    """Returns (y, attn_weights or None) with x's rank."""
    batched = x.dim() == 3
    if name in ('simple', 'self_attention_v1', 'self_attention_v2'):
        xs = list(x) if batched else [x]
        ys, ws = [], []
        for xb in xs:
            if name == 'simple':
                y, w = simple_attention(xb)
            else:
                y = module(xb)
                w = module.last_attn_weights
            ys.append(y)
            ws.append(w)
        if batched:
            return torch.stack(ys), torch.stack(ws)
        return ys[0], ws[0]
    xb = x if batched else x.unsqueeze(0)
    y = module(xb)
    w = module.last_attn_weights if name == 'causal_attention' else None
    if not batched:
        y = y.squeeze(0)
        w = w.squeeze(0) if w is not None else None
    return y, w


def rel_close(a, e, rtol=1e-5, atol_frac=1e-6):
    atol = atol_frac * float(e.abs().max()) if e.numel() else 0.0
    return bool(((a - e).abs() <= atol + rtol * e.abs()).all())


def make_case(cfg, check=None):
    """check(y32, y64_as_f32, cfg) -> error string or None; default: rel_close."""
    torch.manual_seed(cfg['seed'])
    module = build(cfg)
    if module is not None:
        module.eval()  # no dropout, whatever p the module was built with
    shape = ([cfg['batch']] if cfg['batch'] else []) + [cfg['tokens'], cfg['d_in']]
    if cfg.get('book_inputs'):
        x = torch.tensor(BOOK_INPUTS, dtype=torch.float32)
        if cfg['batch']:
            x = torch.stack([x] * cfg['batch'])
    elif cfg['dist'] == 'rand':
        x = torch.rand(*shape)
    else:
        x = torch.randn(*shape) * cfg['scale']
    assert list(x.shape) == shape, (x.shape, shape)

    with torch.no_grad():
        y32, w32 = forward(module, cfg['module'], x)
        module64 = None
        if module is not None:
            import copy
            module64 = copy.deepcopy(module).double()
        y64, w64 = forward(module64, cfg['module'], x.double())
    y, w = y64.float(), (w64.float() if w64 is not None else None)
    if check is not None:
        err = check(y32, y, cfg)
        if err:
            raise SystemExit('float32 run outside the tests\' tolerance for %r: %s' % (cfg, err))
    elif not rel_close(y32, y) or (w is not None and not rel_close(w32, w)):
        raise SystemExit('float32 and float64 disagree beyond tolerance for %r' % cfg)

    tensors = {}
    if module is not None:
        for k, v in module.state_dict().items():
            if cfg.get('drop_mask') and (k == 'mask' or k.endswith('.mask')):
                continue  # the library rebuilds it; T x T floats would dominate the file
            tensors[k] = v.detach().float().contiguous()
    tensors['x'] = x.contiguous()
    tensors['y'] = y.contiguous()
    if cfg['module'] in SINGLE_HEAD:
        tensors['attn_weights'] = w.contiguous()
    meta = {
        'module': cfg['module'],
        'd_in': str(cfg['d_in']),
        'd_out': str(cfg['d_out']),
        'context_length': str(cfg['context_length']),
        'num_heads': str(cfg['num_heads']),
        'qkv_bias': 'true' if cfg['qkv_bias'] else 'false',
        'dropout': repr(float(cfg['dropout'])),
        'seed': str(cfg['seed']),
        'generator': 'tools/make_golden.py (torch %s, float64 forward)' % torch.__version__,
    }
    return tensors, meta


# ---------------------------------------------------------------------------------------------
# safetensors, written by hand: u64 LE header length, JSON header, then the raw F32 data.
# ---------------------------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    header = {'__metadata__': metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        flat = t.reshape(-1).tolist()
        data = struct.pack('<%df' % len(flat), *flat)
        header[name] = {'dtype': 'F32', 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - len(text) % 8) % 8)  # the format recommends 8-byte aligned data
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# The configurations.
# ---------------------------------------------------------------------------------------------

def case(module, d_in, d_out, batch, tokens, context_length=0, num_heads=1, qkv_bias=False,
         dropout=0.0, dist='rand', scale=1.0, book_inputs=False):
    return dict(module=module, d_in=d_in, d_out=d_out, batch=batch, tokens=tokens,
                context_length=context_length, num_heads=num_heads, qkv_bias=qkv_bias,
                dropout=dropout, dist=dist, scale=scale, book_inputs=book_inputs)


def golden_cases():
    """Hand-picked: the book's own example, d_in != d_out both ways, bias on and off, B = 1..3
    and rank-2 inputs, T from 1 to context_length, 1 to 4 heads, dropout p > 0 in eval mode.
    batch 0 means a rank-2 [T, d_in] input."""
    S, V1, V2, C, W, M = ('simple', 'self_attention_v1', 'self_attention_v2',
                          'causal_attention', 'mha_wrapper', 'mha')
    return [
        case(S, 3, 3, 0, 6, book_inputs=True),
        case(S, 4, 4, 2, 5),
        case(S, 16, 16, 3, 8, dist='randn', scale=0.5),
        case(S, 7, 7, 0, 1),
        case(S, 2, 2, 1, 3, dist='randn', scale=2.0),
        case(V1, 3, 2, 0, 6, book_inputs=True),
        case(V1, 5, 7, 2, 4),
        case(V1, 16, 8, 3, 8, dist='randn'),
        case(V1, 4, 4, 1, 1),
        case(V2, 3, 2, 0, 6, book_inputs=True),
        case(V2, 6, 4, 2, 5, qkv_bias=True),
        case(V2, 16, 12, 3, 8, qkv_bias=True, dist='randn'),
        case(V2, 8, 3, 1, 7),
        case(C, 3, 2, 2, 6, context_length=6, dropout=0.5, book_inputs=True),
        case(C, 5, 8, 1, 3, context_length=8, qkv_bias=True),
        case(C, 16, 4, 3, 8, context_length=8, dist='randn'),
        case(C, 7, 7, 0, 4, context_length=4, qkv_bias=True),
        case(C, 4, 6, 2, 1, context_length=5, dropout=0.1),
        case(W, 3, 2, 2, 6, context_length=6, num_heads=2, book_inputs=True),
        case(W, 5, 3, 1, 5, context_length=8, num_heads=1, qkv_bias=True),
        case(W, 8, 4, 3, 8, context_length=8, num_heads=3, dist='randn'),
        case(W, 6, 5, 0, 7, context_length=7, num_heads=4, qkv_bias=True, dropout=0.2),
        case(W, 16, 2, 2, 3, context_length=4, num_heads=2, qkv_bias=True),
        case(M, 3, 2, 2, 6, context_length=6, num_heads=2, book_inputs=True),
        case(M, 5, 6, 1, 8, context_length=8, num_heads=3, qkv_bias=True),
        case(M, 16, 16, 3, 5, context_length=8, num_heads=4, qkv_bias=True, dist='randn'),
        case(M, 8, 4, 0, 6, context_length=6, num_heads=1),
        case(M, 6, 8, 2, 7, context_length=8, num_heads=2, dropout=0.1),
        case(M, 12, 12, 1, 1, context_length=8, num_heads=4, qkv_bias=True),
    ]


def holdout_cases(count_per_module=6):
    """Random configurations from a generator the golden set never uses; sizes a little beyond
    the golden set's (up to 24 features, 12 tokens)."""
    rng = random.Random(20240917)
    out = []
    for module in ('simple', 'self_attention_v1', 'self_attention_v2', 'causal_attention',
                   'mha_wrapper', 'mha'):
        for _ in range(count_per_module):
            d_in = rng.randint(1, 24)
            heads = rng.randint(1, 4) if module in ('mha_wrapper', 'mha') else 1
            if module == 'simple':
                d_out = d_in
            elif module == 'mha':
                d_out = heads * rng.randint(1, 6)
            else:
                d_out = rng.randint(1, 12)
            causal = module in ('causal_attention', 'mha_wrapper', 'mha')
            context_length = rng.randint(1, 12) if causal else 0
            tokens = rng.randint(1, context_length) if causal else rng.randint(1, 12)
            batch = rng.randint(0, 3)
            out.append(case(module, d_in, d_out, batch, tokens, context_length=context_length,
                            num_heads=heads,
                            qkv_bias=(module not in ('simple', 'self_attention_v1')
                                      and rng.random() < 0.5),
                            dropout=rng.choice([0.0, 0.1, 0.5]) if causal else 0.0,
                            dist=rng.choice(['rand', 'randn']),
                            scale=rng.choice([0.5, 1.0, 2.0])))
    return out


# ---------------------------------------------------------------------------------------------
# The `long` set: sizes that reach the fast path's real code paths, which the golden set's tiny
# shapes never do: T >= 64 with head_dim 64 (a multiple of every ISA's GEMM tile width) makes the
# QKV GEMM write Q/K/V head-major; T > 128 spans two or three 128-key flash blocks (257 and 300
# end in a block of 1 and of 44 keys); 1 and 2 threads give different query blockings. T >= 2048
# (16-panel query blocks) is left out: the data would be tens of MB.
#
# Read by tests/unit/test_golden_long.cpp, which checks every backend, usable ISA and thread
# count with a per-element error bound computed from the stored data; check_bound() below is the
# same bound, applied to PyTorch's own float32 run, so a plain float32 implementation is shown to
# meet it. The causal `mask` buffers are not stored (the library rebuilds them; 300 x 300 floats
# would be the largest tensor of the file).
# ---------------------------------------------------------------------------------------------

U = 2.0 ** -24  # unit roundoff of float32
LAMBDA = 6.0    # tolerance = LAMBDA standard deviations of the modelled float32 error (+ u|y|)


def sum_sigma(total, l2, n):
    """Standard deviation of the rounding error of an n-term float32 sum with that exact total
    and that l2 norm of its terms: each addition rounds its partial sum S_k with an error of
    standard deviation <= u |S_k|, and |S_k| <= |total| + ||terms||_2 covers both signed sums
    (partial sums ~ sqrt(k) rms) and same-sign ones (~ k mean), so sqrt(n) u (|total| + l2)."""
    return math.sqrt(n) * U * (total.abs() + l2)


def attention_sigma(x, wq, bq, wk, bk, wv, bv, wo, bo, heads):
    """Per-element standard deviation of the float32 rounding error of a causal multi-head
    attention forward (float64 tensors, nn.Linear layout [out, in]), propagated as independent
    errors (variances add) from the data: Q/K/V sums, the scores' error from Q and K errors and
    their own sum, the softmax's relative error per weight (its score's error, the row's common
    part, 2u for exp, the row sum), P.V, out_proj. tests/unit/test_golden_long.cpp computes the
    same quantities in the same order."""
    bsz, t, d_in = x.shape
    inner = wq.shape[0]
    hd = inner // heads
    scale = 1.0 / math.sqrt(hd)
    x2 = x * x

    def lin(w, b):
        y = x @ w.T
        l2sq = x2 @ (w * w).T
        if b is not None:
            y = y + b
            l2sq = l2sq + b * b
        n = d_in + (b is not None)
        return y, sum_sigma(y, l2sq.sqrt(), n)

    (q, sq), (k, sk), (v, sv) = lin(wq, bq), lin(wk, bk), lin(wv, bv)
    split = lambda z: z.view(bsz, t, heads, hd).transpose(1, 2)      # [B, H, T, hd]
    q, k, v, sq, sk, sv = map(split, (q, k, v, sq, sk, sv))
    causal = torch.ones(t, t, dtype=torch.bool).triu(1)
    dot = q @ k.transpose(2, 3)
    dot_l2 = ((q * q) @ (k * k).transpose(2, 3)).sqrt()
    # score s = scale * q.k: from Q and K errors, from the hd-term sum, from the scaling
    var_s = scale ** 2 * ((sq * sq) @ (k * k).transpose(2, 3) + (q * q) @ (sk * sk).transpose(2, 3)
                          + sum_sigma(dot, dot_l2, hd) ** 2) + (U * scale * dot) ** 2
    s = (dot * scale).masked_fill(causal, -math.inf)
    p = torch.softmax(s, dim=-1)
    var_s = var_s.masked_fill(causal, 0.0)
    p2 = p * p
    # relative error of weight p_ij: own score error and 2u for exp (independent per j), and a
    # part common to the row: sum_k p_k ds_k, the row sum of t exponentials, one rescale per
    # 128-key block of the online softmax, the division
    nblocks = (t + 127) // 128
    var_common = ((p2 * var_s).sum(-1, keepdim=True)
                  + (math.sqrt(t) * U * 2) ** 2 + (nblocks + 2) * U ** 2)
    ctx = p @ v
    v2 = v * v
    var_ind = ((p2 * (var_s + (2 * U) ** 2)) @ v2 + p2 @ (sv * sv)
               + sum_sigma(ctx, (p2 @ v2).sqrt(), t) ** 2)             # [B, H, T, hd]
    # out_proj, head by head: the common part of a head is coherent over its columns
    var_y = 0.0
    y = 0.0
    for h in range(heads):
        woh = wo[:, h * hd:(h + 1) * hd]                               # [d_out, hd]
        yh = ctx[:, h] @ woh.T                                         # [B, T, d_out]
        var_y = var_y + var_ind[:, h] @ (woh * woh).T + var_common[:, h] * yh * yh
        y = y + yh
    l2 = ((ctx.transpose(1, 2).reshape(bsz, t, inner) ** 2) @ (wo * wo).T
          + bo * bo).sqrt()
    var_y = var_y + sum_sigma(y + bo, l2, inner + 1) ** 2
    return var_y.sqrt()


def attention_tolerance(*args):
    return LAMBDA * attention_sigma(*args)


def check_bound(y32, y, bound):
    """None if |y32 - y| <= bound + u |y| everywhere, else a description of the worst element."""
    tol = bound + U * y.double().abs()  # + the stored y's own rounding
    ratio = (y32.double() - y.double()).abs() / tol
    worst = float(ratio.max())
    if os.environ.get('SIMDATTN_GOLDEN_VERBOSE'):
        print('  float32 torch: max |err| / tol = %.3g, max tol / max|y| = %.3g'
              % (worst, float(tol.max() / y.double().abs().max())))
    if not worst <= 1.0:
        return 'max |err| / tol = %.3g' % worst
    return None


def mha_bound_check(module, x):
    sd = {k: v.double() for k, v in module.state_dict().items()}
    g = lambda n: sd.get(n)
    return lambda y32, y, cfg: check_bound(y32, y, attention_tolerance(
        x.double(), g('W_query.weight'), g('W_query.bias'), g('W_key.weight'), g('W_key.bias'),
        g('W_value.weight'), g('W_value.bias'), g('out_proj.weight'), g('out_proj.bias'),
        cfg['num_heads']))


def long_mha_cases():
    """MultiHeadAttention, head_dim 64: x ~ N(0, 2^2) so that the scores (std ~ 4/3 with the
    default nn.Linear init) give a peaked softmax, where a wrong scale or a lost key shows."""
    M = 'mha'
    return [
        case(M, 64, 128, 2, 257, context_length=257, num_heads=2, dist='randn', scale=2.0),
        case(M, 96, 192, 1, 300, context_length=300, num_heads=3, qkv_bias=True,
             dist='randn', scale=2.0),
    ]


def make_long_mha(cfg):
    # make_case draws the module first, then x: rebuild both the same way for the bound.
    torch.manual_seed(cfg['seed'])
    module = build(cfg)
    shape = [cfg['batch'], cfg['tokens'], cfg['d_in']]
    x = torch.randn(*shape) * cfg['scale']
    cfg = dict(cfg, drop_mask=True)
    tensors, meta = make_case(cfg, check=mha_bound_check(module, x))
    assert torch.equal(tensors['x'], x), 'the bound was computed on another x'
    return tensors, meta


GPT2_LONG = dict(n_embd=128, n_head=2, batch=1, tokens=130, seed=31337)


def make_long_gpt2():
    """One GPT-2 attention layer in the Hugging Face checkpoint layout (Conv1D c_attn [d, 3d],
    c_proj [d, d], x @ W + b), head_dim 64, T = 130 (two key blocks, the second of 2 keys), run
    through GPT-2's own attention math (tools/make_gpt2_checkpoint.py), not the book's class.
    Weights ~ N(0, 0.1^2), biases ~ N(0, 0.1^2), x ~ N(0, 1): scores of std ~ 1.3."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_gpt2_checkpoint import gpt2_attention
    c = GPT2_LONG
    d, heads, t = c['n_embd'], c['n_head'], c['tokens']
    g = torch.Generator().manual_seed(c['seed'])
    randn = lambda *shape: torch.randn(*shape, generator=g)
    w_attn, b_attn = randn(d, 3 * d) * 0.1, randn(3 * d) * 0.1
    w_proj, b_proj = randn(d, d) * 0.1, randn(d) * 0.1
    x = randn(c['batch'], t, d)
    mask = torch.tril(torch.ones(t, t)).view(1, 1, t, t)
    masked_bias = torch.tensor(-1e4)
    with torch.no_grad():
        y64 = gpt2_attention(x.double(), w_attn.double(), b_attn.double(), w_proj.double(),
                             b_proj.double(), heads, mask, masked_bias)
        y32 = gpt2_attention(x, w_attn, b_attn, w_proj, b_proj, heads, mask, masked_bias)
    y = y64.float()
    wd, bd = w_attn.double(), b_attn.double()
    bound = attention_tolerance(x.double(), wd[:, :d].T, bd[:d], wd[:, d:2 * d].T, bd[d:2 * d],
                            wd[:, 2 * d:].T, bd[2 * d:], w_proj.double().T, b_proj.double(),
                            heads)
    err = check_bound(y32, y, bound)
    if err:
        raise SystemExit('gpt2 layer: float32 run outside the tests\' tolerance: ' + err)
    tensors = {'h.0.attn.c_attn.weight': w_attn, 'h.0.attn.c_attn.bias': b_attn,
               'h.0.attn.c_proj.weight': w_proj, 'h.0.attn.c_proj.bias': b_proj, 'x': x, 'y': y}
    meta = {'module': 'gpt2_layer', 'n_embd': str(d), 'n_head': str(heads),
            'n_positions': str(t), 'seed': str(c['seed']),
            'generator': 'tools/make_golden.py --set long (torch %s, float64 forward)'
                         % torch.__version__}
    return tensors, meta


def write_long(out):
    os.makedirs(out, exist_ok=True)
    total = 0
    items = []
    for i, cfg in enumerate(long_mha_cases()):
        cfg['seed'] = 5000 + i
        items.append(('mha_T%d_h%d' % (cfg['tokens'], cfg['num_heads']), make_long_mha(cfg)))
    items.append(('gpt2_layer_T%d' % GPT2_LONG['tokens'], make_long_gpt2()))
    for stem, (tensors, meta) in items:
        path = os.path.join(out, stem + '.safetensors')
        write_safetensors(path, tensors, meta)
        total += os.path.getsize(path)
    print('wrote %d cases (%d bytes) to %s' % (len(items), total, out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', required=True, help='output folder (created if missing)')
    ap.add_argument('--set', choices=('golden', 'holdout', 'long'), default='golden')
    args = ap.parse_args()
    torch.set_num_threads(1)  # determinism of the float32 cross-check
    if args.set == 'long':
        write_long(args.out)
        return

    cases = golden_cases() if args.set == 'golden' else holdout_cases()
    base_seed = 1000 if args.set == 'golden' else 777000
    os.makedirs(args.out, exist_ok=True)
    counters = {}
    total = 0
    for i, cfg in enumerate(cases):
        cfg['seed'] = base_seed + i
        n = counters.get(cfg['module'], 0)
        counters[cfg['module']] = n + 1
        tensors, meta = make_case(cfg)
        path = os.path.join(args.out, '%s_%d.safetensors' % (cfg['module'], n))
        write_safetensors(path, tensors, meta)
        total += os.path.getsize(path)
    print('wrote %d cases (%d bytes) to %s' % (len(cases), total, args.out))


if __name__ == '__main__':
    main()
