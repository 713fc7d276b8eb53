"""Writes tests/data/consumer_mha_d8_h2.safetensors: MultiHeadAttention(8, 8, heads=2,
qkv_bias=True) weights under the book's state_dict() names, for the C consumer example.
Standard library only; deterministic."""
import json
import random
import struct
import sys

d = 8
rng = random.Random(2024)
tensors = {}
for name in ("W_query", "W_key", "W_value", "out_proj"):
    tensors[f"{name}.weight"] = ([d, d], [rng.uniform(-0.35, 0.35) for _ in range(d * d)])
    tensors[f"{name}.bias"] = ([d], [rng.uniform(-0.35, 0.35) for _ in range(d)])

header, data, offset = {}, b"", 0
for name in sorted(tensors):
    shape, values = tensors[name]
    blob = struct.pack(f"<{len(values)}f", *values)
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
    data += blob
    offset += len(blob)
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
