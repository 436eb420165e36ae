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


async def _execute_formatted(conn: asyncpg.Connection, template: str, *args: str) -> None:
    """Run `template` (fixed text with %I / %L placeholders) with `args` quoted by PostgreSQL's format()."""
    placeholders = "".join(f", ${i}::text" for i in range(1, len(args) + 1))
    await conn.execute(await conn.fetchval(f"select format('{template}'{placeholders})", *args))


async def ensure_login_role(conn: asyncpg.Connection, role: str, password: str) -> None:
    """Create or update the NOINHERIT login role; quoting is done by PostgreSQL's format(%I, %L)."""
    for attempt in range(2):
        exists = await conn.fetchval("select exists(select 1 from pg_roles where rolname = $1)", role)
        verb = "alter" if exists else "create"
        try:
            await _execute_formatted(conn, verb + " role %I with login noinherit password %L", role, password)
            break
        except asyncpg.DuplicateObjectError:
            if attempt:
                raise
    await _execute_formatted(conn, "grant anon, authenticated, service_role, supabase_auth_admin, "
                             "supabase_storage_admin, supabase_realtime_admin to %I", role)
    # the one-round-trip request function (migrations 0003, 0004) is the login role's alone
    await _execute_formatted(conn, "grant usage on schema madbase to %I", role)
    await _execute_formatted(conn, "grant execute on function "
                             "madbase.run_prepared(text, text, text, text[], text, boolean) to %I", role)


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
