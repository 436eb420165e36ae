"""Blowfish's initial P-array and S-boxes: the first 1042 32-bit words of pi's fractional part.

extension/pgcrypto--1.3.sql embeds them; `python -m madbase.pgext.pidigits` prints them again, and
tests/core/test_extensions.py checks the embedded copy against this computation.
"""

from __future__ import annotations


def _atan_inv(x: int, one: int) -> int:
    total, term, n, sign = 0, one // x, 1, 1
    while term:
        total += sign * (term // n)
        term //= x * x
        n += 2
        sign = -sign
    return total


def blowfish_words(count: int = 1042) -> list[int]:
    """Pi by Machin's formula in fixed point, with 128 guard bits."""
    bits = 32 * count + 128
    one = 1 << bits
    pi = 16 * _atan_inv(5, one) - 4 * _atan_inv(239, one)
    fraction = pi - (3 << bits)
    return [(fraction >> (bits - 32 * (i + 1))) & 0xFFFFFFFF for i in range(count)]


if __name__ == "__main__":
    words = blowfish_words()
    print("P:", ",".join(map(str, words[:18])))
    print("S:", ",".join(map(str, words[18:])))
