"""One storage request as handlers see it: the kit's typed request (core/kit/request.py) plus storage's state
— the app (backends, metrics), the caller as an `Actor`, the project's pool and storage settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from madbase.core.context import RequestContext
from madbase.core.kit import BodyErrors, Request, Response
from madbase.core.types import Receive, Scope
from madbase.storage import errors
from madbase.storage.actor import Actor
from madbase.storage.backends.base import Backend
from madbase.storage.config import StorageSettings
from madbase.storage.download import Reload, serve

if TYPE_CHECKING:
    from madbase.storage.app import StorageApp

MAX_JSON_BODY = 1024 * 1024

BODY_ERRORS = BodyErrors(too_large=lambda limit: errors.invalid_request("Request body too large"),
                         bad_json=errors.invalid_request)


Handler = Callable[["Call"], Awaitable[Response]]


class Call(Request):
    __slots__ = ("app",)

    def __init__(self, app: StorageApp, scope: Scope, receive: Receive, ctx: RequestContext, *,
                 params: tuple[str, ...] = (), subpath: str = "", operation: str = "", body_limit: int = 0,
                 body_errors: BodyErrors = BODY_ERRORS) -> None:
        super().__init__(scope, receive, ctx, params=params, subpath=subpath, operation=operation,
                         body_limit=body_limit, body_errors=body_errors)
        self.app = app

    def actor(self) -> Actor:
        headers = {k: v for k, v in self.headers.items() if k not in ("authorization", "apikey", "cookie")}
        return Actor.from_auth(self.ctx.auth, self.method, self.path, headers, self.operation)

    async def pool(self) -> asyncpg.Pool:
        return await self.ctx.runtime.pools.get(self.ctx.project)

    def storage(self) -> tuple[StorageSettings, Backend]:
        return self.app.backends.get(self.ctx.project)

    async def serve(self, row: asyncpg.Record, backend: Backend, reload: Reload) -> Response:
        """Answer with an object's bytes (or headers for HEAD), counting what is served."""
        metrics = self.app.metrics
        ref = self.ctx.project.ref
        self.stages.mark("db")
        response = await serve(row, backend, self.headers, head=self.method == "HEAD",
                               download=self.query.get("download"), reload=reload,
                               counted=lambda stream: metrics.count_download(ref, stream),
                               count=metrics.downloaded.labels(ref).inc)
        self.stages.mark("backend")
        return response

    def upsert_header(self) -> bool:
        return (self.header("x-upsert") or "").strip().lower() == "true"

    async def json(self, limit: int | None = None, *, empty: Any = None) -> dict[str, Any]:
        """The body as a JSON object ({} when blank), at most the route's limit or MAX_JSON_BODY."""
        value = await super().json(limit or self.body_limit or MAX_JSON_BODY, empty={})
        if not isinstance(value, dict):
            raise errors.invalid_request("Body must be a JSON object")
        return value

    def body_stream(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive (uploads: bounded by the bucket's limit while they stream)."""
        return self.chunks(0)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response.json(value, status, headers)


def error_response(err: errors.StorageError) -> Response:
    return Response(err.http, None, err.body(), media_type="application/json")


def require_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise errors.invalid_request(f"body must have required property '{key}'")
    return value
