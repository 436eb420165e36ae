"""The kit's one typed request: method, path parameters, query, headers, the gateway's RequestContext, and a
bounded body reader.

The body is read from ASGI `receive` in one of two ways, never both, never twice:

- `chunks()`: an async iterator of the body's chunks as they arrive, for bodies that are streamed on (storage
  uploads to disk or S3: flat memory whatever the size). With a limit, the iterator raises the service's
  "too large" error as soon as the running total passes it — before the chunk is handed on.
- `read()` / `json()`: collected into a list of chunks and joined once (never `bytes += chunk`, which copies
  the whole body per chunk), with a hard limit; `json()` raises the service's "bad JSON" error for a body
  that does not parse.

The limit is the route's `body_limit` unless the call gives one. A client that disconnects before the body is
complete raises `ClientGone` (the gateway answers nobody and acts on nothing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from madbase.core import jsonutil
from madbase.core.context import RequestContext
from madbase.core.kit.timing import Stages
from madbase.core.requestscope import ClientGone
from madbase.core.types import Receive, Scope

UNLIMITED = 0


class BodyErrors:
    """How a service refuses a body: `too_large(limit)` and `bad_json(message)` return its own exceptions."""

    __slots__ = ("bad_json", "too_large")

    def __init__(self, too_large: Callable[[int], Exception], bad_json: Callable[[str], Exception]) -> None:
        self.too_large = too_large
        self.bad_json = bad_json


class Request:
    """One HTTP request as a handler sees it."""

    __slots__ = ("_body_taken", "_headers", "_query", "body_errors", "body_limit", "ctx", "method", "operation",
                 "params", "path", "receive", "scope", "stages", "subpath")

    def __init__(self, scope: Scope, receive: Receive, ctx: RequestContext, *, params: tuple[str, ...] = (),
                 subpath: str = "", operation: str = "", body_limit: int = UNLIMITED,
                 body_errors: BodyErrors | None = None) -> None:
        self.scope = scope
        self.receive = receive
        self.ctx = ctx
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.subpath = subpath or self.path
        self.params = params
        self.operation = operation
        self.body_limit = body_limit
        self.body_errors = body_errors or DEFAULT_BODY_ERRORS
        self._headers: dict[str, str] | None = None
        self._query: dict[str, str] | None = None
        self._body_taken = False
        # the request's stage timer (set by the dispatcher): handlers mark their own stages, e.g. "db"
        self.stages = Stages()

    # -- head ------------------------------------------------------------------------------------------
    @property
    def headers(self) -> Mapping[str, str]:
        """Header names in lower case; of a repeated header the first value counts."""
        if self._headers is None:
            out: dict[str, str] = {}
            for k, v in self.scope["headers"]:
                out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
            self._headers = out
        return self._headers

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def query(self) -> Mapping[str, str]:
        """Query parameters; of a repeated one the last value counts."""
        if self._query is None:
            raw = self.scope.get("query_string", b"").decode("latin-1")
            self._query = dict(parse_qsl(raw, keep_blank_values=True))
        return self._query

    @property
    def scheme(self) -> str:
        return str(self.scope.get("scheme") or "http")

    # -- body ------------------------------------------------------------------------------------------
    def _take(self) -> None:
        if self._body_taken:
            raise RuntimeError("the request body was already read")
        self._body_taken = True

    async def chunks(self, limit: int | None = None) -> AsyncIterator[bytes]:
        """The body's non-empty chunks as they arrive; raises the service's `too_large` past `limit` bytes
        (default: the route's; 0 = no limit here — the caller bounds what it keeps)."""
        self._take()
        bound = self.body_limit if limit is None else limit
        seen = 0
        receive = self.receive
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.disconnect":
                raise ClientGone()
            if kind != "http.request":
                continue
            chunk: bytes = message.get("body", b"")
            if chunk:
                seen += len(chunk)
                if bound and seen > bound:
                    raise self.body_errors.too_large(bound)
                yield chunk
            if not message.get("more_body", False):
                return

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body, at most `limit` bytes (default: the route's)."""
        parts: list[bytes] = []
        async for chunk in self.chunks(limit):
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def json(self, limit: int | None = None, *, empty: Any = None) -> Any:
        """The body parsed as JSON (`empty` for a blank body); the service's `bad_json` for anything else."""
        body = await self.read(limit)
        if not body.strip():
            return empty
        try:
            return jsonutil.loads(body)
        except ValueError:
            raise self.body_errors.bad_json("Body is not valid JSON") from None


class BodyRefused(Exception):
    """The default body refusal, for callers without a service error of their own (tests, tools)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


DEFAULT_BODY_ERRORS = BodyErrors(
    too_large=lambda limit: BodyRefused(f"Request body exceeds the limit of {limit} bytes", 413),
    bad_json=lambda message: BodyRefused(message, 400),
)
