"""The Eisel-Lemire table (libddstream/pow5_table.h) is exactly what its generator
(scripts/gen_pow5_table.py) writes, and every entry is its definition: computed here again from
exact integers, independently of the generator's own code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "libddstream" / "pow5_table.h"
GENERATOR = ROOT / "scripts" / "gen_pow5_table.py"


def _entries() -> dict[int, int]:
    text = TABLE.read_text(encoding="utf-8")
    found = re.findall(
        r"UINT64_C\(0x([0-9a-f]{16})\), UINT64_C\(0x([0-9a-f]{16})\), /\* 5\^(-?\d+) \*/", text
    )
    return {int(q): (int(high, 16) << 64) | int(low, 16) for high, low, q in found}


def test_the_file_is_the_generators_output() -> None:
    generated = subprocess.run(
        [sys.executable, str(GENERATOR)], capture_output=True, text=True, check=True
    ).stdout
    assert TABLE.read_text(encoding="utf-8") == generated


def test_every_entry_is_five_to_the_q_in_128_bits() -> None:
    entries = _entries()
    assert sorted(entries) == list(range(-342, 309))
    for q, value in entries.items():
        assert value >> 127 == 1, f"5^{q} is not normalized"
        if q >= 0:
            # 5^q times 2^k, truncated to its 128 leading bits.
            exact = 5**q
            k = 128 - exact.bit_length()
            expected = exact << k if k >= 0 else exact >> -k
            assert value == expected, f"5^{q}"
        else:
            # 1 / 5^-q scaled to 128 bits: within one unit of 2^k / 5^-q (rounded up for
            # q >= -27, where the generator keeps exactly 128 bits; truncated further below).
            power5 = 5**-q
            k = 127 + power5.bit_length()
            if (1 << k) // power5 >= 1 << 128:
                k -= 1
            floor = (1 << k) // power5
            assert floor.bit_length() == 128
            assert floor <= value <= floor + 1, f"5^{q}"
            if q >= -27:
                assert value == floor + 1, f"5^{q} is not rounded up"
