"""The kit's one response type: status, headers, and either body bytes or an async iterator of chunks.

Handlers return a `Response`; the dispatcher (`core/kit/app.py`) sends it. Headers are given as a mapping or
as (name, value) pairs of text; `content-type` comes from `media_type` unless a header sets it, and
`content-length` is filled in for byte bodies (not for 1xx/204/304, not when a header already gives it — a
HEAD answer states the length of the body it does not send).

A streamed body is sent chunk by chunk. uvicorn's protocol drops the sends of a client that went away
without telling the app, so the sender checks the request's disconnect watch between chunks and stops reading
the source (a 1 GB download to a closed socket must not read the whole file); the iterator is always closed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from madbase.core import jsonutil
from madbase.core.requestscope import current as request_scope
from madbase.core.types import Headers, Send

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]] | None
JSON_TYPE = "application/json"


def _no_length(status: int) -> bool:
    return status < 200 or status in (204, 304)


class Response:
    """What a handler answers. `body` bytes, or `stream` (an async iterator of byte chunks), not both."""

    __slots__ = ("body", "headers", "status", "stream")

    def __init__(self, status: int = 200, headers: HeaderInput = None, body: bytes = b"", *,
                 media_type: str | None = None, stream: AsyncIterator[bytes] | None = None) -> None:
        self.status = status
        self.body = body
        self.stream = stream
        pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
        raw: Headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs]
        names = {k for k, _ in raw}
        if media_type is not None and b"content-type" not in names:
            if media_type.startswith("text/") and "charset=" not in media_type.lower():
                media_type += "; charset=utf-8"
            raw.append((b"content-type", media_type.encode("latin-1")))
        if stream is None and b"content-length" not in names and not _no_length(status):
            raw.append((b"content-length", str(len(body)).encode()))
        self.headers = raw

    @classmethod
    def raw(cls, status: int, body: bytes, headers: Headers) -> Response:
        """A byte response from headers already encoded (lower-case names, bytes), taken as they are: the
        hot path of a service that builds its headers as bytes (REST) skips the text-to-bytes pass.
        `content-length` is added as in the constructor."""
        self = cls.__new__(cls)
        self.status = status
        self.body = body
        self.stream = None
        if not _no_length(status):
            headers.append((b"content-length", str(len(body)).encode()))
        self.headers = headers
        return self

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: HeaderInput = None) -> Response:
        return cls(status, headers, jsonutil.dumps(value), media_type=JSON_TYPE)

    def header(self, name: str) -> str | None:
        """The first value of header `name` (lower case), as text."""
        key = name.encode("latin-1")
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

    async def send(self, send: Send) -> None:
        """Send this response over ASGI `send`."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        stream = self.stream
        if stream is None:
            await send({"type": "http.response.body", "body": self.body})
            return
        scope = request_scope()
        watch = scope.watch if scope is not None else None
        try:
            async for chunk in stream:
                if watch is not None and watch.gone:
                    return  # nobody is reading: stop pulling from the source
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
