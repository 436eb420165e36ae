"""The admins, roles and role assignments of the control plane: every SQL statement on them.

Roles are data (`madbase_control.roles`: a name and rights patterns, core/platform.py); built-in roles cannot
be changed or deleted, a role still assigned cannot be deleted. The built-in local admin (`builtin='local'`)
cannot be changed, deleted, nor log in.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.kit.message import MessageError
from madbase.core.types import DbConn

MAX_LIST = 1000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")

_ADMIN_COLUMNS = """
a.id::text as id, a.email, a.builtin, a.disabled, a.created_at, a.updated_at,
exists (select 1 from madbase_control.totp_factors f where f.admin_id = a.id and f.verified_at is not null)
  as totp_enabled,
coalesce((select jsonb_agg(jsonb_build_object('id', ra.id::text, 'role', ra.role, 'project_ref', ra.project_ref)
                           order by ra.created_at)
          from madbase_control.role_assignments ra where ra.admin_id = a.id), '[]'::jsonb) as roles
"""


def normal_email(value: object) -> str:
    """An admin's e-mail as stored (trimmed); 400 for anything that is not one."""
    if not isinstance(value, str) or not _EMAIL.match(value.strip()) or len(value.strip()) > 320:
        raise MessageError(400, "email must be an e-mail address")
    return value.strip()


