"""`madbase db push` on the server: a Supabase project's `supabase/migrations/*.sql` applied to a project's
database with Supabase's CLI's migration history (`supabase_migrations.schema_migrations`: version, name,
statements), so a database migrated by either tool continues with the other.

    GET  /projects/{ref}/database/migrations  → {"migrations": [{version, name, statements}], "next_cursor": null}
    POST /projects/{ref}/database/migrations  {"migrations": [{version, name, sql}], "dry_run"?, "include_all"?}
         → {"applied": [...], "pending": [...] (dry run), "skipped": [...], "changed": [...], "remote_only": [...]}

Each file runs in its own transaction together with its history row, as the project database's owner (the
project's database URL: a migration creates tables, policies, functions), in version order, under an
advisory lock (two pushes never interleave). Applied versions are skipped; an applied file whose statements
changed since is reported in `changed`, never re-applied. As Supabase's CLI, a pending file older than the
last applied one is refused unless `include_all`. A failing file → 400 with PostgreSQL's message, the files
before it stay applied (their own transactions committed).
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from madbase.admin import migrationsql
from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.platform import AdminRequest

MAX_BODY = 32 * 2**20
MAX_FILES = 10_000
VERSION = re.compile(r"^[0-9]{1,40}$")
_LOCK_KEY = 0x6D62_7075  # "mbpu": pg_advisory_lock key of a push, per database

HISTORY_DDL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
)
_HISTORY = "select version, name, statements from supabase_migrations.schema_migrations order by version"
_RECORD = "insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, $3)"


async def _connect(request: AdminRequest) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(request.project.record.db_url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise MessageError(503, f"The project's database is not available: {type(exc).__name__}") from exc


async def _history(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    exists = await conn.fetchval("select to_regclass('supabase_migrations.schema_migrations') is not null")
    if not exists:
        return []
    return [{"version": r["version"], "name": r["name"], "statements": list(r["statements"] or [])}
            for r in await conn.fetch(_HISTORY)]


async def list_migrations(request: AdminRequest) -> Response:
    conn = await _connect(request)
    try:
        return Response.json({"migrations": await _history(conn), "next_cursor": None})
    finally:
        await conn.close()


def _files(form: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The request's files as (version, name, sql), validated, sorted by version."""
    items = form.get("migrations")
    if not isinstance(items, list) or len(items) > MAX_FILES:
        raise MessageError(400, f"migrations must be a list of at most {MAX_FILES} objects")
    out: dict[str, tuple[str, str, str]] = {}
    for item in items:
        if not isinstance(item, dict):
            raise MessageError(400, "each migration must be an object {version, name, sql}")
        version, name, sql = item.get("version"), item.get("name", ""), item.get("sql")
        if not isinstance(version, str) or not VERSION.match(version):
            raise MessageError(400, "a migration's version must be 1 to 40 digits (the file name's prefix)")
        if not isinstance(name, str) or len(name) > 200 or not isinstance(sql, str):
            raise MessageError(400, f"migration {version}: name must be text of at most 200 characters, sql text")
        if version in out:
            raise MessageError(400, f"migration version {version} appears twice")
        out[version] = (version, name, sql)
    return [out[v] for v in sorted(out, key=lambda v: (len(v), v))]


def _entry(version: str, name: str) -> dict[str, str]:
    return {"version": version, "name": name}


async def push(request: AdminRequest) -> Response:
    form = await request.json(MAX_BODY, empty={})
    if not isinstance(form, dict):
        raise MessageError(400, "The body must be a JSON object")
    files = _files(form)
    dry_run, include_all = form.get("dry_run") is True, form.get("include_all") is True
    conn = await _connect(request)
    try:
        await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        if not dry_run:
            for statement in HISTORY_DDL:
                await conn.execute(statement)
        history = {row["version"]: row for row in await _history(conn)}
        local = {v for v, _, _ in files}
        result: dict[str, list[dict[str, str]]] = {
            "applied": [], "pending": [], "skipped": [], "changed": [],
            "remote_only": [_entry(v, row["name"] or "") for v, row in history.items() if v not in local]}
        pending = []
        for version, name, sql in files:
            row = history.get(version)
            if row is None:
                pending.append((version, name, sql))
                continue
            result["skipped"].append(_entry(version, name))
            if row["statements"] and (migrationsql.fingerprint(row["statements"])
                                      != migrationsql.fingerprint(migrationsql.split(sql))):
                result["changed"].append(_entry(version, name))
        last = max(history, key=lambda v: (len(v), v), default=None)
        late = [v for v, _, _ in pending if last is not None and (len(v), v) < (len(last), last)]
        if late and not include_all:
            raise MessageError(400, "Found local migration files to be inserted before the last migration on the "
                                    f"remote database ({', '.join(late)}); rerun with --include-all to apply them")
        if dry_run:
            result["pending"] = [_entry(v, n) for v, n, _ in pending]
            return Response.json(result)
        for version, name, sql in pending:
            await _apply(conn, version, name, sql, result["applied"])
            result["applied"].append(_entry(version, name))
        await request.audit("database.migrations.push", f"projects/{request.project.ref}/database/migrations",
                            {"applied": [e["version"] for e in result["applied"]]})
        return Response.json(result)
    finally:
        await conn.close()  # ends the session: its advisory lock goes with it


async def _apply(conn: asyncpg.Connection, version: str, name: str, sql: str, applied: list[dict[str, str]]) -> None:
    """One file and its history row in one transaction; 400 with PostgreSQL's message when it fails."""
    try:
        async with conn.transaction():
            await conn.execute(sql)  # the simple query protocol: the whole file, PostgreSQL splits it
            await conn.execute(_RECORD, version, name or None, migrationsql.split(sql))
    except asyncpg.PostgresError as exc:
        done = ", ".join(e["version"] for e in applied) or "none"
        detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
        raise MessageError(400, f"Migration {version}_{name}.sql failed: {exc.sqlstate} {exc}{detail}. "
                                f"Applied before it: {done}.") from exc
    except (asyncpg.InterfaceError, OSError) as exc:  # the file ended its own session, or the server went away
        done = ", ".join(e["version"] for e in applied) or "none"
        raise MessageError(400, f"Migration {version}_{name}.sql failed: the database connection was lost "
                                f"({type(exc).__name__}). Applied before it: {done}.") from exc


ROUTES = (
    route("GET", "/projects/{ref}/database/migrations", list_migrations, name="admin.migrations.list",
          right="database.read"),
    route("POST", "/projects/{ref}/database/migrations", push, name="admin.migrations.push",
          right="database.write", body_limit=MAX_BODY),
)
