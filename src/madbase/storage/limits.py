"""Size and MIME-type limits (pure): `"20MB"`-style sizes and `image/*`-style allowed types."""

from __future__ import annotations

import re

from madbase.storage import errors

_SIZE_RE = re.compile(r"^\s*([0-9]{1,20}(?:\.[0-9]{1,20})?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
# Sizes are stored as bigint: anything larger is refused here, not by the database (or by int(inf)).
MAX_SIZE = 2**63 - 1


_HEADER_SAFE = re.compile(r"[\x20-\x7e]{0,1024}")


def header_safe(value: str) -> bool:
    """Printable ASCII of sane length: what may be stored as a content type or cache control and sent back as
    a response header (CR/LF would split the response; non-latin-1 text cannot be encoded at all)."""
    return _HEADER_SAFE.fullmatch(value) is not None


def checked_header(value: str, what: str) -> str:
    if not header_safe(value):
        raise errors.invalid_request(f"Invalid {what}: only printable ASCII is allowed")
    return value


# Decimal, as Storage's parseFileSizeToBytes ("20mb" = 20,000,000 bytes); it knows no "tb".
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def parse_size(value: object) -> int | None:
    """A bucket's file_size_limit from a number of bytes or a string like "20MB"; None = no limit."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise errors.invalid_request("Invalid file_size_limit")
    if isinstance(value, int | float):
        if not 0 <= value <= MAX_SIZE:  # also NaN (no comparison holds) and ±inf
            raise errors.invalid_request("Invalid file_size_limit")
        return int(value) or None
    if isinstance(value, str):
        if value.strip() == "":
            return None
        match = _SIZE_RE.match(value)
        if match:
            # Storage keeps three significant digits of the number (`toPrecision(3)`): "1.2345mb" = 1,230,000.
            number = float(f"{float(match.group(1)):.3g}")
            size = number * _UNITS[(match.group(2) or "b").lower()]
            if size <= MAX_SIZE:
                return round(size) or None
    raise errors.invalid_request("Invalid file_size_limit")


def check_mime_list(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise errors.invalid_request("allowed_mime_types must be an array of strings")
    return list(value) or None


def base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def mime_allowed(content_type: str, allowed: list[str] | None) -> bool:
    if not allowed:
        return True
    mime = base_type(content_type)
    for pattern in allowed:
        pattern = pattern.strip().lower()
        if pattern == mime or pattern == "*/*":
            return True
        if pattern.endswith("/*") and mime.startswith(pattern[:-1]):
            return True
    return False


def effective_limit(bucket_limit: int | None, global_limit: int) -> int:
    """The smaller of the bucket's and the server's limits (0 = no server limit)."""
    limits = [x for x in (bucket_limit, global_limit) if x]
    return min(limits) if limits else 0
