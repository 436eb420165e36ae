"""Numbers read from requests, headers and settings: ASCII decimal digits only, with a bounded length.

`str.isdigit()` also accepts `²` or `٣`, which `int()` then refuses (a 500) or reads as another number; and an
unbounded digit string overflows a bigint. Every service reads its non-negative integers through here."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")


def ascii_uint(text: str | None, max_digits: int = 18) -> int | None:
    """The value of `text` when it is 1 to `max_digits` ASCII digits (18 fit a bigint), else None."""
    if text is None or len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)
