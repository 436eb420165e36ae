"""The control plane's routes for per-project operations of the platform itself (docs/admin-operations.md):
the database (tables with their RLS state and policies, creating and dropping policies, the SQL editor, a
connection test), the recent request log, and the OpenAPI document of all of /admin/v1.

The services contribute their own operations (users: auth/adminroutes.py, buckets and objects:
storage/adminroutes.py, realtime connections and replication: realtime/adminroutes.py).

Two database connections are used: catalog reads go through the project's pool (its login role reads every
catalog); statements that change the schema (policies, RLS) and SQL run as `postgres` use the project's own
database URL — the owner the tenant bootstrap ran as — on a connection of their own. When that URL's user is a
superuser (a database on a shared cluster), running SQL as it needs database.write platform-wide: a project
role must not reach other projects' databases through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from madbase.admin import dbcatalog, openapi, sqlrun
from madbase.admin.dbcatalog import CatalogError
from madbase.core import jsonutil, requestlog, serviceapps
from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.kit.routing import Route
from madbase.core.numbers import ascii_uint
from madbase.core.platform import SELF, AdminRequest

SMALL_BODY = 256 * 1024
QUERY_BODY = sqlrun.LIMITS.max_query + 64 * 1024  # the script plus its JSON envelope
SQL_ROLES = ("postgres", "service_role", "authenticated", "anon")
MAX_TABLES = 5000
SPLIT_INLINE = 64 * 1024  # scripts longer than this are split in a worker thread


def _limit(request: AdminRequest, default: int, most: int) -> int:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return default
    value = ascii_uint(raw, 9)
    if value is None or value < 1:
        raise MessageError(400, "limit must be a positive integer")
    return min(value, most)


@contextlib.asynccontextmanager
async def _owner(request: AdminRequest) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own to the project's database as its owner (the project's database URL)."""
    try:
        conn = await asyncpg.connect(request.project.record.db_url, timeout=10, statement_cache_size=0,
                                     server_settings={"statement_timeout": "10000", "lock_timeout": "5000",
                                                      "application_name": "madbase admin"})
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise MessageError(503, f"cannot reach the project database: {exc}") from None
    try:
        yield conn
    finally:
        await conn.close()


async def _catalog_conn(request: AdminRequest) -> Any:
    pool = await request.ctx.runtime.pools.get(request.project)
    return pool.acquire()


# -- tables and policies ---------------------------------------------------------------------------------
async def list_tables(request: AdminRequest) -> Response:
    schema = request.query.get("schema") or None
    limit = _limit(request, MAX_TABLES, MAX_TABLES)
    async with await _catalog_conn(request) as conn:
        tables = await dbcatalog.tables(conn, schema, limit)
    return Response.json({"tables": tables, "next_cursor": None})


def _table_params(request: AdminRequest) -> tuple[str, str]:
    return request.params[1], request.params[2]


async def update_table(request: AdminRequest) -> Response:
    body = await request.json(empty={})
    if not isinstance(body, dict) or not any(k in body for k in ("rls_enabled", "rls_forced")):
        raise MessageError(400, "Body must be an object with rls_enabled and/or rls_forced (booleans)")
    schema, table = _table_params(request)
    changes: list[str] = []
    for key, on, off in (("rls_enabled", "enable", "disable"), ("rls_forced", "force", "no force")):
        if key in body:
            if not isinstance(body[key], bool):
                raise MessageError(400, f"{key} must be a boolean")
            changes.append(f"{on if body[key] else off} row level security")
    async with _owner(request) as conn:
        try:
            await dbcatalog.table_oid(conn, schema, table)
            async with conn.transaction():
                for change in changes:
                    await conn.execute(await dbcatalog.formatted(conn, f"alter table %I.%I {change}", schema, table))
            row = await dbcatalog.table_oid(conn, schema, table)
        except CatalogError as exc:
            raise MessageError(exc.status, exc.message) from None
        except asyncpg.PostgresError as exc:
            raise MessageError(400, str(exc)) from None
    await request.audit("database.table.update", f"tables/{schema}.{table}",
                        {k: body[k] for k in ("rls_enabled", "rls_forced") if k in body})
    return Response.json({"schema": schema, "name": table, "rls_enabled": row["rls_enabled"],
                          "rls_forced": row["rls_forced"]})


async def list_policies(request: AdminRequest) -> Response:
    schema, table = _table_params(request)
    async with await _catalog_conn(request) as conn:
        try:
            row = await dbcatalog.table_oid(conn, schema, table)
        except CatalogError as exc:
            raise MessageError(exc.status, exc.message) from None
        found = await dbcatalog.policies(conn, row["oid"])
    return Response.json({"policies": found, "rls_enabled": row["rls_enabled"], "next_cursor": None})


