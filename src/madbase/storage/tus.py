"""TUS 1.0.0 resumable uploads as a sans-I/O state machine (no sockets, no files): header parsing and
validation for OPTIONS / POST (creation, creation-with-upload) / HEAD / PATCH / DELETE (termination),
and the response headers. The HTTP adapter (tus_http.py) does the I/O.

Supabase's flavour: `Upload-Metadata` carries `bucketName`, `objectName`, `contentType`, `cacheControl`,
optional `metadata` (JSON); `x-upsert: true` allows overwriting.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from madbase.core.numbers import ascii_uint
from madbase.storage.limits import header_safe

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


class TusError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class UploadState:
    id: str
    length: int
    bucket: str
    name: str
    content_type: str
    cache_control: str
    user_metadata: Any
    upsert: bool
    owner: str | None
    role: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UploadState:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class CreatePlan:
    length: int
    bucket: str
    name: str
    content_type: str
    cache_control: str
    user_metadata_json: str | None
    upsert: bool


def base_headers() -> dict[str, str]:
    return {"tus-resumable": VERSION, "cache-control": "no-store"}


def options_headers(max_size: int) -> dict[str, str]:
    headers = {"tus-resumable": VERSION, "tus-version": VERSION, "tus-extension": EXTENSIONS}
    if max_size:
        headers["tus-max-size"] = str(max_size)
    return headers


def check_version(headers: Mapping[str, str]) -> None:
    if headers.get("tus-resumable") != VERSION:
        raise TusError(412, "Unsupported TUS version")


def parse_metadata(raw: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if not raw:
        return out
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode() if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError):
            raise TusError(400, f"Invalid Upload-Metadata value for {key}") from None
    return out


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    value = ascii_uint(raw)
    if value is None:
        raise TusError(400, f"Invalid {name} header")
    return value


def plan_create(headers: Mapping[str, str], max_size: int) -> CreatePlan:
    check_version(headers)
    if headers.get("upload-defer-length"):
        raise TusError(400, "Upload-Defer-Length is not supported")
    length = _int_header(headers, "upload-length")
    if length is None:
        raise TusError(400, "Upload-Length header is required")
    if max_size and length > max_size:
        raise TusError(413, "The object exceeded the maximum allowed size")
    meta = parse_metadata(headers.get("upload-metadata"))
    bucket = meta.get("bucketName") or ""
    name = meta.get("objectName") or ""
    if not bucket or not name:
        raise TusError(400, "Upload-Metadata must contain bucketName and objectName")
    cache = meta.get("cacheControl") or ""
    content_type = meta.get("contentType") or "application/octet-stream"
    cache_control = f"max-age={cache}" if ascii_uint(cache) is not None else (cache or "no-cache")
    if not header_safe(content_type) or not header_safe(cache_control):  # both come back as response headers
        raise TusError(400, "contentType and cacheControl must be printable ASCII")
    return CreatePlan(
        length=length, bucket=bucket, name=name,
        content_type=content_type,
        cache_control=cache_control,
        user_metadata_json=meta.get("metadata") or None,
        upsert=(headers.get("x-upsert") or "").lower() == "true",
    )


def check_patch(headers: dict[str, str], state: UploadState, current: int) -> int:
    """Validate a PATCH against the stored offset; returns the number of bytes it may still carry."""
    check_version(headers)
    if (headers.get("content-type") or "").split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
        raise TusError(415, "Content-Type must be application/offset+octet-stream")
    offset = _int_header(headers, "upload-offset")
    if offset is None:
        raise TusError(400, "Upload-Offset header is required")
    if offset != current:
        raise TusError(409, f"Upload-Offset {offset} does not match the current offset {current}")
    length = _int_header(headers, "content-length")
    remaining = state.length - current
    if length is not None and length > remaining:
        raise TusError(413, "The chunk exceeds the declared Upload-Length")
    return remaining


def head_headers(state: UploadState, offset: int) -> dict[str, str]:
    return {**base_headers(), "upload-offset": str(offset), "upload-length": str(state.length)}


def patch_headers(offset: int) -> dict[str, str]:
    return {"tus-resumable": VERSION, "upload-offset": str(offset)}
