#!/usr/bin/env python3
"""Regenerates the safetensors test corpus: tests/data/malformed/ and tests/data/valid/.

Standard library only. Every file in malformed/ is named after what is wrong with it and must be
rejected with Error(format); malformed/expected_errors.tsv maps each file to a substring of the
error message, so a file rejected for the wrong reason fails the test. Files in valid/ must load;
the unit tests check their contents. The corpus also seeds the libFuzzer smoke run.

    python3 tools/make_malformed_safetensors.py
"""

import json
import math
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
U64_MAX = 2**64 - 1


def u64(n):
    return struct.pack("<Q", n)


def file_bytes(header, data=b"", length=None):
    """A safetensors file: header is a dict (dumped as JSON) or raw str/bytes used verbatim;
    length overrides the 8-byte header length prefix."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode("utf-8")
    return u64(len(header) if length is None else length) + header + data


def entry(dtype="F32", shape=(2,), offsets=(0, 8), **extra):
    as_json = lambda v: list(v) if isinstance(v, (tuple, list)) else v  # noqa: E731
    e = {"dtype": dtype, "shape": as_json(shape), "data_offsets": as_json(offsets)}
    e.update(extra)
    return e


def without(d, key):
    d = dict(d)
    del d[key]
    return d


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


W = entry()  # one F32 [2] tensor over 8 bytes of data
DATA8 = f32(1.0, 2.0)

# (file name, bytes, substring of the error message)
MALFORMED = [
    ("empty_file", b"", "too short for the 8-byte header length"),
    ("length_prefix_truncated", b"\x10\x00\x00", "too short for the 8-byte header length"),
    ("header_len_past_eof", file_bytes("{}", length=1000), "runs past the end of the file"),
    ("header_len_u64_max", file_bytes("{}", length=U64_MAX), "exceeds the limit"),
    ("header_len_over_cap", file_bytes("{}", length=100_000_001), "exceeds the limit"),
    ("header_len_zero", file_bytes("", length=0), "header length is 0"),
    ("header_len_cuts_json", file_bytes({"w": W}, DATA8, length=len(json.dumps({"w": W}, separators=(",", ":"))) - 1),
     "not valid JSON"),
    ("header_not_json", file_bytes("hello world!"), "not valid JSON"),
    ("header_truncated_json", file_bytes('{"w": {"dtype": "F32"'), "not valid JSON"),
    ("header_trailing_garbage", file_bytes("{} x"), "not valid JSON"),
    ("header_nul_padding", file_bytes(b"{}\x00\x00\x00\x00\x00\x00"), "NUL byte at header offset 2"),
    ("header_nul_hides_garbage", file_bytes(b'{"w": 1}\x00' + b"garbage"), "NUL byte at header offset 8"),
    ("header_invalid_utf8", file_bytes(b'{"\xff\xfe": 1}'), "not valid JSON"),
    ("header_number_out_of_range", file_bytes('{"w": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 0]}}'),
     "not valid JSON"),
    ("header_not_object_array", file_bytes("[1, 2]"), "must be a JSON object, not array"),
    ("header_not_object_string", file_bytes('"F32"'), "must be a JSON object, not string"),
    ("header_not_object_null", file_bytes("null"), "must be a JSON object, not null"),
    ("entry_not_object", file_bytes({"w": 5}), "tensor 'w': entry must be an object, not number"),
    ("entry_missing_dtype", file_bytes({"w": without(W, "dtype")}, DATA8), "tensor 'w': field 'dtype' is missing"),
    ("entry_missing_shape", file_bytes({"w": without(W, "shape")}, DATA8), "tensor 'w': field 'shape' is missing"),
    ("entry_missing_data_offsets", file_bytes({"w": without(W, "data_offsets")}, DATA8),
     "tensor 'w': field 'data_offsets' is missing"),
    ("entry_extra_field", file_bytes({"w": entry(offset=0)}, DATA8), "tensor 'w': unexpected field 'offset'"),
    ("dtype_not_string", file_bytes({"w": entry(dtype=32)}, DATA8), "field 'dtype' must be a string, not number"),
    ("dtype_unknown_f64", file_bytes({"w": entry(dtype="F64", shape=(1,))}, DATA8), "dtype 'F64' is not supported"),
    ("dtype_unknown_i64", file_bytes({"w": entry(dtype="I64", shape=(1,))}, DATA8), "dtype 'I64' is not supported"),
    ("dtype_lowercase", file_bytes({"w": entry(dtype="f32")}, DATA8), "dtype 'f32' is not supported"),
    ("shape_not_array", file_bytes({"w": entry(shape=2)}, DATA8), "field 'shape' must be an array, not number"),
    ("shape_negative", file_bytes({"w": entry(shape=(-1, 2))}, DATA8), "field 'shape' entry 0 (-1) must be >= 0"),
    ("shape_float", file_bytes({"w": entry(shape=(2.5,))}, DATA8), "field 'shape' entry 0 must be an integer, not 2.5"),
    ("shape_float_integral", file_bytes({"w": entry(shape=(2.0,))}, DATA8), "field 'shape' entry 0 must be an integer, not 2.0"),
    ("shape_string", file_bytes({"w": entry(shape=("2",))}, DATA8), "field 'shape' entry 0 must be an integer, not string"),
    ("shape_nested_array", file_bytes({"w": entry(shape=([2],))}, DATA8), "field 'shape' entry 0 must be an integer, not array"),
    ("shape_deeply_nested", file_bytes('{"w": {"dtype": "F32", "data_offsets": [0, 8], "shape": '
                                       + "[" * 5000 + "]" * 5000 + "}}", DATA8),
     "header nests JSON deeper than 64 levels"),
    ("header_deeply_nested_objects", file_bytes('{"a":' * 65 + "1" + "}" * 65), "header nests JSON deeper than 64 levels"),
    ("shape_extent_u64_max", file_bytes({"w": entry(shape=(U64_MAX,))}, DATA8), "shape extent 0 (18446744073709551615) is too large"),
    ("shape_product_overflow", file_bytes({"w": entry(shape=(2**32, 2**32))}, DATA8), "overflows"),
    ("shape_product_overflow_before_zero", file_bytes({"w": entry(shape=(2**62, 2**62, 0), offsets=(0, 0))}), "overflows"),
    ("shape_bytes_too_large", file_bytes({"w": entry(shape=(2**62,))}, DATA8), "is too large"),
    ("shape_bytes_mismatch_f32", file_bytes({"w": entry(shape=(3,))}, DATA8), "hold 8 bytes but shape [3] of F32 needs 12"),
    ("shape_bytes_mismatch_f16", file_bytes({"w": entry(dtype="F16", shape=(2,))}, DATA8), "hold 8 bytes but shape [2] of F16 needs 4"),
    ("shape_bytes_mismatch_scalar", file_bytes({"w": entry(shape=())}, DATA8), "hold 8 bytes but shape [] of F32 needs 4"),
    ("offsets_not_array", file_bytes({"w": entry(offsets=0)}, DATA8), "field 'data_offsets' must be an array [begin, end]"),
    ("offsets_one_entry", file_bytes({"w": entry(offsets=(8,))}, DATA8), "field 'data_offsets' must be an array [begin, end]"),
    ("offsets_three_entries", file_bytes({"w": entry(offsets=(0, 4, 8))}, DATA8), "field 'data_offsets' must be an array [begin, end]"),
    ("offsets_negative", file_bytes({"w": entry(offsets=(-8, 0))}, DATA8), "field 'data_offsets' entry 0 (-8) must be >= 0"),
    ("offsets_float", file_bytes({"w": entry(offsets=(0, 8.0))}, DATA8), "field 'data_offsets' entry 1 must be an integer"),
    ("offsets_string", file_bytes({"w": entry(offsets=("0", "8"))}, DATA8), "field 'data_offsets' entry 0 must be an integer, not string"),
    ("offsets_begin_after_end", file_bytes({"w": entry(shape=(0,), offsets=(8, 4))}, DATA8), "begin (8) is after end (4)"),
    ("offsets_end_past_data", file_bytes({"w": entry(shape=(4,), offsets=(0, 16))}, DATA8), "is past the end of the data (8 bytes)"),
    ("offsets_u64_max", file_bytes({"w": entry(shape=(0,), offsets=(U64_MAX, U64_MAX))}, DATA8), "is past the end of the data"),
    ("offsets_wrap_around", file_bytes({"w": entry(shape=(1,), offsets=(U64_MAX - 1, 2))}, DATA8), "is after end"),
    ("offsets_overlap", file_bytes({"a": entry(), "b": entry(offsets=(4, 12))}, f32(1, 2, 3)),
     "tensor 'b': data_offsets [4, 12) overlap those of tensor 'a'"),
    ("offsets_same_range", file_bytes({"a": entry(), "b": entry()}, DATA8), "overlap those of tensor 'a'"),
    ("offsets_zero_size_inside_tensor", file_bytes({"a": entry(), "z": entry(shape=(0,), offsets=(4, 4))}, DATA8),
     "tensor 'z': data_offsets [4, 4) overlap those of tensor 'a'"),
    ("offsets_hole", file_bytes({"a": entry(shape=(1,), offsets=(0, 4)), "b": entry(shape=(1,), offsets=(8, 12))}, f32(1, 2, 3)),
     "leaves bytes [4, 8) of the data section unused"),
    ("offsets_leading_hole", file_bytes({"w": entry(shape=(1,), offsets=(4, 8))}, DATA8), "leaves bytes [0, 4) of the data section unused"),
    ("data_trailing_bytes", file_bytes({"w": entry(shape=(1,), offsets=(0, 4))}, DATA8), "4 trailing bytes"),
    ("data_without_tensors", file_bytes("{}", DATA8), "8 trailing bytes"),
    ("duplicate_tensor_name", file_bytes('{"w": %s, "w": %s}' % (json.dumps(W), json.dumps(W)), DATA8),
     "tensor 'w' appears more than once"),
    ("duplicate_field", file_bytes('{"w": {"dtype": "F32", "dtype": "F16", "shape": [2], "data_offsets": [0, 8]}}', DATA8),
     "duplicate key 'dtype' in the entry 'w'"),
    ("metadata_not_object", file_bytes({"__metadata__": "pt"}), "'__metadata__' must be an object, not string"),
    ("metadata_value_not_string", file_bytes({"__metadata__": {"format": 1}}), "'__metadata__' value of 'format' must be a string"),
    ("metadata_duplicate_key", file_bytes('{"__metadata__": {"format": "pt", "format": "np"}}'),
     "duplicate key 'format' in the entry '__metadata__'"),
]


def f16_bits(*bits):
    return struct.pack("<%dH" % len(bits), *bits)


def valid_files():
    # F32 tensors of every rank we support, a zero-size one and a scalar, stored in an order that
    # differs from the name order, behind a header whose length is not a multiple of 8 (so the
    # data is unaligned), with metadata.
    matrix = [0.5 * i for i in range(6)]
    vector = [-1.0, 0.0, math.inf, 1e-45]  # 1e-45 rounds to the smallest f32 subnormal
    blobs = [("vector", [4], f32(*vector)), ("scalar", [], f32(3.25)), ("empty", [0, 4], b""),
             ("matrix", [2, 3], f32(*matrix))]
    header, data = {"__metadata__": {"format": "pt", "note": "simdattn test corpus"}}, b""
    for name, shape, blob in blobs:
        header[name] = entry(shape=shape, offsets=(len(data), len(data) + len(blob)))
        data += blob
    text = json.dumps(header, separators=(",", ":"))
    if len(text) % 8 == 0:
        text += " "
    yield "f32_shapes_unaligned", file_bytes(text, data)

    # Known F16 and BF16 bit patterns; tests/unit/test_safetensors.cpp lists the expected floats.
    half = f16_bits(0x0000, 0x8000, 0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x7C00,
                    0xFC00, 0x7E00, 0x3555)
    brain = f16_bits(0x0000, 0x8000, 0x3F80, 0xC049, 0x7F80, 0xFF80, 0x7FC0, 0x0001)
    header = {"half": entry(dtype="F16", shape=(3, 4), offsets=(0, len(half))),
              "brain": entry(dtype="BF16", shape=(8,), offsets=(len(half), len(half) + len(brain)))}
    yield "f16_bf16_bit_patterns", file_bytes(header, half + brain)

    # No tensors at all: an empty map, header padded with spaces like our writer pads it.
    yield "no_tensors", file_bytes("{}      ")

    # Zero-size tensors at the same offset as a real one, and a shape whose product is zero
    # before it could overflow.
    header = {"a_zero": entry(shape=(0,), offsets=(0, 0)), "b": entry(shape=(2,), offsets=(0, 8)),
              "c_zero_huge": entry(shape=(0, 2**62, 2**62), offsets=(8, 8))}
    yield "zero_size_tensors", file_bytes(header, DATA8)


def write(folder, name, blob):
    path = os.path.join(DATA, folder, name + ".safetensors")
    with open(path, "wb") as f:
        f.write(blob)


def main():
    names = [name for name, _, _ in MALFORMED]
    if len(set(names)) != len(names):
        sys.exit("make_malformed_safetensors.py: duplicate case names")
    for folder in ("malformed", "valid"):
        os.makedirs(os.path.join(DATA, folder), exist_ok=True)
        for old in os.listdir(os.path.join(DATA, folder)):
            if old.endswith(".safetensors"):
                os.remove(os.path.join(DATA, folder, old))
    with open(os.path.join(DATA, "malformed", "expected_errors.tsv"), "w") as tsv:
        tsv.write("# file\tsubstring of the Error(format) message (generated by "
                  "tools/make_malformed_safetensors.py)\n")
        for name, blob, message in MALFORMED:
            write("malformed", name, blob)
            tsv.write("%s.safetensors\t%s\n" % (name, message))
    count = 0
    for name, blob in valid_files():
        write("valid", name, blob)
        count += 1
    print("wrote %d malformed and %d valid files under %s" % (len(MALFORMED), count, DATA))


if __name__ == "__main__":
    main()
