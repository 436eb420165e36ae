"""The admin service's gateway descriptor: /admin/v1, the control plane, assembled from every service's
admin routes (`Service.admin_routes`, handed over by app.py) and its own.

Its own routes so far — the mail catcher's inbox (reads the auth service's outbox table through SQL):

    GET    /admin/v1/projects/{ref}/inbox[?email=&limit=]   auth.read   newest caught mails first (summaries)
    GET    /admin/v1/projects/{ref}/inbox/{id}              auth.read   one mail with its HTML body
    DELETE /admin/v1/projects/{ref}/inbox                   auth.write  empty the inbox

Every route declares its right (core/platform.py); the dispatcher (admin/dispatch.py) authenticates the
admin, checks the right for the route's project, resolves it and writes the audit record. Errors are the
gateway's (Kong's) `{"message"}` shape (core/kit/message.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from madbase.admin import inbox
from madbase.admin.dispatch import AdminDispatcher, AdminHandler
from madbase.core.kit import Response, RouteTable, route
from madbase.core.kit.message import MessageError, message_kit
from madbase.core.kit.routing import Route
from madbase.core.numbers import ascii_uint
from madbase.core.platform import OPEN, SELF, AdminRequest, is_right
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.core.types import ASGIApp

PREFIX = "/admin/v1"


async def _project_pool(request: AdminRequest) -> asyncpg.Pool:
    return await request.ctx.runtime.pools.get(request.project)


async def list_inbox(request: AdminRequest) -> Response:
    pool = await _project_pool(request)
    limit = request.query.get("limit", str(inbox.MAX_LIST))
    if ascii_uint(limit, 9) is None:
        raise MessageError(400, "limit must be a positive integer")
    messages = await inbox.list_messages(pool, request.query.get("email") or None, int(limit))
    return Response.json({"messages": messages, "inbox_limit": inbox.MAX_LIST})


async def clear_inbox(request: AdminRequest) -> Response:
    cleared = await inbox.clear(await _project_pool(request))
    await request.audit("inbox.clear", f"projects/{request.project.ref}/inbox", {"messages": cleared})
    return Response(204)


async def get_message(request: AdminRequest) -> Response:
    pool = await _project_pool(request)
    message_id = request.params[1]
    message = await inbox.get_message(pool, number) if (number := ascii_uint(message_id)) is not None else None
    if message is None:
        raise MessageError(404, "Message not found")
    return Response.json(message)


OWN_ROUTES: tuple[Route[Any], ...] = (
    route("GET", "/projects/{ref}/inbox", list_inbox, name="admin.inbox.list", right="auth.read"),
    route("DELETE", "/projects/{ref}/inbox", clear_inbox, name="admin.inbox.clear", right="auth.write"),
    route("GET", "/projects/{ref}/inbox/{id}", get_message, name="admin.inbox.get", right="auth.read"),
)


def assemble(routes: Iterable[Route[Any]]) -> RouteTable[AdminHandler]:
    """The /admin/v1 route table from every service's admin routes; each must declare its right (fail closed:
    a route without one would be refused to everybody, so it is refused at start instead)."""
    table: RouteTable[AdminHandler] = RouteTable(routes)
    for r in table.routes:
        if r.right is None or not (r.right in (OPEN, SELF) or is_right(r.right)):
            raise ValueError(f"admin route {r.name} ({r.pattern}) declares no valid right: {r.right!r}")
        if not r.name.startswith("admin."):
            raise ValueError(f"admin route {r.pattern} must be named admin.<resource>.<verb>, not {r.name!r}")
    return table


def platform_service(routes: Iterable[Route[Any]]) -> Service:
    """The admin service serving `routes` (every service's `admin_routes`, this one's included)."""
    table = assemble(routes)
    kit = message_kit("admin", PREFIX, table, forbidden="Forbidden")

    def build(runtime: Runtime) -> ASGIApp:
        return AdminDispatcher(kit, table, runtime)

    return Service(name="admin", prefix=PREFIX, build=build, platform=True, admin_routes=tuple(table.routes))


# This service's own contribution, collected by app.py like every other service's.
service = platform_service(OWN_ROUTES)
