"""Tenant database bootstrap: Supabase's roles, schemas and helpers, then the login role MadBase uses.

Idempotent and safe to run at every start on any PostgreSQL >= 14. Runs with the project's database URL
(an owner/superuser); requests later connect as the project's login role, which can only switch to
anon / authenticated / service_role.
"""

from __future__ import annotations

import asyncpg

from madbase.core import migrations


class BootstrapError(Exception):
    pass


async def ensure_login_role(conn: asyncpg.Connection, role: str, password: str) -> None:
    """Create or update the NOINHERIT login role; quoting is done by PostgreSQL's format(%I, %L)."""
    for attempt in range(2):
        exists = await conn.fetchval("select exists(select 1 from pg_roles where rolname = $1)", role)
        verb = "alter" if exists else "create"
        statement = await conn.fetchval(
            "select format('" + verb + " role %I with login noinherit password %L', $1::text, $2::text)",
            role, password,
        )
        try:
            await conn.execute(statement)
            break
        except asyncpg.DuplicateObjectError:
            if attempt:
                raise
    grant = await conn.fetchval(
        "select format('grant anon, authenticated, service_role, supabase_auth_admin, supabase_storage_admin, "
        "supabase_realtime_admin to %I', $1::text)",
        role,
    )
    await conn.execute(grant)


async def bootstrap(admin_dsn: str, login_role: str, login_password: str) -> list[str]:
    """Run the tenant track and set up the login role; returns the migration versions applied now."""
    try:
        conn = await asyncpg.connect(admin_dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise BootstrapError(f"cannot reach the project database: {exc}") from exc
    try:
        applied = await migrations.apply(conn, "tenant")
        try:
            await ensure_login_role(conn, login_role, login_password)
        except asyncpg.InsufficientPrivilegeError as exc:
            raise BootstrapError(
                f"the database user cannot create the login role {login_role!r} (needs CREATEROLE): {exc}"
            ) from exc
        return applied
    finally:
        await conn.close()