async def create_policy(request: AdminRequest) -> Response:
    schema, table = _table_params(request)
    try:
        template, args, name = dbcatalog.policy_statement(await request.json(empty={}))
    except CatalogError as exc:
        raise MessageError(exc.status, exc.message) from None
    async with _owner(request) as conn:
        try:
            row = await dbcatalog.table_oid(conn, schema, table)
            sql = await dbcatalog.formatted(conn, template, args[0], schema, table, *args[1:])
            await conn.execute(sql)
        except CatalogError as exc:
            raise MessageError(exc.status, exc.message) from None
        except asyncpg.DuplicateObjectError:
            raise MessageError(409, f"policy {name!r} already exists on {schema}.{table}") from None
        except asyncpg.PostgresError as exc:
            raise MessageError(400, str(exc)) from None
        created = [p for p in await dbcatalog.policies(conn, row["oid"]) if p["name"] == name]
    await request.audit("database.policy.create", f"tables/{schema}.{table}/policies/{name}",
                        {"command": created[0]["command"] if created else None})
    return Response.json(created[0] if created else {"name": name}, 201)


async def drop_policy(request: AdminRequest) -> Response:
    schema, table = _table_params(request)
    name = request.params[3]
    async with _owner(request) as conn:
        try:
            row = await dbcatalog.table_oid(conn, schema, table)
            if not any(p["name"] == name for p in await dbcatalog.policies(conn, row["oid"])):
                raise CatalogError(404, "Policy not found")
            await conn.execute(await dbcatalog.formatted(conn, "drop policy %I on %I.%I", name, schema, table))
        except CatalogError as exc:
            raise MessageError(exc.status, exc.message) from None
        except asyncpg.PostgresError as exc:
            raise MessageError(400, str(exc)) from None
    await request.audit("database.policy.drop", f"tables/{schema}.{table}/policies/{name}")
    return Response(204)


