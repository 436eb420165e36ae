"""The admin service's dispatcher: the kit's route table and request, plus the control plane's access model.

For each request below /admin/v1:
1. route (`RouteTable.match`; none: 404 "no route matched…", other method: 405);
2. unless the route's right is `OPEN`: authenticate (admin/identity.py: bearer token, else session cookie)
   → 401 `{"message"}`; a cookie-authenticated mutation must carry the session's CSRF token → 403;
3. the right declared on the route (`Route.right`) for the route's `{ref}` (or platform-wide without one;
   `SELF`: any admin) → 403 — before looking the project up, so an admin without rights learns nothing
   of which refs exist;
4. the project of `{ref}` (active or disabled; unknown or deleted: 404 "Project not found"), re-reading
   the store once on a miss (a project created a moment ago by another process);
5. the route's rate guard (the kit's `check_guards`), the handler;
6. a successful mutation (not GET/HEAD/OPTIONS, status < 400) writes exactly one audit record: what the
   handler declared with `request.audit(...)`, else one named after the operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from madbase.admin import audit, identity
from madbase.core.context import get_context
from madbase.core.kit import Response, RouteTable, ServiceKit, Stages, check_guards
from madbase.core.kit.message import MessageError
from madbase.core.kit.routing import Route, param_names
from madbase.core.platform import OPEN, SELF, AdminRequest, AuditRecord, Principal
from madbase.core.projects import Project
from madbase.core.runtime import Runtime
from madbase.core.types import Receive, Scope, Send

log = structlog.get_logger("madbase.admin")

AdminHandler = Callable[[AdminRequest], Awaitable[Response]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

UNAUTHENTICATED = "Unauthorized: sign in, or send a personal access token as Authorization: Bearer"
CSRF_MISSING = "Missing or invalid CSRF token (send the x-csrf-token header given at login)"


def forbidden(right: str, ref: str | None) -> MessageError:
    where = f" on project {ref}" if ref else ""
    return MessageError(403, f"Forbidden: this requires the right {right}{where}")


async def authenticate(runtime: Runtime, request: AdminRequest) -> Principal:
    """The caller of `request`, or 401 (no or invalid credential) / 403 (cookie mutation without CSRF)."""
    pool = runtime.control_pool
    assert pool is not None
    headers = request.headers
    token = identity.bearer(headers)
    if token is not None:
        principal = await identity.from_token(pool, token)
        if principal is None:
            raise MessageError(401, "Unauthorized: invalid, expired or revoked token")
        return principal
    secret = identity.session_cookie(headers)
    if secret is None:
        raise MessageError(401, UNAUTHENTICATED)
    principal = await identity.from_session(pool, secret)
    if principal is None:
        raise MessageError(401, "Unauthorized: the session has expired or was ended; sign in again")
    if request.method not in SAFE_METHODS and not identity.csrf_ok(secret, headers.get("x-csrf-token")):
        raise MessageError(403, CSRF_MISSING)
    return principal


async def resolve_project(runtime: Runtime, ref: str) -> Project:
    found = runtime.projects.lookup(ref)
    if found is None:
        await runtime.projects.refresh()
        found = runtime.projects.lookup(ref)
    if found is None or found[1] == "deleted":
        raise MessageError(404, "Project not found")
    return found[0]


class AdminDispatcher:
    """The ASGI app of /admin/v1 (see the module docstring)."""

    __slots__ = ("__weakref__", "kit", "ref_index", "runtime", "table")  # weakref: core/serviceapps.py

    def __init__(self, kit: ServiceKit, table: RouteTable[AdminHandler], runtime: Runtime) -> None:
        self.kit = kit
        self.table = table
        self.runtime = runtime
        # where each route's {ref} sits among its parameters (computed once)
        self.ref_index: dict[str, int | None] = {}
        for r in table.routes:
            names = param_names(r.pattern)
            self.ref_index[r.pattern] = names.index("ref") if "ref" in names else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        ctx = get_context(scope)
        stages = Stages()
        kit = self.kit
        method: str = scope["method"]
        sub = scope["path"][len(kit.prefix):] or "/"
        try:
            found = self.table.match(method, sub)
            if found is None:
                raise kit.not_found(method, scope["path"])
            route = found.route
            request = AdminRequest(scope, receive, ctx, params=found.params, subpath=sub, operation=route.name,
                                   body_limit=route.body_limit, body_errors=kit.body_errors)
            request.stages = stages
            index = self.ref_index[route.pattern]
            request.ref = found.params[index] if index is not None else None
            await self._admit(route, request)
            check_guards(route, ctx, kit)
            stages.mark("route")
            response = await route.handler(request)
            if method not in SAFE_METHODS and response.status < 400:
                await self._audit(request)
        except kit.error_type as err:
            response = kit.render(err)
        stages.mark("handler")
        await response.send(send)
        stages.mark("send")
        stages.observe(ctx.runtime.metrics, kit.name)

    async def _admit(self, route: Route[AdminHandler], request: AdminRequest) -> None:
        right = route.right
        if right == OPEN:
            return
        principal = await authenticate(self.runtime, request)
        request.principal = principal
        ref = request.ref
        if right != SELF and (right is None or not principal.allows(right, ref)):
            raise forbidden(str(right), ref)
        if ref is not None:
            request.resolved = await resolve_project(self.runtime, ref)

    async def _audit(self, request: AdminRequest) -> None:
        record = request.audited or AuditRecord(request.operation, request.subpath, request.ref, {})
        pool = self.runtime.control_pool
        assert pool is not None
        try:
            await audit.write(pool, request, record)
        except Exception as exc:  # the mutation happened: say so loudly, and answer it
            log.error("audit_write_failed", action=record.action, error=str(exc))
