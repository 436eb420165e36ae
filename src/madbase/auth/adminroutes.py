"""Auth's contribution to the control plane (`Service(admin_routes=...)`, docs/admin-operations.md): a
project's users — list and search, create, invite, get, update, ban, delete, revoke their sessions, reset
their MFA — through /admin/v1 with an admin's rights (auth.read / auth.write) instead of the service_role key.

Each route runs the GoTrue admin handler of auth/admin.py itself (the same validation, password policy,
hashing, mails and GoTrue audit trail as `/auth/v1/admin/...`), called with a request made for it: the
project of `{ref}` and the service_role identity. Their refusals (`AuthError`) become the control plane's
`{"message"}` with the same status. Sessions and factors go through auth's repository (auth/repo/).
"""

from __future__ import annotations

from typing import Any

from madbase.auth import admin, config, users
from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp
from madbase.auth.repo import factors as factor_repo
from madbase.auth.repo import sessions as session_repo
from madbase.auth.repo import users as user_repo
from madbase.core import jsonutil, serviceapps
from madbase.core.authn import AuthContext
from madbase.core.context import RequestContext
from madbase.core.db import internal_transaction
from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.kit.routing import Route
from madbase.core.platform import AdminRequest, json_object_bytes

BODY_LIMIT = 1024 * 1024  # as /auth/v1's
SERVICE_ROLE = AuthContext(role="service_role", claims={"role": "service_role"},
                           claims_json='{"role":"service_role"}', token=None, key_role="service_role")
_DROP_HEADERS = ("authorization", "cookie", "apikey", "x-csrf-token")


def _context(request: AdminRequest) -> RequestContext:
    ctx = request.ctx
    return RequestContext(request_id=ctx.request_id, project_or_none=request.project, auth=SERVICE_ROLE,
                          runtime=ctx.runtime, client_ip=ctx.client_ip, via_trusted_proxy=ctx.via_trusted_proxy)


async def _req(request: AdminRequest, *, body: bytes = b"", params: dict[str, str] | None = None,
               query: dict[str, str] | None = None) -> Req:
    project = request.project
    pool = await request.ctx.runtime.pools.get(project)
    headers = {k: v for k, v in request.headers.items() if k not in _DROP_HEADERS}
    return Req(method=request.method, path=request.subpath, query=dict(request.query) if query is None else query,
               headers=headers, body=body, ctx=_context(request), config=config.for_project(project), pool=pool,
               scheme=request.scheme, params=params or {}, peer=request.ctx.client_ip, stages=request.stages)


async def _call(handler: Any, req: Req) -> Resp:
    try:
        resp: Resp = await handler(req)
    except AuthError as err:
        raise MessageError(err.status, err.message) from None
    return resp


def _json(resp: Resp) -> Any:
    return jsonutil.loads(resp.body) if resp.body else None


def _user_id(request: AdminRequest) -> str:
    uid = request.params[1]
    if users.parse_uuid(uid) is None:
        raise MessageError(404, "User not found")
    return uid


def _mail_sent(request: AdminRequest) -> None:
    """Wake auth's mail sender for the project (as /auth/v1's routes that send mail do)."""
    app = serviceapps.app_of(request.ctx.runtime, "auth")
    sender = getattr(app, "sender", None)
    if sender is not None:
        sender.watch(request.project)
        sender.poke()


# -- handlers ------------------------------------------------------------------------------------------
async def list_users(request: AdminRequest) -> Response:
    """Users, newest first, `per_page` (≤ 1000) at a time; `search` (or GoTrue's `filter`) matches e-mail,
    phone and names; `cursor` is the next page's number."""
    q = request.query
    page = q.get("cursor") or q.get("page") or "1"
    per_page = q.get("per_page") or q.get("limit") or "50"
    query = {"page": page, "per_page": per_page, "filter": q.get("search") or q.get("filter") or ""}
    resp = await _call(admin.list_users, await _req(request, query=query))
    data = _json(resp)
    total = int(dict(resp.headers).get(b"x-total-count", b"0"))
    size = min(int(per_page), 1000) if per_page.isdigit() and int(per_page) else 50
    current = int(page) if page.isdigit() and int(page) else 1
    more = current * size < total
    return Response.json({"users": data["users"], "total": total,
                          "next_cursor": str(current + 1) if more else None})


async def create_user(request: AdminRequest) -> Response:
    resp = await _call(admin.create_user, await _req(request, body=await json_object_bytes(request)))
    user = _json(resp)
    await request.audit("auth.user.create", f"users/{user['id']}", {"email": user.get("email"),
                                                                      "phone": user.get("phone")})
    return Response.json(user, 201)


async def invite_user(request: AdminRequest) -> Response:
    resp = await _call(admin.invite, await _req(request, body=await json_object_bytes(request)))
    _mail_sent(request)
    user = _json(resp)
    await request.audit("auth.user.invite", f"users/{user['id']}", {"email": user.get("email")})
    return Response.json(user, 201)


async def get_user(request: AdminRequest) -> Response:
    uid = _user_id(request)
    return Response.json(_json(await _call(admin.get_user, await _req(request, params={"user_id": uid}))))


