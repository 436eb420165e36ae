"""A project's life in the control plane: created (on a database URL the operator gives, or on a new database
of the default cluster), bootstrapped and migrated, paused, soft-deleted, restored, and finally hard-deleted
after a grace period — its database dropped only when asked.

Statuses in the store: `active`, `disabled` (answered as `paused`), `deleted` (soft: the row, its secrets and
the database stay; `deleted_at` starts the grace period). A status change notifies every server process
(`NOTIFY madbase_projects`, core/projects.py), which re-reads the projects at once: requests of a paused or
deleted project are refused on every process within milliseconds.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import structlog

from madbase.core import tenants
from madbase.core.control import ProjectExists, ProjectRecord, new_ref
from madbase.core.runtime import Runtime

log = structlog.get_logger("madbase.admin.projects")

REF = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")
STATUS_NAMES = {"active": "active", "disabled": "paused", "deleted": "deleted"}
MAX_LIST = 1000


class LifecycleError(Exception):
    """A refusal with the HTTP status to answer and a message for the operator."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def login_role_for(ref: str) -> str:
    """Each project created here gets its own login role: roles are cluster-wide, and a bootstrap sets the
    role's password, so two projects on one cluster must never share one."""
    return "mbl_" + ref.replace("-", "_")


def database_name_for(ref: str) -> str:
    return "mb_" + ref.replace("-", "_")


def with_database(url: str, dbname: str) -> str:
    """`url` pointing at database `dbname` instead (same server, user and options)."""
    return urlsplit(url)._replace(path="/" + dbname).geturl()


def database_facts(url: str | None) -> dict[str, Any]:
    if not url:
        return {}
    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:
        port = None
    return {"host": parts.hostname, "port": port, "name": parts.path.lstrip("/") or None}


