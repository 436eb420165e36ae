"""The admin service's gateway descriptor and its first routes: the mail catcher's inbox.

    GET    /admin/v1/projects/{ref}/inbox[?email=&limit=]   newest caught mails first (summaries)
    GET    /admin/v1/projects/{ref}/inbox/{id}              one mail with its HTML body
    DELETE /admin/v1/projects/{ref}/inbox                   empty the inbox

The control-plane admin identity does not exist yet, so these are guarded by the project's own service_role
key (apikey / bearer, checked by the gateway like any request); the project is resolved as for every request
(subdomain, `x-project-ref`, or the only project) and must be the `{ref}` of the path, so a key of one project
never reads another's mail. Routes, the service_role guard and the errors (the gateway's (Kong's) `{"message"}`
shape, core/kit/message.py) are the request kit's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from madbase.admin import inbox
from madbase.core.kit import Dispatcher, Request, Response, RouteTable, route
from madbase.core.kit.message import MessageError, message_kit
from madbase.core.numbers import ascii_uint
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.core.types import ASGIApp, Receive, Scope, Send

PREFIX = "/admin/v1"
_SERVICE_ROLE = ("service_role",)


async def _project_pool(request: Request) -> asyncpg.Pool:
    """The pool of the project the path names, which must be the request's own: a key of one project never
    reads another's mail."""
    ctx = request.ctx
    if request.params[0] != ctx.project.ref:
        raise MessageError(404, "Project not found")
    return await ctx.runtime.pools.get(ctx.project)


async def list_inbox(request: Request) -> Response:
    pool = await _project_pool(request)
    limit = request.query.get("limit", str(inbox.MAX_LIST))
    if ascii_uint(limit, 9) is None:
        raise MessageError(400, "limit must be a positive integer")
    messages = await inbox.list_messages(pool, request.query.get("email") or None, int(limit))
    return Response.json({"messages": messages, "inbox_limit": inbox.MAX_LIST})


async def clear_inbox(request: Request) -> Response:
    await inbox.clear(await _project_pool(request))
    return Response(204)


async def get_message(request: Request) -> Response:
    pool = await _project_pool(request)
    message_id = request.params[1]
    message = await inbox.get_message(pool, number) if (number := ascii_uint(message_id)) is not None else None
    if message is None:
        raise MessageError(404, "Message not found")
    return Response.json(message)


ROUTES: RouteTable[Callable[[Request], Awaitable[Response]]] = RouteTable([
    route("GET", "/projects/{ref}/inbox", list_inbox, name="admin.inbox.list", roles=_SERVICE_ROLE),
    route("DELETE", "/projects/{ref}/inbox", clear_inbox, name="admin.inbox.clear", roles=_SERVICE_ROLE),
    route("GET", "/projects/{ref}/inbox/{id}", get_message, name="admin.inbox.get", roles=_SERVICE_ROLE),
])
KIT = message_kit("admin", PREFIX, ROUTES, forbidden="This endpoint requires the project's service_role key")


def build(runtime: Runtime) -> ASGIApp:
    dispatch: Dispatcher[Request] = Dispatcher(KIT, ROUTES, Request)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        await dispatch(scope, receive, send)

    return app


service = Service(name="admin", prefix=PREFIX, build=build)