def admin_json(row: asyncpg.Record) -> dict[str, Any]:
    roles = row["roles"]
    return {"id": row["id"], "email": row["email"], "builtin": row["builtin"], "disabled": row["disabled"],
            "totp_enabled": row["totp_enabled"],
            "roles": jsonutil.loads(roles) if isinstance(roles, str) else roles,
            "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat()}


def is_uuid(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", text))


# -- admins ------------------------------------------------------------------------------------------------
async def list_admins(pool: asyncpg.Pool, email: str | None, after: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"select {_ADMIN_COLUMNS} from madbase_control.admins a "
        "where ($1::text is null or lower(a.email) like '%' || lower($1) || '%') "
        "and ($2::text is null or lower(a.email) > lower($2)) order by lower(a.email) limit $3",
        email, after, min(max(limit, 1), MAX_LIST))
    return [admin_json(r) for r in rows]


async def get_admin(pool: asyncpg.Pool | DbConn, admin_id: str) -> dict[str, Any] | None:
    if not is_uuid(admin_id):
        return None
    row = await pool.fetchrow(f"select {_ADMIN_COLUMNS} from madbase_control.admins a where a.id = $1::uuid",
                              admin_id)
    return None if row is None else admin_json(row)


async def count_humans(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("select count(*) from madbase_control.admins where builtin is null"))


async def create_admin(conn: DbConn, email: str, password_hash: str | None) -> str:
    try:
        return str(await conn.fetchval(
            "insert into madbase_control.admins (email, password_hash) values ($1, $2) returning id::text",
            email, password_hash))
    except asyncpg.UniqueViolationError:
        raise MessageError(409, "An admin with this email already exists") from None


async def login_row(pool: asyncpg.Pool, email: str) -> asyncpg.Record | None:
    """The admin who may log in with `email` (not built in, not disabled), with their password hash."""
    return await pool.fetchrow(
        "select id::text as id, email, password_hash from madbase_control.admins "
        "where lower(email) = lower($1) and builtin is null and not disabled", email)


async def password_hash(pool: asyncpg.Pool, admin_id: str) -> str | None:
    value = await pool.fetchval("select password_hash from madbase_control.admins where id = $1::uuid", admin_id)
    return str(value) if value is not None else None


async def update_admin(conn: DbConn, admin_id: str, *, email: str | None = None, disabled: bool | None = None,
                       password_hash: str | None = None) -> bool:
    try:
        result = await conn.execute(
            "update madbase_control.admins set email = coalesce($2, email), disabled = coalesce($3, disabled), "
            "password_hash = coalesce($4, password_hash), updated_at = now() "
            "where id = $1::uuid and builtin is null", admin_id, email, disabled, password_hash)
    except asyncpg.UniqueViolationError:
        raise MessageError(409, "An admin with this email already exists") from None
    return result.endswith(" 1")


async def delete_admin(pool: asyncpg.Pool, admin_id: str) -> bool:
    result = await pool.execute("delete from madbase_control.admins where id = $1::uuid and builtin is null",
                                admin_id)
    return result.endswith(" 1")


# -- roles -------------------------------------------------------------------------------------------------
def role_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"name": row["name"], "description": row["description"], "rights": list(row["rights"]),
            "builtin": row["builtin"], "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat()}


async def list_roles(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("select * from madbase_control.roles order by builtin desc, name limit $1", MAX_LIST)
    return [role_json(r) for r in rows]


async def get_role(pool: asyncpg.Pool, name: str) -> dict[str, Any] | None:
    row = await pool.fetchrow("select * from madbase_control.roles where name = $1", name)
    return None if row is None else role_json(row)


async def create_role(pool: asyncpg.Pool, name: str, description: str, rights: list[str]) -> dict[str, Any]:
    try:
        row = await pool.fetchrow("insert into madbase_control.roles (name, description, rights) values ($1, $2, $3) "
                                  "returning *", name, description, rights)
    except asyncpg.UniqueViolationError:
        raise MessageError(409, "A role with this name already exists") from None
    except asyncpg.CheckViolationError:
        raise MessageError(400, "name must be 2-63 lower-case letters, digits or _, starting with a letter") from None
    assert row is not None
    return role_json(row)


async def update_role(pool: asyncpg.Pool, name: str, description: str | None, rights: list[str] | None
                      ) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "update madbase_control.roles set description = coalesce($2, description), rights = coalesce($3, rights), "
        "updated_at = now() where name = $1 and not builtin returning *", name, description, rights)
    return None if row is None else role_json(row)


async def delete_role(pool: asyncpg.Pool, name: str) -> bool:
    try:
        result = await pool.execute("delete from madbase_control.roles where name = $1 and not builtin", name)
    except asyncpg.ForeignKeyViolationError:
        raise MessageError(409, "The role is still assigned; remove its assignments first") from None
    return result.endswith(" 1")


# -- assignments -------------------------------------------------------------------------------------------
async def assign(conn: DbConn | asyncpg.Pool, admin_id: str, role: str, project_ref: str | None) -> dict[str, Any]:
    try:
        row = await conn.fetchrow(
            "insert into madbase_control.role_assignments (admin_id, role, project_ref) values ($1::uuid, $2, $3) "
            "returning id::text as id, admin_id::text as admin_id, role, project_ref, created_at",
            admin_id, role, project_ref)
    except asyncpg.UniqueViolationError:
        raise MessageError(409, "The admin already has this role there") from None
    except asyncpg.ForeignKeyViolationError:
        raise MessageError(404, "No such admin, role or project") from None
    assert row is not None
    return assignment_json(row)


def assignment_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "admin_id": row["admin_id"], "role": row["role"], "project_ref": row["project_ref"],
            "created_at": row["created_at"].isoformat()}


async def unassign(pool: asyncpg.Pool, assignment_id: str, *, admin_id: str | None = None,
                   project_ref: str | None = None) -> dict[str, Any] | None:
    """Remove an assignment (of that admin, or on that project); the removed one, or None."""
    if not is_uuid(assignment_id):
        return None
    row = await pool.fetchrow(
        "delete from madbase_control.role_assignments ra where ra.id = $1::uuid "
        "and ($2::uuid is null or ra.admin_id = $2::uuid) and ($3::text is null or ra.project_ref = $3) "
        "and not exists (select 1 from madbase_control.admins a where a.id = ra.admin_id and a.builtin is not null) "
        "returning id::text as id, admin_id::text as admin_id, role, project_ref, created_at",
        assignment_id, admin_id, project_ref)
    return None if row is None else assignment_json(row)


async def members(pool: asyncpg.Pool, project_ref: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "select ra.id::text as id, ra.admin_id::text as admin_id, a.email, ra.role, ra.project_ref, ra.created_at "
        "from madbase_control.role_assignments ra join madbase_control.admins a on a.id = ra.admin_id "
        "where ra.project_ref = $1 order by a.email, ra.role limit $2", project_ref, MAX_LIST)
    return [{**assignment_json(r), "email": r["email"]} for r in rows]


async def admin_id_by_email(pool: asyncpg.Pool, email: str) -> str | None:
    value = await pool.fetchval("select id::text from madbase_control.admins where lower(email) = lower($1) "
                                "and builtin is null", email)
    return str(value) if value is not None else None


async def project_exists(pool: asyncpg.Pool | DbConn, ref: str) -> bool:
    return bool(await pool.fetchval("select exists(select 1 from madbase_control.projects where ref = $1 "
                                    "and status <> 'deleted')", ref))