_COLUMNS = "ref, name, status, database_kind, created_at, updated_at, deleted_at"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def project_json(runtime: Runtime, row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The API's project object (no secret: the database is described by host, port and name)."""
    ref = row["ref"]
    found = runtime.projects.lookup(ref)
    deleted_at = row["deleted_at"]
    grace = runtime.settings.project_delete_grace
    settings = runtime.settings
    api_url = settings.public_url
    if settings.base_domain:
        scheme = urlsplit(api_url).scheme or "http"
        api_url = f"{scheme}://{ref}.{settings.base_domain}"
    hard_after = None
    if row["status"] == "deleted" and deleted_at is not None:
        hard_after = datetime.fromtimestamp(deleted_at.timestamp() + grace, deleted_at.tzinfo).isoformat()
    return {
        "ref": ref, "id": ref, "name": row["name"], "status": STATUS_NAMES.get(row["status"], row["status"]),
        "api_url": api_url, "created_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]),
        "deleted_at": _iso(deleted_at), "hard_delete_after": hard_after,
        "database": {"kind": row["database_kind"], **database_facts(found[0].record.db_url if found else None)},
    }


async def list_rows(pool: asyncpg.Pool, *, refs: frozenset[str] | None, include_deleted: bool,
                    after: tuple[datetime, str] | None, limit: int) -> list[asyncpg.Record]:
    return list(await pool.fetch(
        f"""select {_COLUMNS} from madbase_control.projects
            where ($1::text[] is null or ref = any($1))
              and ($2 or status <> 'deleted')
              and ($3::timestamptz is null or (created_at, ref) > ($3, $4))
            order by created_at, ref limit $5""",
        None if refs is None else sorted(refs), include_deleted, after[0] if after else None,
        after[1] if after else None, limit))


async def get_row(pool: asyncpg.Pool, ref: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        f"select {_COLUMNS} from madbase_control.projects where ref = $1", ref)
    return row


# -- creation ----------------------------------------------------------------------------------------------
def default_config(runtime: Runtime) -> dict[str, Any]:
    """A new project's config: the server's exposed schemas; everything else keeps GoTrue's and Supabase's
    hosted defaults (e-mail confirmations on)."""
    schemas = [s.strip() for s in runtime.settings.db_schemas.split(",") if s.strip()]
    return {"db_schemas": ",".join(schemas)}


async def create_cluster_database(admin_url: str, dbname: str) -> str:
    """A new, empty database `dbname` on the default cluster; returns its URL (the cluster admin's user)."""
    try:
        conn = await asyncpg.connect(admin_url, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise LifecycleError(503, f"The default cluster cannot be reached: {exc}") from None
    try:
        quoted = await conn.fetchval("select format('create database %I', $1::text)", dbname)
        await conn.execute(quoted)
    except asyncpg.DuplicateDatabaseError:
        raise LifecycleError(409, f"A database named {dbname} already exists on the default cluster") from None
    except asyncpg.PostgresError as exc:
        raise LifecycleError(400, f"The default cluster refused to create the database: {exc}") from None
    finally:
        await conn.close()
    return with_database(admin_url, dbname)


async def create(runtime: Runtime, *, name: str, ref: str | None, db_url: str | None) -> ProjectRecord:
    """Create, bootstrap and migrate a project. `db_url` None: a new database on the default cluster."""
    ref = ref or new_ref()
    if runtime.projects.lookup(ref) is not None or await get_row(runtime.store.pool, ref) is not None:
        raise LifecycleError(409, f"A project with ref {ref} already exists")
    kind = "byo"
    if db_url is None:
        admin_url = runtime.endpoints.default_db_url
        if not admin_url:
            raise LifecycleError(400, "This server has no default cluster: give a database_url")
        db_url = await create_cluster_database(admin_url, database_name_for(ref))
        kind = "cluster"
    try:
        record = await runtime.store.create(name=name, db_url=db_url, ref=ref, login_role=login_role_for(ref),
                                            config=default_config(runtime))
    except ProjectExists:
        if kind == "cluster":
            await _drop_quietly(db_url)
        raise LifecycleError(409, f"A project with ref {ref} already exists") from None
    await runtime.store.pool.execute(
        "update madbase_control.projects set database_kind = $2 where ref = $1", ref, kind)
    try:
        applied = await tenants.bootstrap(record.db_url, record.login_role, record.login_password)
    except Exception as exc:  # whatever failed, no half-created project stays behind
        await runtime.store.pool.execute("delete from madbase_control.projects where ref = $1", ref)
        if kind == "cluster":
            await _drop_quietly(db_url)
        raise LifecycleError(400, f"The project database could not be prepared: {exc}") from None
    log.info("project_created", project_ref=ref, database_kind=kind, migrations=len(applied))
    await runtime.projects.refresh()
    return record


# -- status changes ----------------------------------------------------------------------------------------
async def set_status(runtime: Runtime, ref: str, status: str, *, from_statuses: tuple[str, ...]) -> bool:
    """Move `ref` to `status` if it is in one of `from_statuses`; this process re-reads the projects at once
    (the others through the store's NOTIFY)."""
    result = await runtime.store.pool.execute(
        """update madbase_control.projects
           set status = $2, updated_at = now(),
               deleted_at = case when $2 = 'deleted' then now() else null end
           where ref = $1 and status = any($3::text[])""", ref, status, list(from_statuses))
    changed = result.endswith(" 1")
    if changed:
        await runtime.projects.refresh()
    return changed


async def rename(runtime: Runtime, ref: str, name: str) -> bool:
    result = await runtime.store.pool.execute(
        "update madbase_control.projects set name = $2, updated_at = now() where ref = $1 and status <> 'deleted'",
        ref, name)
    return result.endswith(" 1")


# -- hard delete -------------------------------------------------------------------------------------------
async def hard_delete(runtime: Runtime, ref: str, *, drop_database: bool) -> dict[str, Any]:
    """Remove a soft-deleted project whose grace period is over; its database only with `drop_database`."""
    row = await runtime.store.pool.fetchrow(
        """select status, database_kind, extract(epoch from now() - deleted_at) as deleted_for
           from madbase_control.projects where ref = $1""", ref)
    if row is None:
        raise LifecycleError(404, "Project not found")
    if row["status"] != "deleted":
        raise LifecycleError(409, "Only a deleted project can be deleted for good: delete it first (soft delete)")
    grace = runtime.settings.project_delete_grace
    waited = float(row["deleted_for"] or 0)
    if waited < grace:
        raise LifecycleError(409, f"The project was deleted {int(waited)} s ago; it can be deleted for good after "
                                  f"its grace period of {int(grace)} s (restore it meanwhile with POST "
                                  f"/projects/{ref}/restore)")
    record = await runtime.store.get(ref)
    assert record is not None
    dropped = False
    if drop_database:
        maintenance = runtime.endpoints.default_db_url if row["database_kind"] == "cluster" else None
        await drop_project_database(record.db_url, maintenance)
        dropped = True
        if row["database_kind"] == "cluster":
            await _drop_role_quietly(maintenance or record.db_url, record.login_role)
    await runtime.store.pool.execute("delete from madbase_control.projects where ref = $1", ref)
    await runtime.projects.refresh()
    log.info("project_removed", project_ref=ref, database_dropped=dropped)
    return {"database_dropped": dropped}


async def drop_project_database(db_url: str, maintenance_url: str | None) -> None:
    """Drop the database of `db_url`: its replication slots first (Realtime's), then the database with every
    session still on it (`WITH (FORCE)`), from the server's `postgres` database."""
    dbname = urlsplit(db_url).path.lstrip("/")
    base = maintenance_url or db_url
    conn = None
    for maintenance in ("postgres", "template1"):
        try:
            conn = await asyncpg.connect(with_database(base, maintenance), timeout=10)
            break
        except (OSError, TimeoutError, asyncpg.PostgresError):
            continue
    if conn is None:
        raise LifecycleError(503, "The project's database server cannot be reached to drop the database")
    try:
        for _ in range(10):
            await conn.execute("select pg_terminate_backend(active_pid) from pg_replication_slots "
                               "where database = $1 and active_pid is not null", dbname)
            await asyncio.sleep(0.1)
            await conn.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots "
                               "where database = $1 and active_pid is null", dbname)
            try:
                await conn.execute(await conn.fetchval("select format('drop database if exists %I with (force)', "
                                                       "$1::text)", dbname))
                return
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.3)  # a slot came back (a consumer reconnected): once more
        raise LifecycleError(409, f"The database {dbname} is still in use; try again")
    except asyncpg.InsufficientPrivilegeError as exc:
        raise LifecycleError(403, f"The database user may not drop database {dbname}: {exc}") from None
    finally:
        await conn.close()


async def _drop_quietly(db_url: str) -> None:
    try:
        await drop_project_database(db_url, None)
    except (LifecycleError, asyncpg.PostgresError, OSError) as exc:
        log.warning("project_database_not_dropped", error=str(exc))


async def _drop_role_quietly(url: str, role: str) -> None:
    """The login role MadBase made for a cluster project (`mbl_…`); kept when still used elsewhere."""
    if not role.startswith("mbl_"):
        return
    try:
        conn = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return
    try:
        await conn.execute(await conn.fetchval("select format('drop role if exists %I', $1::text)", role))
    except asyncpg.PostgresError as exc:
        log.info("project_login_role_kept", role=role, reason=str(exc))
    finally:
        await conn.close()
