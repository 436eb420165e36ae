"""Validation of bucket ids and object names (pure), following Supabase Storage's rules."""

from __future__ import annotations

import re

from madbase.storage import errors

_BUCKET_RE = re.compile(r"^(\w|!|-|\.|\*|'|\(|\)| |&|\$|@|=|;|:|\+|,|\?)*$")
MAX_KEY_BYTES = 1024


def check_bucket_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > 100 or not _BUCKET_RE.match(name) or name.strip() != name:
        raise errors.invalid_bucket_name(str(name))
    return name


def check_key(key: str) -> str:
    """An object name: non-empty, at most 1024 bytes, no control characters, no empty, `.` or `..` segments
    (so no leading/trailing `/` either: storage-js strips them before sending)."""
    if (not key or len(key.encode()) > MAX_KEY_BYTES or any(ord(c) < 32 or ord(c) == 127 for c in key)
            or key.startswith("/") or key.endswith("/") or "//" in key):
        raise errors.invalid_key(key)
    if any(seg in (".", "..") for seg in key.split("/")):
        raise errors.invalid_key(key)
    return key


def normalize_upload_key(key: str) -> str:
    """What storage-js does before uploading: strip leading slashes, collapse `//`."""
    key = key.lstrip("/")
    while "//" in key:
        key = key.replace("//", "/")
    return key
