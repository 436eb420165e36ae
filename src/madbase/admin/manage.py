"""Managing the control plane's people: admins, roles (data), role assignments (platform-wide or per project,
also as a project's members) and the audit log (routes in admin/service.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from madbase.admin import accounts, audit, credentials, passwords
from madbase.admin.http import body, control, limit
from madbase.core.kit import Response
from madbase.core.kit.message import MessageError
from madbase.core.numbers import ascii_uint
from madbase.core.platform import AdminRequest, is_pattern

MAX_RIGHTS = 100


def _admin_id(request: AdminRequest) -> str:
    admin_id = request.params[0]
    if not accounts.is_uuid(admin_id):
        raise MessageError(404, "Admin not found")
    return admin_id


def _role_spec(item: object, project_ref: str | None = None) -> tuple[str, str | None]:
    """(role, project_ref) of `{"role": ..., "project_ref": ...}`."""
    if not isinstance(item, dict) or not isinstance(item.get("role"), str):
        raise MessageError(400, "a role assignment is {\"role\": name, \"project_ref\": ref or null}")
    ref = item.get("project_ref", project_ref)
    if ref is not None and not isinstance(ref, str):
        raise MessageError(400, "project_ref must be a project ref or null")
    return item["role"], ref


# -- admins ------------------------------------------------------------------------------------------------
async def list_admins(request: AdminRequest) -> Response:
    email = request.query.get("email") or None
    rows = await accounts.list_admins(control(request), email, request.query.get("cursor") or None,
                                      limit(request, 100, accounts.MAX_LIST))
    return Response.json({"admins": rows, "next_cursor": rows[-1]["email"] if rows else None})


async def create_admin(request: AdminRequest) -> Response:
    form = await body(request)
    email = accounts.normal_email(form.get("email"))
    password = form.get("password")
    generated = password is None
    if generated:
        password = passwords.generate()
    problem = passwords.policy_problem(password)
    if problem:
        raise MessageError(400, problem)
    assert isinstance(password, str)
    roles = form.get("roles") or []
    if not isinstance(roles, list) or len(roles) > 100:
        raise MessageError(400, "roles must be a list of role assignments")
    specs = [_role_spec(item) for item in roles]
    encoded = await passwords.hash_password(password)
    pool = control(request)
    async with pool.acquire() as conn, conn.transaction():
        admin_id = await accounts.create_admin(conn, email, encoded)
        for role, ref in specs:
            await accounts.assign(conn, admin_id, role, ref)
        created = await accounts.get_admin(conn, admin_id)
    assert created is not None
    await request.audit("admin.create", f"admins/{admin_id}", {"email": email, "roles": roles})
    extra = {"password": password} if generated else {}  # shown once, never stored in clear
    return Response.json({**created, **extra}, 201, headers={"cache-control": "no-store"})


async def get_admin(request: AdminRequest) -> Response:
    found = await accounts.get_admin(control(request), _admin_id(request))
    if found is None:
        raise MessageError(404, "Admin not found")
    return Response.json(found)


async def update_admin(request: AdminRequest) -> Response:
    admin_id = _admin_id(request)
    form = await body(request)
    email = accounts.normal_email(form["email"]) if form.get("email") is not None else None
    disabled = form.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise MessageError(400, "disabled must be true or false")
    if disabled and admin_id == request.admin.admin_id:
        raise MessageError(400, "You cannot disable yourself")
    encoded = None
    if form.get("password") is not None:
        problem = passwords.policy_problem(form["password"])
        if problem:
            raise MessageError(400, problem)
        encoded = await passwords.hash_password(form["password"])
    pool = control(request)
    async with pool.acquire() as conn, conn.transaction():
        if not await accounts.update_admin(conn, admin_id, email=email, disabled=disabled, password_hash=encoded):
            raise MessageError(404, "Admin not found (the built-in local admin cannot be changed)")
        if encoded is not None or disabled:
            await credentials.revoke_sessions(conn, admin_id)
        updated = await accounts.get_admin(conn, admin_id)
    changed = sorted(k for k in ("email", "disabled", "password") if form.get(k) is not None)
    await request.audit("admin.update", f"admins/{admin_id}", {"changed": changed, "email": email,
                                                               "disabled": disabled})
    return Response.json(updated)


async def delete_admin(request: AdminRequest) -> Response:
    admin_id = _admin_id(request)
    if admin_id == request.admin.admin_id:
        raise MessageError(400, "You cannot delete yourself")
    if not await accounts.delete_admin(control(request), admin_id):
        raise MessageError(404, "Admin not found (the built-in local admin cannot be deleted)")
    await request.audit("admin.delete", f"admins/{admin_id}")
    return Response(204)


async def revoke_admin_sessions(request: AdminRequest) -> Response:
    admin_id = _admin_id(request)
    ended = await credentials.revoke_sessions(control(request), admin_id)
    await request.audit("admin.sessions.revoke", f"admins/{admin_id}", {"sessions": ended})
    return Response.json({"revoked": ended})


async def add_role(request: AdminRequest) -> Response:
    admin_id = _admin_id(request)
    role, ref = _role_spec(await body(request))
    pool = control(request)
    async with pool.acquire() as conn:
        if await accounts.get_admin(conn, admin_id) is None:
            raise MessageError(404, "Admin not found")
        assignment = await accounts.assign(conn, admin_id, role, ref)
    await request.audit("admin.role.assign", f"admins/{admin_id}", {"role": role, "assignment": assignment["id"]},
                        project_ref=ref)
    return Response.json(assignment, 201)


async def remove_role(request: AdminRequest) -> Response:
    admin_id = _admin_id(request)
    removed = await accounts.unassign(control(request), request.params[1], admin_id=admin_id)
    if removed is None:
        raise MessageError(404, "Role assignment not found")
    await request.audit("admin.role.unassign", f"admins/{admin_id}", {"role": removed["role"]},
                        project_ref=removed["project_ref"])
    return Response(204)


# -- a project's members (assignments on that project) -------------------------------------------------------
async def list_members(request: AdminRequest) -> Response:
    return Response.json({"members": await accounts.members(control(request), request.project.ref)})


async def add_member(request: AdminRequest) -> Response:
    form = await body(request)
    role, _ = _role_spec(form, request.project.ref)
    pool = control(request)
    admin_id = await accounts.admin_id_by_email(pool, accounts.normal_email(form.get("email")))
    if admin_id is None:
        raise MessageError(404, "Admin not found")
    assignment = await accounts.assign(pool, admin_id, role, request.project.ref)
    await request.audit("admin.member.add", f"admins/{admin_id}", {"role": role})
    return Response.json(assignment, 201)


async def remove_member(request: AdminRequest) -> Response:
    removed = await accounts.unassign(control(request), request.params[1], project_ref=request.project.ref)
    if removed is None:
        raise MessageError(404, "Member not found")
    await request.audit("admin.member.remove", f"admins/{removed['admin_id']}", {"role": removed["role"]})
    return Response(204)


# -- roles -------------------------------------------------------------------------------------------------
def _rights(value: object) -> list[str]:
    if (not isinstance(value, list) or not value or len(value) > MAX_RIGHTS
            or not all(isinstance(r, str) and is_pattern(r) for r in value)):
        raise MessageError(400, "rights must be a non-empty list of rights ('area.verb', 'area.*', '*.verb', '*', "
                                "each possibly prefixed by '!')")
    return list(dict.fromkeys(value))


def _description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 1000:
        raise MessageError(400, "description must be a string of at most 1000 characters")
    return value


async def list_roles(request: AdminRequest) -> Response:
    return Response.json({"roles": await accounts.list_roles(control(request))})


async def create_role(request: AdminRequest) -> Response:
    form = await body(request)
    name = form.get("name")
    if not isinstance(name, str) or len(name) > 63:
        raise MessageError(400, "name must be 2-63 lower-case letters, digits or _, starting with a letter")
    role = await accounts.create_role(control(request), name, _description(form.get("description")) or "",
                                      _rights(form.get("rights")))
    await request.audit("admin.role.create", f"roles/{name}", {"rights": role["rights"]})
    return Response.json(role, 201)


async def get_role(request: AdminRequest) -> Response:
    role = await accounts.get_role(control(request), request.params[0])
    if role is None:
        raise MessageError(404, "Role not found")
    return Response.json(role)


async def update_role(request: AdminRequest) -> Response:
    form = await body(request)
    rights = _rights(form["rights"]) if form.get("rights") is not None else None
    name = request.params[0]
    role = await accounts.update_role(control(request), name, _description(form.get("description")), rights)
    if role is None:
        raise MessageError(404, "Role not found (built-in roles cannot be changed)")
    await request.audit("admin.role.update", f"roles/{name}", {"rights": role["rights"]})
    return Response.json(role)


async def delete_role(request: AdminRequest) -> Response:
    name = request.params[0]
    if not await accounts.delete_role(control(request), name):
        raise MessageError(404, "Role not found (built-in roles cannot be deleted)")
    await request.audit("admin.role.delete", f"roles/{name}")
    return Response(204)


# -- audit -------------------------------------------------------------------------------------------------
def _time(request: AdminRequest, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise MessageError(400, f"{name} must be an ISO 8601 time") from None
    if value.tzinfo is None:
        raise MessageError(400, f"{name} must include a time zone (e.g. 2026-12-03T21:00:00Z)")
    return value


async def _audit_page(request: AdminRequest, project: str | None) -> Response:
    cursor = request.query.get("cursor")
    if cursor and ascii_uint(cursor, 18) is None:
        raise MessageError(400, "cursor must be the next_cursor of a previous page")
    size = limit(request, 50, audit.MAX_LIMIT)
    records: list[dict[str, Any]] = await audit.list_records(
        control(request), before=int(cursor) if cursor else None, actor=request.query.get("actor") or None,
        action=request.query.get("action") or None, project=project, since=_time(request, "since"),
        until=_time(request, "until"), limit=size)
    return Response.json({"records": records,
                          "next_cursor": str(records[-1]["id"]) if len(records) == size else None})


async def list_audit(request: AdminRequest) -> Response:
    return await _audit_page(request, request.query.get("project") or None)


async def list_project_audit(request: AdminRequest) -> Response:
    return await _audit_page(request, request.project.ref)
