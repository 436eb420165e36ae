"""Upload bodies: raw bytes or `multipart/form-data`, both streamed (never held whole in memory).

storage-js sends Blobs as multipart (fields `cacheControl`, `metadata`, then the file part with field name
`""`), other bodies raw with `content-type`, `cache-control`, `x-metadata: base64(JSON)`; supabase-py sends
multipart with the file field `file`. The multipart side is python-multipart's push parser: each received
chunk is fed in and the parser's callbacks become events; the file part's bytes flow on as they arrive.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from madbase.core import jsonutil
from madbase.core.numbers import ascii_uint
from madbase.storage import errors
from madbase.storage.limits import checked_header

DEFAULT_CONTENT_TYPE = "text/plain;charset=UTF-8"
MAX_FIELD_BYTES = 1024 * 1024  # the non-file fields together
MAX_PART_HEADER_BYTES = 16 * 1024  # all header names and values of one part together
MAX_PART_HEADERS = 32
MAX_FIELDS = 64  # non-file fields before the file part


@dataclass(slots=True)
class UploadBody:
    content_type: str
    cache_control: str
    user_metadata: Any
    chunks: AsyncIterator[bytes]
    content_length: int | None  # of the object, when known before reading
    request_length: int | None = None  # of the whole request body (an upper bound for multipart)


def cache_control_value(raw: str | None) -> str:
    if not raw:
        return "no-cache"
    raw = raw.strip()
    return f"max-age={raw}" if ascii_uint(raw) is not None else raw


def parse_user_metadata(raw: str | None, *, base64_encoded: bool) -> Any:
    if raw is None or raw == "":
        return None
    try:
        text = base64.b64decode(raw, validate=True).decode() if base64_encoded else raw
        value = jsonutil.loads(text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.invalid_request("Invalid metadata: must be a JSON object") from None
    if not isinstance(value, dict):
        raise errors.invalid_request("Invalid metadata: must be a JSON object")
    return value


def raw_body(headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> UploadBody:
    length = headers.get("content-length")
    return UploadBody(
        content_type=checked_header(headers.get("content-type") or DEFAULT_CONTENT_TYPE, "content-type"),
        cache_control=checked_header(cache_control_value(headers.get("cache-control")), "cache-control"),
        user_metadata=parse_user_metadata(headers.get("x-metadata"), base64_encoded=True),
        chunks=chunks,
        content_length=ascii_uint(length),
        request_length=ascii_uint(length),
    )


def is_multipart(content_type: str | None) -> bool:
    return bool(content_type) and content_type.lower().startswith("multipart/form-data")  # type: ignore[union-attr]


class _Events:
    """Collects python-multipart callbacks as a queue of events."""

    def __init__(self, boundary: bytes) -> None:
        self.queue: deque[tuple[str, Any]] = deque()
        self._field = bytearray()
        self._value = bytearray()
        self._header_bytes = 0
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._begin,
            "on_header_field": self._hfield,
            "on_header_value": self._hvalue,
            "on_header_end": self._hend,
            "on_headers_finished": self._hdone,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_end": self._finished,
        })

    def _begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0

    def _grow(self, buffer: bytearray, data: bytes, start: int, end: int) -> None:
        # a part's headers are bounded like a request head: the parser keeps no limit of its own
        self._header_bytes += end - start
        if self._header_bytes > MAX_PART_HEADER_BYTES or len(self._headers) >= MAX_PART_HEADERS:
            raise ValueError("multipart part headers too large")
        buffer.extend(data[start:end])

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._grow(self._field, data, start, end)

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._grow(self._value, data, start, end)

    def _hend(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _hdone(self) -> None:
        self.queue.append(("headers", self._headers))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.queue.append(("data", bytes(data[start:end])))

    def _end(self) -> None:
        self.queue.append(("end_part", None))

    def _finished(self) -> None:
        self.queue.append(("end", None))


async def multipart_body(content_type: str, chunks: AsyncIterator[bytes], request_length: int | None = None
                         ) -> UploadBody:
    """Read fields up to the file part, then stream the file part's bytes (draining to the closing boundary)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise errors.invalid_request("Invalid multipart body: missing boundary")
    events = _Events(boundary)

    async def next_event() -> tuple[str, Any]:
        while not events.queue:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                raise errors.invalid_request("Invalid multipart body: unexpected end") from None
            try:
                events.parser.write(chunk)
            except Exception:
                raise errors.invalid_request("Invalid multipart body") from None
        return events.queue.popleft()

    fields: dict[str, str] = {}
    field_bytes = 0
    file_headers: dict[bytes, bytes] | None = None
    while file_headers is None:
        kind, value = await next_event()
        if kind == "end":
            raise errors.invalid_request("No file was found in the multipart body")
        if kind != "headers":
            continue
        _, disp = parse_options_header(value.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disp or name in ("", "file"):
            file_headers = value
            break
        data = bytearray()
        while True:
            kind, part = await next_event()
            if kind == "data":
                if field_bytes + len(data) + len(part) > MAX_FIELD_BYTES:  # all fields together
                    raise errors.invalid_request("Multipart field too large")
                data.extend(part)
            elif kind == "end_part":
                break
        if len(fields) >= MAX_FIELDS:
            raise errors.invalid_request("Too many multipart fields")
        field_bytes += len(data)
        fields[name] = data.decode("utf-8", "replace")

    async def file_chunks() -> AsyncIterator[bytes]:
        done = False
        while True:
            kind, part = await next_event()
            if kind == "data" and not done:
                yield part
            elif kind == "end_part":
                done = True
            elif kind == "end":
                return

    part_type = file_headers.get(b"content-type", b"").decode("latin-1").strip()
    return UploadBody(
        content_type=checked_header(part_type or fields.get("contentType") or "application/octet-stream",
                                    "content-type"),
        cache_control=checked_header(cache_control_value(fields.get("cacheControl")), "cache-control"),
        user_metadata=parse_user_metadata(fields.get("metadata"), base64_encoded=False),
        chunks=file_chunks(),
        content_length=None,
        request_length=request_length,
    )
