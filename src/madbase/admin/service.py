"""The admin service's gateway descriptor: /admin/v1, the control plane, assembled from every service's
admin routes (`Service.admin_routes`, handed over by app.py) and its own: the caller's identity (login,
sessions, tokens, TOTP: admin/me.py), admins, roles, assignments and members (admin/manage.py), the audit log,
and the mail catcher's inbox (which reads the auth service's outbox table through SQL). See docs/admin.md.

Every route declares its right (core/platform.py); the dispatcher (admin/dispatch.py) authenticates the
admin, checks the right for the route's project, resolves it and writes the audit record. Errors are the
gateway's (Kong's) `{"message"}` shape (core/kit/message.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from madbase.admin import http, inbox, keyroutes, manage, me, opsroutes, projectroutes, settingsroutes, usage
from madbase.admin.dispatch import AdminDispatcher, AdminHandler
from madbase.admin.migrationroutes import ROUTES as MIGRATION_ROUTES  # db push (the CLI's branch)
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


_B = http.MAX_BODY
OWN_ROUTES: tuple[Route[Any], ...] = (
    # the caller's own identity (admin/me.py)
    route("POST", "/login", me.login, name="admin.session.login", right=OPEN, body_limit=_B),
    route("POST", "/logout", me.logout, name="admin.session.logout", right=SELF, body_limit=_B),
    route("GET", "/me", me.me, name="admin.me.get", right=SELF),
    route("PUT", "/me/password", me.change_password, name="admin.me.password", right=SELF, body_limit=_B),
    route("GET", "/me/sessions", me.list_sessions, name="admin.sessions.list", right=SELF),
    route("DELETE", "/me/sessions/{id}", me.revoke_session, name="admin.sessions.revoke", right=SELF),
    route("GET", "/me/tokens", me.list_tokens, name="admin.tokens.list", right=SELF),
    route("POST", "/me/tokens", me.create_token, name="admin.tokens.create", right=SELF, body_limit=_B),
    route("DELETE", "/me/tokens/{id}", me.revoke_token, name="admin.tokens.revoke", right=SELF),
    route("POST", "/me/totp", me.totp_enrol, name="admin.totp.enrol", right=SELF, body_limit=_B),
    route("POST", "/me/totp/verify", me.totp_verify, name="admin.totp.verify", right=SELF, body_limit=_B),
    route("DELETE", "/me/totp", me.totp_disable, name="admin.totp.disable", right=SELF, body_limit=_B),
    route("POST", "/me/totp/recovery-codes", me.totp_recovery_codes, name="admin.totp.recovery_codes", right=SELF,
          body_limit=_B),
    # admins, roles, assignments, members (admin/manage.py)
    route("GET", "/admins", manage.list_admins, name="admin.admins.list", right="admins.read"),
    route("POST", "/admins", manage.create_admin, name="admin.admins.create", right="admins.write", body_limit=_B),
    route("GET", "/admins/{id}", manage.get_admin, name="admin.admins.get", right="admins.read"),
    route("PATCH", "/admins/{id}", manage.update_admin, name="admin.admins.update", right="admins.write",
          body_limit=_B),
    route("DELETE", "/admins/{id}", manage.delete_admin, name="admin.admins.delete", right="admins.write"),
    route("DELETE", "/admins/{id}/sessions", manage.revoke_admin_sessions, name="admin.admins.revoke_sessions",
          right="admins.write"),
    route("POST", "/admins/{id}/roles", manage.add_role, name="admin.admins.assign", right="admins.write",
          body_limit=_B),
    route("DELETE", "/admins/{id}/roles/{assignment}", manage.remove_role, name="admin.admins.unassign",
          right="admins.write"),
    route("GET", "/roles", manage.list_roles, name="admin.roles.list", right="admins.read"),
    route("POST", "/roles", manage.create_role, name="admin.roles.create", right="admins.write", body_limit=_B),
    route("GET", "/roles/{name}", manage.get_role, name="admin.roles.get", right="admins.read"),
    route("PATCH", "/roles/{name}", manage.update_role, name="admin.roles.update", right="admins.write",
          body_limit=_B),
    route("DELETE", "/roles/{name}", manage.delete_role, name="admin.roles.delete", right="admins.write"),
    route("GET", "/projects/{ref}/members", manage.list_members, name="admin.members.list", right="admins.read"),
    route("POST", "/projects/{ref}/members", manage.add_member, name="admin.members.add", right="admins.write",
          body_limit=_B),
    route("DELETE", "/projects/{ref}/members/{id}", manage.remove_member, name="admin.members.remove",
          right="admins.write"),
    # the audit log
    route("GET", "/audit", manage.list_audit, name="admin.audit.list", right="audit.read"),
    route("GET", "/projects/{ref}/audit", manage.list_project_audit, name="admin.audit.project", right="audit.read"),
    # the mail catcher's inbox
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
        # with the process's per-project usage sampler (admin/usage.py), started and stopped with the gateway
        return usage.WithSampler(AdminDispatcher(kit, table, runtime), runtime)

    return Service(name="admin", prefix=PREFIX, build=build, platform=True, admin_routes=tuple(table.routes))


# This service's own contribution, collected by app.py like every other service's: its identity routes and
# the platform's own areas, each in its module.
service = platform_service(OWN_ROUTES + projectroutes.ROUTES + keyroutes.ROUTES + settingsroutes.ROUTES
                           + opsroutes.ROUTES
                           + MIGRATION_ROUTES)
