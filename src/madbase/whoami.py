"""`/gateway/v1/whoami`: the gateway's own authenticated no-op route (project resolved, JWT verified).

Answers who the caller is for this project. With `?db=1` it also runs one request transaction and reports
what SQL sees (current_user, database, `auth.uid()`, `auth.role()`, the claims GUC) — a diagnostic for keys
and policies, and the fixed points the gateway benchmark measures. A request body is read (and counted)
before answering, so uploads exercise the body limit and graceful draining. On the request kit: one route,
errors in the gateway's (Kong's) `{"message"}` shape (core/kit/message.py), the transaction through the kit's
runner with `TxSettings`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from madbase.core.errors import GatewayError, Kind
from madbase.core.kit import Dispatcher, ErrorTable, Request, Response, RouteTable, TxRunner, TxSettings, route
from madbase.core.kit.message import message_kit
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.core.types import ASGIApp

PREFIX = "/gateway/v1"
_ALL = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

_SQL = """select current_user::text as current_user, current_database()::text as database,
  auth.uid()::text as uid, auth.role() as role, auth.email() as email,
  current_setting('request.jwt.claims', true) as claims, current_setting('request.method', true) as method,
  current_setting('request.path', true) as path"""

# A database error here is the server's trouble, never the caller's: connection failures are the runner's
# DB_UNAVAILABLE, anything else the gateway's 500 (logged with its cause, rendered without SQL text).
_DB_ERRORS = ErrorTable("gateway", {}, lambda exc: GatewayError(Kind.INTERNAL, "Internal server error", cause=exc))


def build(runtime: Runtime) -> ASGIApp:
    runner = TxRunner(_DB_ERRORS, acquire_timeout=runtime.settings.pool_acquire_timeout)

    async def whoami(request: Request) -> Response:
        ctx = request.ctx
        received = 0
        if request.method in _WITH_BODY:
            async for chunk in request.chunks():  # counted, not kept
                received += len(chunk)
        result: dict[str, Any] = {"project_ref": ctx.project.ref, "role": ctx.auth.role, "sub": ctx.auth.user_id,
                                  "request_id": ctx.request_id, "body_bytes": received,
                                  "client_ip": ctx.client_ip}
        if b"db=1" in request.scope.get("query_string", b""):
            pool = await ctx.runtime.pools.get(ctx.project)
            settings = TxSettings.for_request(ctx.auth, method=request.method, path=request.path,
                                              headers=request.headers)
            async with runner.transaction(pool, settings) as conn:
                row = await conn.fetchrow(_SQL)
            assert row is not None
            result["db"] = dict(row)
        return Response.json(result)

    table: RouteTable[Callable[[Request], Awaitable[Response]]] = RouteTable(
        [route(_ALL, "/whoami", whoami, name="gateway.whoami")])
    return Dispatcher(message_kit("gateway", PREFIX, table, forbidden="Forbidden"), table, Request)


service = Service(name="gateway", prefix=PREFIX, build=build)
