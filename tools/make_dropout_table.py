#!/usr/bin/env python3
"""tools/make_dropout_table.py — an independent expectation for the dropout mask.

Reimplements the counter-based hash of src/common/dropout.hpp from the definition written in
its comment (not from its code), and writes

  tests/unit/dropout_hash_table.inc     (plain python3, no torch)
      fixed (seed, b, h, i, j) tuples with the hash's top 53 bits and the keep/drop decision
      at several rates, as C++ initialisers for tests/unit/test_dropout_hash.cpp;

  tests/data/dropout/*.safetensors      (--torch, needs Debian's torch: /usr/bin/python3)
      the book's CausalAttention and MultiHeadAttention (tools/make_golden.py's classes) run in
      training mode, with nn.Dropout replaced by the same inverted dropout under the hash's
      mask; the script first checks against torch that nn.Dropout is exactly that (kept values
      times float32(1 / (1 - p)), dropped ones 0, identity in eval mode), so the files say what
      the book's forward gives for this mask.

Both outputs are deterministic (fixed tuples and seeds):
    python3 tools/make_dropout_table.py
    /usr/bin/python3 tools/make_dropout_table.py --torch
"""

import argparse
import os
import random
import struct
import sys

M64 = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)


def dropout_bits53(seed, b, h, i, j):
    s = mix64((seed + 0x9e3779b97f4a7c15) & M64)
    s = mix64(s ^ ((b * 0xd6e8feb86659fd93 + h) & M64))
    s = mix64(s ^ ((i * 0xa0761d6478bd642f + j) & M64))
    return s >> 11


def dropout_keep(p, seed, b, h, i, j):
    """u >= p with u = bits / 2^53: exact in integers as bits >= p * 2^53 (p a double, so
    p * 2^53 is exact too)."""
    return p <= 0.0 or dropout_bits53(seed, b, h, i, j) / 9007199254740992.0 >= p


RATES = (0.1, 0.25, 0.5, 0.75, 0.9)


def table_tuples():
    """Edge values (zero, all ones, large positions, large seeds) and random ones."""
    edge = [(0, 0, 0, 0, 0), (1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0), (0, 0, 0, 1, 0),
            (0, 0, 0, 0, 1), (M64, 0, 0, 0, 0), (M64, M64, M64, M64, M64), (42, 1, 2, 127, 128),
            (42, 1, 2, 128, 127), (42, 2, 1, 127, 128), (0x0123456789abcdef, 3, 11, 2047, 2048),
            (7, 0, 0, (1 << 24) - 1, (1 << 24) - 2), (12345, 15, 95, 4095, 0)]
    rng = random.Random(20261201)
    rand = []
    for _ in range(50):
        rand.append((rng.getrandbits(64), rng.randrange(16), rng.randrange(32),
                     rng.randrange(4096), rng.randrange(4096)))
    return edge + rand


def write_table(path):
    lines = ['// tests/unit/dropout_hash_table.inc — written by tools/make_dropout_table.py from',
             '// the definition in src/common/dropout.hpp; do not edit. One row per tuple:',
             '// {seed, b, h, i, j, top 53 bits of the hash, keep bits: bit r = kept at kRates[r]}.',
             '// kRates = {%s}' % ', '.join(repr(p) for p in RATES)]
    for t in table_tuples():
        bits = dropout_bits53(*t)
        keep = sum(1 << r for r, p in enumerate(RATES) if dropout_keep(p, *t))
        lines.append('{0x%016xULL, %dULL, %dULL, %dULL, %dULL, 0x%014xULL, 0x%02x},'
                     % (t + (bits, keep)))
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('wrote %d rows to %s' % (len(table_tuples()), path))


# ---------------------------------------------------------------------------------------------
# --torch: training-mode forwards of the book's classes under the hash's mask.
# ---------------------------------------------------------------------------------------------

