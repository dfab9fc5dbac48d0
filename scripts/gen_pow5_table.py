#!/usr/bin/env python3
"""Write libddstream/pow5_table.h: the 128-bit powers of five of the Eisel-Lemire algorithm
(libddstream/number_parse.c), for decimal exponents -342..308.

Entry q is 5^q scaled by a power of two so that its most significant bit is bit 127, as two
64-bit words (high, low): truncated for q >= 0, and for q < 0 the reciprocal 2^b / 5^-q rounded
up (b chosen as in Lemire's and fast_float's tables: "Number Parsing at a Gigabyte per Second",
2021, and Mushtak & Lemire, "Fast Number Parsing Without Fallback", 2023). Python's integers are
exact, so the table is exactly its definition; tests/python/test_pow5_table.py runs this script
again and compares its output with the file in the tree.

    python3 scripts/gen_pow5_table.py > libddstream/pow5_table.h
"""

from __future__ import annotations

import sys

SMALLEST = -342  # below: every 19-digit mantissa rounds to zero
LARGEST = 308  # above: every nonzero mantissa overflows to infinity


def entry(q: int) -> int:
    """5^q normalized to 128 bits (top bit set), as the table holds it."""
    if q >= 0:
        power5 = 5**q
        while power5 < 1 << 127:
            power5 *= 2
        while power5 >= 1 << 128:
            power5 //= 2
        return power5
    power5 = 5**-q
    z = power5.bit_length()  # smallest z with 2^z >= 5^-q (5^-q is never a power of two)
    if q >= -27:
        return (1 << (z + 127)) // power5 + 1
    c = (1 << (2 * z + 128)) // power5 + 1
    while c >= 1 << 128:
        c //= 2
    return c


def render() -> str:
    lines = [
        "/* pow5_table.h — 5^q for q in [DDS_POW5_SMALLEST, DDS_POW5_LARGEST], normalized to 128",
        " * bits (the most significant bit set), high word then low word: the table of the",
        " * Eisel-Lemire algorithm in number_parse.c. Written by scripts/gen_pow5_table.py: do not",
        " * edit by hand (tests/python/test_pow5_table.py checks the two agree). */",
        "#ifndef DDSTREAM_POW5_TABLE_H",
        "#define DDSTREAM_POW5_TABLE_H",
        "",
        "#include <stdint.h>",
        "",
        f"#define DDS_POW5_SMALLEST ({SMALLEST})",
        f"#define DDS_POW5_LARGEST  {LARGEST}",
        "",
        "/* clang-format off */",
        f"static const uint64_t dds_pow5_128[{2 * (LARGEST - SMALLEST + 1)}] = {{",
    ]
    for q in range(SMALLEST, LARGEST + 1):
        value = entry(q)
        high, low = value >> 64, value & ((1 << 64) - 1)
        lines.append(f"    UINT64_C(0x{high:016x}), UINT64_C(0x{low:016x}), /* 5^{q} */")
    lines += ["};", "/* clang-format on */", "", "#endif", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