async def update_user(request: AdminRequest) -> Response:
    uid = _user_id(request)
    body = await json_object_bytes(request)
    resp = await _call(admin.update_user, await _req(request, body=body, params={"user_id": uid}))
    fields = sorted(jsonutil.loads(body)) if body.strip() else []
    await request.audit("auth.user.update", f"users/{uid}", {"fields": fields})
    return Response.json(_json(resp))


async def ban_user(request: AdminRequest) -> Response:
    """Ban for `duration` (a Go duration such as "24h"; "none" lifts the ban); a ban ends the sessions."""
    uid = _user_id(request)
    body = jsonutil.loads((await json_object_bytes(request)).strip() or b"{}")
    duration = body.get("duration")
    if not isinstance(duration, str) or not duration:
        raise MessageError(400, 'duration must be a duration such as "24h", or "none" to lift the ban')
    payload = jsonutil.dumps({"ban_duration": duration})
    resp = await _call(admin.update_user, await _req(request, body=payload, params={"user_id": uid}))
    await request.audit("auth.user.ban" if duration != "none" else "auth.user.unban", f"users/{uid}",
                        {"duration": duration})
    return Response.json(_json(resp))


async def delete_user(request: AdminRequest) -> Response:
    """Delete (`?soft=true`: GoTrue's soft delete, the row kept with its identifiers obfuscated)."""
    uid = _user_id(request)
    soft = request.query.get("soft", "false").lower() == "true"
    payload = jsonutil.dumps({"should_soft_delete": soft})
    await _call(admin.delete_user, await _req(request, body=payload, params={"user_id": uid}))
    await request.audit("auth.user.delete", f"users/{uid}", {"soft": soft})
    return Response(204)


async def _existing(request: AdminRequest) -> Any:
    uid = users.parse_uuid(_user_id(request))
    assert uid is not None
    pool = await request.ctx.runtime.pools.get(request.project)
    return uid, pool


async def revoke_sessions(request: AdminRequest) -> Response:
    """End every session of the user (their refresh tokens stop working; issued access tokens run out)."""
    uid, pool = await _existing(request)
    async with internal_transaction(pool, "supabase_auth_admin") as conn:
        if await user_repo.load(conn, uid) is None:
            raise MessageError(404, "User not found")
        count = await conn.fetchval("select count(*) from auth.sessions where user_id = $1", uid)
        await session_repo.delete_of_user(conn, uid)
    await request.audit("auth.user.sessions_revoke", f"users/{uid}/sessions", {"sessions": int(count or 0)})
    return Response(204)


async def list_factors(request: AdminRequest) -> Response:
    uid = _user_id(request)
    resp = await _call(admin.list_factors, await _req(request, params={"user_id": uid}))
    return Response.json({"factors": _json(resp), "next_cursor": None})


async def reset_mfa(request: AdminRequest) -> Response:
    """Remove every MFA factor of the user (they sign in with their first factor again and may re-enrol)."""
    uid, pool = await _existing(request)
    async with internal_transaction(pool, "supabase_auth_admin") as conn:
        if await user_repo.load(conn, uid) is None:
            raise MessageError(404, "User not found")
        count = await conn.fetchval("select count(*) from auth.mfa_factors where user_id = $1", uid)
        await factor_repo.delete_of_user(conn, uid)
    await request.audit("auth.user.mfa_reset", f"users/{uid}/factors", {"factors": int(count or 0)})
    return Response(204)


async def delete_factor(request: AdminRequest) -> Response:
    uid = _user_id(request)
    fid = request.params[2]
    resp = await _call(admin.delete_factor, await _req(request, params={"user_id": uid, "factor_id": fid}))
    await request.audit("auth.user.factor_delete", f"users/{uid}/factors/{fid}")
    return Response.json(_json(resp))


_U = "/projects/{ref}/users"
_B = BODY_LIMIT
ADMIN_ROUTES: tuple[Route[Any], ...] = (
    route("GET", _U, list_users, name="admin.users.list", right="auth.read"),
    route("POST", _U, create_user, name="admin.users.create", right="auth.write", body_limit=_B),
    route("POST", _U + "/invite", invite_user, name="admin.users.invite", right="auth.write", body_limit=_B),
    route("GET", _U + "/{id}", get_user, name="admin.users.get", right="auth.read"),
    route("PATCH", _U + "/{id}", update_user, name="admin.users.update", right="auth.write", body_limit=_B),
    route("DELETE", _U + "/{id}", delete_user, name="admin.users.delete", right="auth.write"),
    route("POST", _U + "/{id}/ban", ban_user, name="admin.users.ban", right="auth.write", body_limit=_B),
    route("DELETE", _U + "/{id}/sessions", revoke_sessions, name="admin.users.revoke_sessions", right="auth.write"),
    route("GET", _U + "/{id}/factors", list_factors, name="admin.users.factors", right="auth.read"),
    route("DELETE", _U + "/{id}/factors", reset_mfa, name="admin.users.mfa_reset", right="auth.write"),
    route("DELETE", _U + "/{id}/factors/{factor_id}", delete_factor, name="admin.users.factor_delete",
          right="auth.write"),
)