def torch_cases(out):
    import torch
    import torch.nn as nn
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_golden as mg

    torch.set_num_threads(1)

    def f32(v):
        return struct.unpack('<f', struct.pack('<f', v))[0]

    # What nn.Dropout is, checked on torch itself: kept = x * float32(1/(1-p)), dropped = 0,
    # eval = identity.
    for p in (0.1, 0.3, 0.5, 0.9):
        torch.manual_seed(1)
        d = nn.Dropout(p)
        x = torch.rand(4096) + 0.5
        y = d.train()(x)
        kept = y != 0
        assert bool((y[kept] == x[kept] * f32(1.0 / (1.0 - p))).all()), p
        assert 0 < int(kept.sum()) < 4096
        assert bool((d.eval()(x) == x).all()), p

    class HashDropout(nn.Module):
        """nn.Dropout's arithmetic with the library's mask: weights [B, T, T] (single head) or
        [B, H, T, T]."""

        def __init__(self, p, seed):
            super().__init__()
            self.p, self.seed = p, seed

        def forward(self, w):
            shape = w.shape
            w4 = w if w.dim() == 4 else w.unsqueeze(1)
            B, H, T, S = w4.shape
            keep = torch.tensor([[[[1.0 if dropout_keep(self.p, self.seed, b, h, i, j) else 0.0
                                    for j in range(S)] for i in range(T)] for h in range(H)]
                                 for b in range(B)], dtype=w.dtype)
            if w.dtype == torch.float32:
                out = w4 * (keep * f32(1.0 / (1.0 - self.p)))  # what nn.Dropout computes
            else:
                out = w4 * keep / (1.0 - self.p)
            return out.reshape(shape)

    C, M = 'causal_attention', 'mha'
    cases = [
        ('causal_train', mg.case(C, 6, 4, 2, 16, context_length=16, dropout=0.3), 77),
        ('mha_train', mg.case(M, 8, 8, 2, 12, context_length=12, num_heads=2, qkv_bias=True,
                              dropout=0.25, dist='randn'), 1234),
    ]
    os.makedirs(out, exist_ok=True)
    total = 0
    for n, (stem, cfg, mask_seed) in enumerate(cases):
        torch.manual_seed(9000 + n)
        module = mg.build(cfg)
        x = torch.rand(cfg['batch'], cfg['tokens'], cfg['d_in']) if cfg['dist'] == 'rand' else \
            torch.randn(cfg['batch'], cfg['tokens'], cfg['d_in'])
        module.dropout = HashDropout(cfg['dropout'], mask_seed)
        module.train()
        import copy
        m64 = copy.deepcopy(module).double()
        with torch.no_grad():
            y32, w32 = mg.forward(module, cfg['module'], x)
            y64, w64 = mg.forward(m64, cfg['module'], x.double())
        y = y64.float()
        if not mg.rel_close(y32, y):
            raise SystemExit(stem + ': float32 and float64 disagree')
        tensors = {k: v.float() for k, v in module.state_dict().items()}
        tensors['x'], tensors['y'] = x, y
        if w64 is not None:
            tensors['attn_weights'] = w64.float()
        meta = {'module': cfg['module'], 'd_in': str(cfg['d_in']), 'd_out': str(cfg['d_out']),
                'context_length': str(cfg['context_length']),
                'num_heads': str(cfg['num_heads']),
                'qkv_bias': 'true' if cfg['qkv_bias'] else 'false',
                'dropout': repr(float(cfg['dropout'])), 'mask_seed': str(mask_seed),
                'generator': 'tools/make_dropout_table.py --torch (torch %s, float64 forward, '
                             'training mode, hash mask)' % torch.__version__}
        path = os.path.join(out, stem + '.safetensors')
        mg.write_safetensors(path, tensors, meta)
        total += os.path.getsize(path)
    print('wrote %d cases (%d bytes) to %s' % (len(cases), total, out))


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--table', default=os.path.join(root, 'tests', 'unit',
                                                    'dropout_hash_table.inc'))
    ap.add_argument('--torch', action='store_true', help='also write the torch training cases')
    ap.add_argument('--torch-out', default=os.path.join(root, 'tests', 'data', 'dropout'))
    args = ap.parse_args()
    write_table(args.table)
    if args.torch:
        torch_cases(args.torch_out)


if __name__ == '__main__':
    main()
