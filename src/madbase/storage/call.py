"""One storage request as handlers see it: path parameters, query, headers, body helpers, project state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import asyncpg
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from madbase.core import jsonutil
from madbase.core.context import RequestContext
from madbase.storage import errors
from madbase.storage.actor import Actor
from madbase.storage.backends.base import Backend
from madbase.storage.config import StorageSettings
from madbase.storage.download import Reload, serve

if TYPE_CHECKING:
    from madbase.storage.app import StorageApp

MAX_JSON_BODY = 1024 * 1024


@dataclass(slots=True)
class Call:
    app: StorageApp
    request: Request
    ctx: RequestContext
    params: tuple[str, ...]
    subpath: str
    operation: str = ""
    _query: dict[str, str] | None = field(default=None)
    _headers: dict[str, str] | None = field(default=None)

    @property
    def method(self) -> str:
        return str(self.request.scope["method"])

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.request.scope["headers"]}
        return self._headers

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            raw = self.request.scope.get("query_string", b"").decode("latin-1")
            self._query = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        return self._query

    def actor(self) -> Actor:
        headers = {k: v for k, v in self.headers.items() if k not in ("authorization", "apikey", "cookie")}
        return Actor.from_auth(self.ctx.auth, self.method, self.request.scope["path"], headers, self.operation)

    async def pool(self) -> asyncpg.Pool:
        return await self.ctx.runtime.pools.get(self.ctx.project)

    def storage(self) -> tuple[StorageSettings, Backend]:
        return self.app.backends.get(self.ctx.project)

    async def serve(self, row: asyncpg.Record, backend: Backend, reload: Reload) -> Response:
        """Answer with an object's bytes (or headers for HEAD), counting what is served."""
        metrics = self.app.metrics
        ref = self.ctx.project.ref
        return await serve(row, backend, self.headers, head=self.method == "HEAD", download=self.query.get("download"),
                           reload=reload, counted=lambda stream: metrics.count_download(ref, stream))

    def upsert_header(self) -> bool:
        return (self.header("x-upsert") or "").strip().lower() == "true"

    async def json(self) -> dict[str, Any]:
        body = b""
        try:
            async for chunk in self.request.stream():
                body += chunk
                if len(body) > MAX_JSON_BODY:
                    raise errors.invalid_request("Request body too large")
        except ClientDisconnect:
            raise
        if not body.strip():
            return {}
        try:
            value = jsonutil.loads(body)
        except ValueError:
            raise errors.invalid_request("Body is not valid JSON") from None
        if not isinstance(value, dict):
            raise errors.invalid_request("Body must be a JSON object")
        return value

    def body_stream(self) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            async for chunk in self.request.stream():
                if chunk:
                    yield chunk

        return gen()


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(jsonutil.dumps(value), status_code=status, media_type="application/json", headers=headers)


def error_response(err: errors.StorageError) -> Response:
    return Response(err.body(), status_code=err.http, media_type="application/json")


def require_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise errors.invalid_request(f"body must have required property '{key}'")
    return value
