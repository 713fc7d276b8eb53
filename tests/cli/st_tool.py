#!/usr/bin/env python3
"""tests/cli/st_tool.py — safetensors helper for the CLI tests, standard library only (CI has
no torch and no `safetensors` package). It reads and writes F32 files and compares outputs of
`simdattn run` with the golden data, independently of the library's own safetensors code.

  st_tool.py meta FILE KEY                    print a "__metadata__" value
  st_tool.py split GOLDEN WEIGHTS_OUT         copy every tensor but x / y / attn_weights
  st_tool.py take SRC DST NAME [NAME...]      copy the named tensors
  st_tool.py rand DST NAME D0 [D1...]         a tensor of the given shape with values in [0, 1)
  st_tool.py compare EXPECTED ACTUAL [RTOL]   y and attn_weights: shapes, then
                                              |a-e| <= RTOL*|e| + 1e-6*max|e| (NaN fails)
  st_tool.py cases GOLDEN_DIR WORK            for each golden case: write WORK/NAME.weights.safetensors
                                              and print "NAME MODULE NUM_HEADS CONTEXT_LENGTH"
  st_tool.py batch                            run the commands on stdin, one per line
                                              (one interpreter start for many commands)
"""

import glob
import json
import math
import os
import random
import shlex
import struct
import sys

SKIP = ('x', 'y', 'attn_weights')


def read(path):
    with open(path, 'rb') as f:
        blob = f.read()
    (n,) = struct.unpack('<Q', blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop('__metadata__', {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if info['dtype'] != 'F32':
            raise SystemExit('%s: %s has dtype %s, only F32 is handled' % (path, name, info['dtype']))
        lo, hi = info['data_offsets']
        count = (hi - lo) // 4
        tensors[name] = (list(info['shape']), list(struct.unpack('<%df' % count, blob[base + lo:base + hi])))
    return tensors, meta


def write(path, tensors, meta=None):
    header = {}
    if meta:
        header['__metadata__'] = meta
    data = b''
    for name in sorted(tensors):
        shape, values = tensors[name]
        blob = struct.pack('<%df' % len(values), *values)
        header[name] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + data)


def compare(expected_path, actual_path, rtol):
    expected, _ = read(expected_path)
    actual, _ = read(actual_path)
    keys = [k for k in ('y', 'attn_weights') if k in expected]
    if sorted(actual) != sorted(keys):
        raise SystemExit('%s holds %s, expected %s' % (actual_path, sorted(actual), sorted(keys)))
    for k in keys:
        (es, ev), (as_, av) = expected[k], actual[k]
        if es != as_:
            raise SystemExit('%s: shape %s, expected %s' % (k, as_, es))
        atol = 1e-6 * max((abs(v) for v in ev), default=0.0)
        worst = 0.0
        for i, (e, a) in enumerate(zip(ev, av)):
            d = abs(a - e)
            if not (d <= atol + rtol * abs(e)):
                raise SystemExit('%s: %s[%d] = %r, expected %r (|diff| %.3g)'
                                 % (actual_path, k, i, a, e, d))
            if e != 0:
                worst = max(worst, d / abs(e))
        print('%s %s ok (max rel err %.2e)' % (actual_path, k, worst))


def cases(golden_dir, work):
    paths = sorted(glob.glob(os.path.join(golden_dir, '*.safetensors')))
    for path in paths:
        name = os.path.basename(path)[:-len('.safetensors')]
        tensors, meta = read(path)
        if meta['module'] != 'simple':
            write(os.path.join(work, name + '.weights.safetensors'),
                  {k: v for k, v in tensors.items() if k not in SKIP})
        print(name, meta['module'], meta['num_heads'], meta['context_length'])


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == 'batch':
        for line in sys.stdin:
            if line.strip():
                main([argv[0]] + shlex.split(line))
    elif cmd == 'cases':
        cases(args[0], args[1])
    elif cmd == 'meta':
        print(read(args[0])[1][args[1]])
    elif cmd == 'split':
        tensors, _ = read(args[0])
        write(args[1], {k: v for k, v in tensors.items() if k not in SKIP})
    elif cmd == 'take':
        tensors, _ = read(args[0])
        write(args[1], {k: tensors[k] for k in args[2:]})
    elif cmd == 'rand':
        shape = [int(s) for s in args[2:]]
        rng = random.Random(1)
        write(args[0], {args[1]: (shape, [rng.random() for _ in range(math.prod(shape))])})
    elif cmd == 'compare':
        compare(args[0], args[1], float(args[2]) if len(args) > 2 else 1e-5)
    else:
        raise SystemExit('unknown command ' + cmd)


if __name__ == '__main__':
    main(sys.argv)
