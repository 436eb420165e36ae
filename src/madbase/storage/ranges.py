"""HTTP `Range: bytes=...` parsing (pure): one range, as Supabase Storage serves it."""

from __future__ import annotations

from madbase.storage import errors


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for a satisfiable single range; None = whole object; raises InvalidRange."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # unknown units / multiple ranges: serve the whole object, as servers may
    first, sep, last = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                raise errors.invalid_range()
            return (max(0, size - suffix), size - 1) if size else _unsatisfiable()
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0 or start >= size or end < start:
        raise errors.invalid_range()
    return start, min(end, size - 1)


def _unsatisfiable() -> tuple[int, int]:
    raise errors.invalid_range()
