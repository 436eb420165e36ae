"""Serving an object's bytes: headers from its metadata, conditional requests (304), Range (206), HEAD.

The object row was already read (under the caller's role, or as storage for public/signed URLs); the bytes
come streaming from the backend. If the version was replaced between the row read and the open, the
caller re-reads the row once (`reload`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import asyncpg

from madbase.core import jsonutil
from madbase.core.kit import Response
from madbase.storage import errors, ranges
from madbase.storage.backends.base import CHUNK, Backend, KeyNotFound, version_key
from madbase.storage.limits import header_safe

Reload = Callable[[], Awaitable[asyncpg.Record | None]]
SMALL = CHUNK  # objects up to one backend chunk are sent in one piece


def _meta(row: asyncpg.Record) -> dict[str, Any]:
    value = row["metadata"]
    if isinstance(value, str):
        value = jsonutil.loads(value)
    return value if isinstance(value, dict) else {}


def object_headers(row: asyncpg.Record, meta: dict[str, Any] | None = None) -> dict[str, str]:
    meta = _meta(row) if meta is None else meta
    mime = str(meta.get("mimetype") or "application/octet-stream")
    cache = str(meta.get("cacheControl") or "no-cache")
    # Rows written before uploads were checked (or by hand) must not split the response or fail to encode.
    mime = mime if header_safe(mime) else "application/octet-stream"
    cache = cache if header_safe(cache) else "no-cache"
    if "text/html" in mime.lower():  # never serve uploaded HTML as HTML from the API's origin (as Supabase)
        mime = "text/plain"
    headers = {
        "content-type": mime,
        "cache-control": cache,
        "accept-ranges": "bytes",
    }
    if meta.get("eTag"):
        headers["etag"] = str(meta["eTag"])
    updated = row["updated_at"]
    if updated is not None:
        headers["last-modified"] = format_datetime(updated.replace(microsecond=0), usegmt=True)
    return headers


def _not_modified(row: asyncpg.Record, headers: dict[str, str], request_headers: Mapping[str, str]) -> bool:
    inm = request_headers.get("if-none-match")
    if inm is not None:
        etag = headers.get("etag", "")
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or etag in tags
    ims = request_headers.get("if-modified-since")
    if ims and row["updated_at"] is not None:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        return bool(row["updated_at"].replace(microsecond=0) <= since)
    return False


def disposition(download: str | None, name: str) -> str | None:
    """`?download` = attachment (browsers use the URL's name); `?download=x.txt` = attachment named x.txt."""
    if download is None:
        return None
    if download == "":
        return "attachment;"
    encoded = quote(download, safe="")
    return f"attachment; filename={encoded}; filename*=UTF-8''{encoded};"


async def serve(row: asyncpg.Record, backend: Backend, request_headers: Mapping[str, str], *, head: bool,
                download: str | None, reload: Reload,
                counted: Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]] | None = None,
                count: Callable[[int], None] | None = None) -> Response:
    meta = _meta(row)  # parsed once: headers and size
    headers = object_headers(row, meta)
    disp = disposition(download, row["name"])
    if disp:
        headers["content-disposition"] = disp
    if _not_modified(row, headers, request_headers):
        headers.pop("content-type", None)
        return Response(304, headers)
    size = int(meta.get("size") or 0)
    span = ranges.parse_range(request_headers.get("range"), size)
    status = 200
    start, end = 0, size - 1
    if span is not None:
        start, end = span
        status = 206
        headers["content-range"] = f"bytes {start}-{end}/{size}"
    headers["content-length"] = str(end - start + 1 if size else 0)
    if head:
        return Response(status, headers)
    if size == 0:
        return Response(200, headers)
    if not row["version"]:  # a row written by hand, without bytes behind it
        raise errors.no_such_key()
    stream: AsyncIterator[bytes] | None = None
    for attempt in range(2):
        try:
            stream = await backend.open(version_key(row["version"]), start, end)
            break
        except KeyNotFound:
            if attempt:
                raise errors.no_such_key() from None
            fresh = await reload()
            if fresh is None or fresh["version"] == row["version"]:
                raise errors.no_such_key() from None
            return await serve(fresh, backend, request_headers, head=head, download=download, reload=reload,
                               counted=counted, count=count)
    assert stream is not None
    media_type = headers.pop("content-type")
    if end - start + 1 <= SMALL:  # one chunk: a plain response avoids the streaming machinery
        parts = [chunk async for chunk in stream]
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        if count is not None:
            count(len(body))
        return Response(status, headers, body, media_type=media_type)
    if counted is not None:
        stream = counted(stream)
    return Response(status, headers, media_type=media_type, stream=stream)
