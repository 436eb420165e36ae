"""The admin service's gateway descriptor and its first routes: the mail catcher's inbox.

    GET    /admin/v1/projects/{ref}/inbox[?email=&limit=]   newest caught mails first (summaries)
    GET    /admin/v1/projects/{ref}/inbox/{id}              one mail with its HTML body
    DELETE /admin/v1/projects/{ref}/inbox                   empty the inbox

The control-plane admin identity does not exist yet, so these are guarded by the project's own service_role
key (apikey / bearer, checked by the gateway like any request); the project is resolved as for every request
(subdomain, `x-project-ref`, or the only project) and must be the `{ref}` of the path, so a key of one project
never reads another's mail. Errors are in the gateway's (Kong's) `{"message"}` shape.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from madbase.admin import inbox
from madbase.core import jsonutil
from madbase.core.context import get_context
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.core.types import ASGIApp, Receive, Scope, Send


async def _answer(send: Send, status: int, body: Any) -> None:
    raw = b"" if body is None else jsonutil.dumps(body)
    headers = [(b"content-length", str(len(raw)).encode())]
    if body is not None:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def _query(scope: Scope) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {k: v[0] for k, v in parsed.items() if v}


def build(runtime: Runtime) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        ctx = get_context(scope)
        parts = [p for p in scope["path"].removeprefix(service.prefix).split("/") if p]
        if len(parts) < 3 or parts[0] != "projects" or parts[2] != "inbox" or len(parts) > 4:
            await _answer(send, 404, {"message": "no route matched with those values"})
            return
        if parts[1] != ctx.project.ref:
            await _answer(send, 404, {"message": "Project not found"})
            return
        if ctx.auth.role != "service_role":
            await _answer(send, 401, {"message": "This endpoint requires the project's service_role key"})
            return
        method = scope["method"]
        pool = await ctx.runtime.pools.get(ctx.project)
        if len(parts) == 3 and method == "GET":
            query = _query(scope)
            limit = query.get("limit", str(inbox.MAX_LIST))
            if not (limit.isascii() and limit.isdigit()) or len(limit) > 9:
                await _answer(send, 400, {"message": "limit must be a positive integer"})
                return
            messages = await inbox.list_messages(pool, query.get("email") or None, int(limit))
            await _answer(send, 200, {"messages": messages, "inbox_limit": inbox.MAX_LIST})
        elif len(parts) == 3 and method == "DELETE":
            await inbox.clear(pool)
            await _answer(send, 204, None)
        elif len(parts) == 4 and method == "GET":
            if not (parts[3].isascii() and parts[3].isdigit()) or len(parts[3]) > 18:
                await _answer(send, 404, {"message": "Message not found"})
                return
            message = await inbox.get_message(pool, int(parts[3]))
            if message is None:
                await _answer(send, 404, {"message": "Message not found"})
            else:
                await _answer(send, 200, message)
        else:
            await _answer(send, 405, {"message": "Method not allowed"})

    return app


service = Service(name="admin", prefix="/admin/v1", build=build)
