#!/usr/bin/env python3
"""tools/measure_dtype_error.py — the error of each storage type against the f32 reference.

GPT-2-small's attention shape (MultiHeadAttention d = 768, 12 heads, qkv_bias), nn.Linear-style
random weights U(-1/sqrt(768), 1/sqrt(768)) and x uniform in [-1, 1) (seeded), T tokens:
  truth     `simdattn run --backend reference` with f32 weights (double arithmetic)
  each row  `simdattn run` (fast backend) with --weight-dtype W, and with --prefill P --kv-dtype K
            for the cache types (prompt of P tokens, then one token at a time)
and reports, per row, the relative RMS error ||y - truth|| / ||truth|| and the largest
|y - truth| / max |truth|. Plain python3 (struct), no torch.

    python3 tools/measure_dtype_error.py build/release/tools/simdattn [--tokens 128]
"""

import argparse
import math
import os
import random
import struct
import subprocess
import sys
import tempfile


def write(path, tensors):
    header, data = {}, b''
    for name in sorted(tensors):
        shape, values = tensors[name]
        blob = struct.pack('<%df' % len(values), *values)
        header[name] = {'dtype': 'F32', 'shape': shape,
                        'data_offsets': [len(data), len(data) + len(blob)]}
        data += blob
    import json
    text = json.dumps(header).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + data)


def read_y(path):
    import json
    with open(path, 'rb') as f:
        blob = f.read()
    (n,) = struct.unpack('<Q', blob[:8])
    info = json.loads(blob[8:8 + n])['y']
    lo, hi = info['data_offsets']
    return struct.unpack('<%df' % ((hi - lo) // 4), blob[8 + n + lo:8 + n + hi])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('simdattn')
    ap.add_argument('--tokens', type=int, default=128)
    ap.add_argument('--prefill', type=int, default=32)
    args = ap.parse_args()
    d, heads, t = 768, 12, args.tokens
    rng = random.Random(12345)
    bound = 1.0 / math.sqrt(d)
    tensors = {}
    for name in ('W_query', 'W_key', 'W_value', 'out_proj'):
        tensors[name + '.weight'] = ([d, d], [rng.uniform(-bound, bound) for _ in range(d * d)])
        tensors[name + '.bias'] = ([d], [rng.uniform(-bound, bound) for _ in range(d)])
    work = tempfile.mkdtemp()
    wpath, xpath = os.path.join(work, 'w.safetensors'), os.path.join(work, 'x.safetensors')
    write(wpath, tensors)
    write(xpath, {'x': ([1, t, d], [rng.uniform(-1.0, 1.0) for _ in range(t * d)])})

    def run(out, *extra):
        subprocess.run([args.simdattn, 'run', '--module', 'mha', '--num-heads', str(heads),
                        '--input', xpath, '--weights', wpath, '--output', out] + list(extra),
                       check=True)
        return read_y(out)

    truth = run(os.path.join(work, 'truth.safetensors'), '--backend', 'reference')
    norm = math.sqrt(sum(v * v for v in truth))
    peak = max(abs(v) for v in truth)
    print('| weights | KV cache | rel. RMS error | max error / max abs |')
    print('|---|---|---|---|')
    rows = [('f32', None), ('f16', None), ('bf16', None), ('q8_0', None), ('q4_0', None),
            ('f32', 'f32'), ('f32', 'f16'), ('f32', 'bf16'), ('f32', 'q8_0'),
            ('f16', 'f16'), ('q8_0', 'q8_0'), ('q4_0', 'q8_0')]
    for w, kv in rows:
        extra = ['--weight-dtype', w]
        if kv is not None:
            extra += ['--prefill', str(args.prefill), '--kv-dtype', kv]
        y = run(os.path.join(work, 'y.safetensors'), *extra)
        err = [a - b for a, b in zip(y, truth)]
        rms = math.sqrt(sum(e * e for e in err)) / norm
        mx = max(abs(e) for e in err) / peak
        print('| %s | %s | %.2e | %.2e |' % (w, kv if kv else '(none: plain forward)', rms, mx))


if __name__ == '__main__':
    sys.exit(main())
