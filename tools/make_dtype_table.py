#!/usr/bin/env python3
"""tools/make_dtype_table.py — an independent expectation for the weight storage types.

Computes, with Python's own IEEE half conversion (struct format 'e', round to nearest even)
and plain integer arithmetic, never with simdattn's code:
  - f32 -> f16 and f16 -> f32 for edge values and a fixed pseudo-random sample,
  - f32 -> bf16 (round to nearest even on the bits) for the same values,
  - GGUF Q8_0 blocks (d = amax / 127 in f32, stored as f16; id = 1 / d or 0; q = roundf(w * id),
    rounding halves away from zero) for fixed blocks,
  - GGUF Q4_0 blocks (d = (first value of largest |w|) / -8, id = 1 / d or 0,
    q = min(15, trunc(f32(w * id) + 8.5))),
and writes them as C++ arrays to tests/unit/dtype_table.inc for tests/unit/test_dtype.cpp.

Deterministic:  python3 tools/make_dtype_table.py
"""

import math
import os
import struct

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "unit", "dtype_table.inc")


def f32(x):
    """x rounded to float32 (to nearest even)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bits32(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def from_bits32(u):
    return struct.unpack("<f", struct.pack("<I", u))[0]


def to_f16(x):
    if math.isnan(x):
        return 0x7E00 | (0x8000 if math.copysign(1.0, x) < 0 else 0)
    try:
        return struct.unpack("<H", struct.pack("<e", x))[0]
    except OverflowError:  # rounds past the largest half
        return 0xFC00 if x < 0 else 0x7C00


def from_f16(h):
    return struct.unpack("<e", struct.pack("<H", h))[0]


def f16_to_f32_bits(h):
    """The f32 bits of half h. Python's floats do not carry NaN payloads through, so a NaN
    is built from IEEE 754's widening rule: sign, all-ones exponent, payload shifted up, and
    the quiet bit set (what F16C, AVX-512F and NEON's fcvtl produce)."""
    if (h & 0x7C00) == 0x7C00 and (h & 0x3FF):
        return ((h & 0x8000) << 16) | 0x7F800000 | ((h & 0x3FF) << 13) | 0x00400000
    return bits32(from_f16(h))


def to_bf16(u):
    """Round-to-nearest-even of the f32 bits u to their top 16 bits; NaN stays quiet NaN."""
    if (u & 0x7FFFFFFF) > 0x7F800000:
        return (u >> 16) | 0x40
    lower = u & 0xFFFF
    upper = u >> 16
    if lower > 0x8000 or (lower == 0x8000 and (upper & 1)):
        upper += 1
    return upper & 0xFFFF


def roundf(x):
    """C's roundf on an exactly representable value: halves away from zero."""
    r = math.floor(abs(x) + 0.5)
    return -r if x < 0 else r


class Lcg:
    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return self.s >> 40  # 24 bits

    def uniform(self, lo, hi):
        return f32(lo + (hi - lo) * self.next() / float(1 << 24))


def f32_values():
    edges = [0.0, -0.0, 1.0, -1.0, 0.5, 65504.0, -65504.0, 65519.99, 65520.0, 65536.0, 1e30,
             -1e30, float("inf"), float("-inf"), 2.0 ** -14, 2.0 ** -24, 2.0 ** -25,
             2.0 ** -25 * 1.5, 2.0 ** -26, -(2.0 ** -24), 1e-8, 3.14159265, 1.0 / 3.0,
             1.0009765625, 1.00048828125, 1.00146484375, 2049.0, 2051.0, 6.1e-5, 5.96e-8,
             3.4e38, -3.4e38, 1.17549435e-38, 1e-40, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -9,
             255.5, 256.5, -7.75e-3]
    values = [f32(v) for v in edges]
    rng = Lcg(12345)
    for _ in range(200):
        e = int(rng.next() % 60) - 30
        values.append(f32(rng.uniform(-1.0, 1.0) * 2.0 ** e))
    for u in (0x7F800001, 0xFFC00000, 0x7FC00000, 0x33000000, 0x33000001, 0x387FE000,
              0x387FF000, 0x38800000, 0x477FE000, 0x477FEFFF, 0x477FF000, 0x3F807FFF,
              0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x7F7F8000, 0x00000001):
        values.append(from_bits32(u))
    return values


def q8_blocks():
    rng = Lcg(777)
    blocks = [[0.0] * 32, [1.0] + [0.0] * 31, [-3.5] + [0.25 * i for i in range(31)],
              [f32(1e-6 * (i - 16)) for i in range(32)],
              [f32(1e-9 * (i - 16)) for i in range(32)],  # scale below the smallest normal half
              [f32(127.0 * (i - 15.5)) for i in range(32)],
              [f32(0.5 * (2 * i + 1)) for i in range(32)]]  # w * id lands on .5 ties
    for scale in (1.0, 0.02, 300.0, 1e4):
        for _ in range(3):
            blocks.append([f32(rng.uniform(-scale, scale)) for _ in range(32)])
    return blocks


def q8_encode(block):
    amax = 0.0
    for w in block:
        amax = max(amax, abs(w))
    d = f32(amax / 127.0)
    inv = f32(1.0 / d) if d != 0.0 else 0.0
    qs = [int(roundf(f32(w * inv))) for w in block]
    return to_f16(d), qs


def q4_blocks():
    rng = Lcg(4040)
    blocks = [[0.0] * 32, [-0.0] * 32, [1.0] + [0.0] * 31, [-3.5] + [0.25 * i for i in range(31)],
              [f32(0.25 * (i - 16)) for i in range(32)],       # the max is the negative end
              [f32(0.25 * (16 - i)) for i in range(32)],       # the max is positive: -3.75 gives 16 -> 15
              [2.0, -2.0] + [f32(0.1 * i) for i in range(30)],  # equal |w|: the first one sets the sign
              [f32(1e-6 * (i - 16)) for i in range(32)],
              [f32(1e-9 * (i - 16)) for i in range(32)],        # scale below the smallest normal half
              [f32(8.0 * (i - 15.5)) for i in range(32)],
              [f32(-8.0 + 0.5 * i) for i in range(32)]]         # w * id + 8.5 lands on integers
    for scale in (1.0, 0.02, 300.0, 1e4):
        for _ in range(3):
            blocks.append([f32(rng.uniform(-scale, scale)) for _ in range(32)])
    return blocks


def q4_encode(block):
    """GGUF's Q4_0 in f32 steps: m = the first value of largest |w|, d = m / -8,
    id = 1 / d or 0, q = min(15, trunc(f32(f32(w * id) + 8.5)))."""
    amax, mx = 0.0, 0.0
    for w in block:
        if amax < abs(w):
            amax, mx = abs(w), w
    d = f32(mx / -8.0)
    inv = f32(1.0 / d) if d != 0.0 else 0.0
    qs = [min(15, int(math.trunc(f32(f32(w * inv) + 8.5)))) for w in block]
    return to_f16(d), qs


def block_table(comment, struct_name, code_type, blocks, encode):
    """C++ lines: a struct of 32 f32 bit patterns, an f16 scale and 32 codes, and its cases."""
    lines = ["// " + comment, "struct %s {" % struct_name, "  std::uint32_t w[32];",
             "  std::uint16_t d;", "  %s q[32];" % code_type, "};",
             "inline constexpr %s k%ss[] = {" % (struct_name, struct_name)]
    for block in blocks:
        d, qs = encode(block)
        lines.append("    {{" + ", ".join("0x%08xu" % bits32(w) for w in block) + "},")
        lines.append("     0x%04xu, {" % d + ", ".join(str(q) for q in qs) + "}},")
    lines.append("};")
    return lines


def main():
    lines = ["// tests/unit/dtype_table.inc — written by tools/make_dtype_table.py (Python's struct 'e'",
             "// half conversion and integer bit arithmetic, not simdattn's code); do not edit.", ""]
    lines.append("// {f32 bits, f16 bits (round to nearest even), bf16 bits (round to nearest even)}")
    lines.append("inline constexpr std::uint32_t kF32Conversions[][3] = {")
    for v in f32_values():
        u = bits32(v)
        lines.append("    {0x%08xu, 0x%04xu, 0x%04xu}," % (u, to_f16(v), to_bf16(u)))
    lines.append("};")
    lines.append("")
    lines.append("// {f16 bits, f32 bits of its exact value}: every 97th half, and the specials")
    lines.append("inline constexpr std::uint32_t kF16Values[][2] = {")
    halves = sorted(set(list(range(0, 65536, 97)) + [0x0000, 0x0001, 0x03FF, 0x0400, 0x7BFF,
                                                    0x7C00, 0x7C01, 0x7E00, 0x7FFF, 0x8001,
                                                    0x83FF, 0xFBFF, 0xFC00, 0xFD55]))
    for h in halves:
        lines.append("    {0x%04xu, 0x%08xu}," % (h, f16_to_f32_bits(h)))
    lines.append("};")
    lines.append("")
    lines += block_table("Q8_0 blocks: 32 f32 bit patterns, the f16 scale, the 32 int8",
                         "Q8Case", "std::int8_t", q8_blocks(), q8_encode)
    lines.append("")
    lines += block_table("Q4_0 blocks: 32 f32 bit patterns, the f16 scale, the 32 codes "
                         "(value = d * (q - 8))", "Q4Case", "std::uint8_t", q4_blocks(), q4_encode)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