# -- SQL ---------------------------------------------------------------------------------------------------
async def _is_superuser(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise MessageError(503, f"cannot reach the project database: {exc}") from None
    try:
        return bool(await conn.fetchval("select rolsuper from pg_roles where rolname = current_user"))
    finally:
        await conn.close()


async def _target(request: AdminRequest, body: dict[str, Any]) -> sqlrun.Target:
    role = body.get("role", "service_role")
    if role not in SQL_ROLES:
        raise MessageError(400, f"role must be one of {', '.join(SQL_ROLES)}")
    record = request.project.record
    claims = body.get("claims")
    if claims is not None and (not isinstance(claims, dict) or role == "postgres"):
        raise MessageError(400, "claims must be an object (for service_role, authenticated or anon)")
    if role == "postgres":
        if not request.admin.allows("database.write") and await _is_superuser(record.db_url):
            raise MessageError(403, "Forbidden: running SQL as the database superuser requires the right "
                                    "database.write platform-wide")
        return sqlrun.Target(record.db_url)
    claims_json = jsonutil.dumps_str({**(claims or {}), "role": role})  # the claims name the role it runs as
    return sqlrun.Target(record.db_url, record.login_role, record.login_password, role, claims_json)


async def run_query(request: AdminRequest) -> Response:
    body = await request.json(empty={})
    if not isinstance(body, dict):
        raise MessageError(400, "Body must be a JSON object with a query")
    query = body.get("query")
    try:
        # a large script is split off the event loop (up to 1 MB: up to a second of a busy core)
        statements = (await asyncio.to_thread(sqlrun.statements_of, query) if isinstance(query, str)
                      and len(query) > SPLIT_INLINE else sqlrun.statements_of(query))
    except sqlrun.QueryError as exc:
        return Response.json(exc.body(), exc.status)
    target = await _target(request, body)
    limits = sqlrun.LIMITS
    timeout_ms = body.get("timeout_ms")
    if timeout_ms is not None:
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms < 1:
            raise MessageError(400, "timeout_ms must be a positive integer")
        limits = dataclasses.replace(limits, timeout_s=min(timeout_ms / 1000, limits.timeout_s))
    try:
        result = await sqlrun.run(target, statements, limits)
    except sqlrun.QueryError as exc:
        return Response.json(exc.body(), exc.status)
    query = str(query)
    await request.audit("database.query", f"projects/{request.project.ref}/database", {
        "role": body.get("role", "service_role"), "statements": len(statements), "bytes": len(query.encode()),
        "sha256": hashlib.sha256(query.encode()).hexdigest(),
        "commands": [s.text.split(None, 1)[0].lower()[:32] for s in statements[:20]]})
    return Response.json(result)


# -- connection test -----------------------------------------------------------------------------------------
def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


async def check_database(request: AdminRequest) -> Response:
    checks: list[dict[str, Any]] = []
    record = request.project.record
    started = time.perf_counter()
    try:
        conn = await asyncpg.connect(record.db_url, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        checks.append(_check("connection", False, f"cannot connect with the project's database URL: {exc}"))
        return Response.json({"ok": False, "checks": checks})
    try:
        elapsed = (time.perf_counter() - started) * 1000
        row = await conn.fetchrow(
            "select current_setting('server_version') as version, current_setting('server_version_num')::int as "
            "num, current_setting('wal_level') as wal_level, current_setting('max_replication_slots')::int as "
            "max_slots, (select count(*) from pg_replication_slots)::int as used_slots, r.rolsuper, "
            "r.rolreplication, current_user as login from pg_roles r where r.rolname = current_user")
    finally:
        await conn.close()
    assert row is not None  # the login's own pg_roles row
    checks.append(_check("connection", True, f"connected as {row['login']} in {elapsed:.1f} ms"))
    checks.append(_check("version", row["num"] >= 140000, f"PostgreSQL {row['version']} (14 or later needed)"))
    checks.append(_check("wal_level", row["wal_level"] == "logical",
                         f"wal_level = {row['wal_level']} (realtime's postgres_changes need logical)"))
    checks.append(_check("replication_privilege", bool(row["rolsuper"] or row["rolreplication"]),
                         f"{row['login']} {'may' if row['rolsuper'] or row['rolreplication'] else 'may not'} "
                         "replicate (realtime needs REPLICATION)"))
    checks.append(_check("replication_slots", row["used_slots"] < row["max_slots"],
                         f"{row['used_slots']} of {row['max_slots']} replication slots used"))
    started = time.perf_counter()
    try:
        async with await _catalog_conn(request) as pooled:
            await pooled.fetchval("select 1")
        checks.append(_check("login_role", True, f"{record.login_role} answered through the project's pool in "
                                                 f"{(time.perf_counter() - started) * 1000:.1f} ms"))
    except Exception as exc:  # any failure of the pool is this check's answer
        checks.append(_check("login_role", False, f"{record.login_role} cannot connect: {exc}"))
    return Response.json({"ok": all(c["ok"] for c in checks), "checks": checks})


# -- request logs ---------------------------------------------------------------------------------------------
def _time(request: AdminRequest, name: str) -> float | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise MessageError(400, f"{name} must be unix seconds or an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


async def list_logs(request: AdminRequest) -> Response:
    q = request.query
    status = q.get("status") or None
    if status is not None and not (status == "error" or (len(status) == 3 and (
            status.isdigit() or (status[0].isdigit() and status[1:] == "xx")))):
        raise MessageError(400, "status must be a code (404), a class (4xx) or error")
    cursor = q.get("cursor") or None
    before = ascii_uint(cursor, 18) if cursor is not None else None
    if cursor is not None and before is None:
        raise MessageError(400, "cursor must be a next_cursor given by a previous page")
    query = requestlog.Query(service=q.get("service") or None, status=status, path=q.get("path") or None,
                             since=_time(request, "since"), until=_time(request, "until"), before=before,
                             limit=_limit(request, 100, 1000))
    entries, more = requestlog.for_runtime(request.ctx.runtime).query(request.project.ref, query)
    return Response.json({"logs": [e.to_json() for e in entries],
                          "next_cursor": str(more) if more is not None else None})


# -- the API's own description -------------------------------------------------------------------------------
async def openapi_document(request: AdminRequest) -> Response:
    dispatcher = serviceapps.app_of(request.ctx.runtime, "admin")
    table = getattr(dispatcher, "table", None)
    if table is None:
        raise MessageError(503, "the admin route table is not available")
    return Response.json(openapi.document(table.routes))


_S = SMALL_BODY
_TABLE = "/projects/{ref}/database/tables/{schema}/{table}"
ROUTES: tuple[Route[Any], ...] = (
    route("GET", "/projects/{ref}/database/tables", list_tables, name="admin.database.tables",
          right="database.read"),
    route("PATCH", _TABLE, update_table, name="admin.database.table_update", right="database.write", body_limit=_S),
    route("GET", _TABLE + "/policies", list_policies, name="admin.database.policies", right="database.read"),
    route("POST", _TABLE + "/policies", create_policy, name="admin.database.policy_create", right="database.write",
          body_limit=_S),
    route("DELETE", _TABLE + "/policies/{name}", drop_policy, name="admin.database.policy_drop",
          right="database.write"),
    route("POST", "/projects/{ref}/database/query", run_query, name="admin.database.query", right="database.write",
          body_limit=QUERY_BODY),
    route("POST", "/projects/{ref}/database/test", check_database, name="admin.database.test", right="database.read",
          body_limit=_S),
    route("GET", "/projects/{ref}/logs", list_logs, name="admin.logs.list", right="logs.read"),
    route("GET", "/openapi.json", openapi_document, name="admin.openapi.get", right=SELF),
)
