#!/usr/bin/env python3
"""tests/cli/kv_tool.py — helpers for the KV-cache and GPT-2 CLI tests, on top of st_tool.py
(standard library only).

  kv_tool.py causal_cases GOLDEN_DIR WORK     for each causal golden case: write
                                              WORK/NAME.weights.safetensors and print
                                              "NAME MODULE NUM_HEADS CONTEXT_LENGTH T"
  kv_tool.py compare_y EXPECTED ACTUAL [RTOL [KEY]]
                                              ACTUAL holds exactly `y`; it matches EXPECTED's
                                              KEY (default y): |a-e| <= RTOL*|e| + 1e-6*max|e|
  kv_tool.py decode_json FILE                 FILE is one JSON object from `simdattn decode
                                              --json` with sane values; prints a summary
  kv_tool.py make_x WEIGHTS OUT B T SEED      OUT: a random x [B, T, d_in] for WEIGHTS' module
  kv_tool.py poke OUT SRC B T VALUE           OUT: SRC's x with x[B, T, :] = VALUE (nan, inf, -inf)
  kv_tool.py nonfinite CLEAN POKED B T MODE   POKED's y against CLEAN's (same module, x clean):
                                              batch rows other than B match CLEAN; in row B,
                                              MODE plain (the book: every element NaN) or
                                              cached (tokens < T match CLEAN, every later token
                                              has a non-finite element)
  kv_tool.py batch                            the commands on stdin, one per line
"""

import json
import math
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_tool  # noqa: E402

CAUSAL = ('causal_attention', 'mha_wrapper', 'mha')


def causal_cases(golden_dir, work):
    import glob
    for path in sorted(glob.glob(os.path.join(golden_dir, '*.safetensors'))):
        name = os.path.basename(path)[:-len('.safetensors')]
        tensors, meta = st_tool.read(path)
        if meta['module'] not in CAUSAL:
            continue
        st_tool.write(os.path.join(work, name + '.weights.safetensors'),
                      {k: v for k, v in tensors.items() if k not in st_tool.SKIP})
        shape = tensors['x'][0]
        print(name, meta['module'], meta['num_heads'], meta['context_length'], shape[-2])


def compare_y(expected_path, actual_path, rtol=1e-5, key='y'):
    expected, _ = st_tool.read(expected_path)
    actual, _ = st_tool.read(actual_path)
    if sorted(actual) != ['y']:
        raise SystemExit('%s holds %s, expected only y' % (actual_path, sorted(actual)))
    (es, ev), (as_, av) = expected[key], actual['y']
    if es != as_:
        raise SystemExit('%s: y shape %s, expected %s' % (actual_path, as_, es))
    atol = 1e-6 * max((abs(v) for v in ev), default=0.0)
    worst = 0.0
    for i, (e, a) in enumerate(zip(ev, av)):
        d = abs(a - e)
        if not (d <= atol + rtol * abs(e)):
            raise SystemExit('%s: y[%d] = %r, expected %s[%d] = %r (|diff| %.3g)'
                             % (actual_path, i, a, key, i, e, d))
        if e != 0:
            worst = max(worst, d / abs(e))
    print('%s y ok against %s (max rel err %.2e)' % (actual_path, key, worst))


def decode_json(path):
    with open(path) as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    if len(lines) != 1:
        raise SystemExit('%s: %d lines, expected one JSON object' % (path, len(lines)))
    out = json.loads(lines[0])
    for key in ('prefill_s', 'decode_median_ms', 'decode_p90_ms', 'tokens_per_s'):
        v = out.get(key)
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise SystemExit('%s: %s = %r' % (path, key, v))
    if not out['tokens_per_s'] > 0 or out['decode_p90_ms'] < out['decode_median_ms']:
        raise SystemExit('%s: inconsistent timings %r' % (path, out))
    cfg = out.get('config', {})
    for key in ('prompt_tokens', 'new_tokens', 'd_model', 'heads', 'batch', 'layers'):
        if not isinstance(cfg.get(key), int):
            raise SystemExit('%s: config.%s missing' % (path, key))
    if not isinstance(out.get('isa'), str) or not isinstance(out.get('threads'), int):
        raise SystemExit('%s: isa/threads missing' % path)
    if out.get('checksum') is None:
        raise SystemExit('%s: the decoded values are not finite' % path)
    print('%s ok: %s' % (path, json.dumps(cfg, sort_keys=True)))
    return out


def make_x(weights_path, out, batch, tokens, seed):
    import random
    tensors, _ = st_tool.read(weights_path)
    key = next(k for k in sorted(tensors) if k.endswith('W_query.weight'))
    d_in = tensors[key][0][1]
    rng = random.Random(seed)
    st_tool.write(out, {'x': ([batch, tokens, d_in],
                              [rng.uniform(-1, 1) for _ in range(batch * tokens * d_in)])})


def poke(out, src, b, t, value):
    tensors, _ = st_tool.read(src)
    shape, values = tensors['x']
    d = shape[2]
    base = (b * shape[1] + t) * d
    values[base:base + d] = [float(value)] * d
    st_tool.write(out, {'x': (shape, values)})


def nonfinite(clean_path, poked_path, b, t, mode):
    (shape, clean), (pshape, got) = st_tool.read(clean_path)[0]['y'], st_tool.read(poked_path)[0]['y']
    if shape != pshape:
        raise SystemExit('%s: y shape %s, expected %s' % (poked_path, pshape, shape))
    batch, tokens, d = shape
    atol = 1e-6 * max((abs(v) for v in clean), default=0.0)
    for bb in range(batch):
        for tt in range(tokens):
            row = got[(bb * tokens + tt) * d:(bb * tokens + tt + 1) * d]
            want = clean[(bb * tokens + tt) * d:(bb * tokens + tt + 1) * d]
            where = '%s: batch %d token %d' % (poked_path, bb, tt)
            if bb == b and mode == 'plain':
                if not all(math.isnan(v) for v in row):
                    raise SystemExit(where + ': expected all NaN (the book: 0 * NaN), got %r' % row[:4])
            elif bb == b and tt >= t:
                if all(math.isfinite(v) for v in row):
                    raise SystemExit(where + ': sees the non-finite token but is finite')
            else:
                for c, (a, e) in enumerate(zip(row, want)):
                    if not (abs(a - e) <= atol + 1e-5 * abs(e)):
                        raise SystemExit(where + ' col %d: %r, expected %r' % (c, a, e))
    print('%s: %s semantics hold' % (poked_path, mode))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == 'batch':
        for line in sys.stdin:
            if line.strip():
                main([argv[0]] + shlex.split(line))
    elif cmd == 'causal_cases':
        causal_cases(args[0], args[1])
    elif cmd == 'compare_y':
        compare_y(args[0], args[1], float(args[2]) if len(args) > 2 else 1e-5,
                  args[3] if len(args) > 3 else 'y')
    elif cmd == 'make_x':
        make_x(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif cmd == 'poke':
        poke(args[0], args[1], int(args[2]), int(args[3]), args[4])
    elif cmd == 'nonfinite':
        nonfinite(args[0], args[1], int(args[2]), int(args[3]), args[4])
    elif cmd == 'decode_json':
        decode_json(args[0])
    else:
        raise SystemExit('unknown command ' + cmd)


if __name__ == '__main__':
    main(sys.argv)
