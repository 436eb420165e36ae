"""`/gateway/v1/whoami`: the gateway's own authenticated no-op route (project resolved, JWT verified).

Answers who the caller is for this project. With `?db=1` it also runs one request transaction and reports
what SQL sees (current_user, database, `auth.uid()`, `auth.role()`, the claims GUC) — a diagnostic for keys
and policies, and the fixed points the gateway benchmark measures. A request body is read (and counted)
before answering, so uploads exercise the body limit and graceful draining.
"""

from __future__ import annotations

from typing import Any

from madbase.core import jsonutil
from madbase.core.context import get_context
from madbase.core.db import request_gucs, request_transaction
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.core.types import ASGIApp, Receive, Scope, Send

_SQL = """select current_user::text as current_user, current_database()::text as database,
  auth.uid()::text as uid, auth.role() as role, auth.email() as email,
  current_setting('request.jwt.claims', true) as claims, current_setting('request.method', true) as method,
  current_setting('request.path', true) as path"""


def build(runtime: Runtime) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        received = 0
        if scope["method"] in ("POST", "PUT", "PATCH"):
            more = True
            while more:
                message = await receive()
                received += len(message.get("body", b""))
                more = bool(message.get("more_body"))
        result: dict[str, Any] = {"project_ref": ctx.project.ref, "role": ctx.auth.role, "sub": ctx.auth.user_id,
                                  "request_id": ctx.request_id, "body_bytes": received,
                                  "client_ip": ctx.client_ip}
        if b"db=1" in scope.get("query_string", b""):
            pool = await ctx.runtime.pools.get(ctx.project)
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            gucs = request_gucs(ctx.auth.role, ctx.auth.claims, ctx.auth.claims_json, method=scope["method"],
                                path=scope["path"], headers=headers)
            async with request_transaction(pool, gucs, acquire_timeout=runtime.settings.pool_acquire_timeout) as conn:
                row = await conn.fetchrow(_SQL)
            assert row is not None
            result["db"] = dict(row)
        body = jsonutil.dumps(result)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


service = Service(name="gateway", prefix="/gateway/v1", build=build)
