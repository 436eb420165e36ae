"""Functions in the control database: functions, numbered versions, sealed secrets, invocation logs.

Every statement takes the project ref as a parameter; secrets are sealed with the server's SecretBox under
the context `<ref>:secret:<name>`, so a value copied into another row or project does not open.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.secretbox import SecretBox
from madbase.core.types import DbConn

CHANNEL = "madbase_functions"
MAX_LOG_TEXT = 16 * 1024


@dataclass(frozen=True, slots=True)
class Deployed:
    """What an invocation needs: the function's settings and its active version's artifact."""

    project_ref: str
    slug: str
    name: str
    status: str
    verify_jwt: bool
    limits: dict[str, Any]
    allowed_hosts: tuple[str, ...]
    env: dict[str, str] = field(repr=False)
    version: int
    kind: str
    sha256: str
    artifact: bytes = field(repr=False)


def _json(value: Any) -> Any:
    return jsonutil.loads(value) if isinstance(value, str) else (value or {})


def function_json(row: asyncpg.Record) -> dict[str, Any]:
    """A function as the admin API shows it (Supabase's Management API names where they exist)."""
    return {
        "id": f"{row['project_ref']}/{row['slug']}",
        "slug": row["slug"],
        "name": row["name"],
        "status": "ACTIVE" if row["status"] == "active" else "PAUSED",
        "version": row["active_version"],
        "verify_jwt": row["verify_jwt"],
        "limits": _json(row["limits"]),
        "allowed_hosts": list(row["allowed_hosts"]),
        "env": sorted(_json(row["env"])),
        "kind": row["kind"],
        "entrypoint_path": row["entrypoint"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


_SELECT = """select f.project_ref, f.slug, f.name, f.status, f.active_version, f.verify_jwt, f.limits, f.allowed_hosts,
  f.env, f.created_at, f.updated_at, v.kind, v.entrypoint
  from madbase_control.functions f
  left join madbase_control.function_versions v
    on v.project_ref = f.project_ref and v.slug = f.slug and v.version = f.active_version"""


async def list_functions(pool: asyncpg.Pool, ref: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(_SELECT + " where f.project_ref = $1 order by f.slug", ref)
    return [function_json(r) for r in rows]


async def get_function(pool: asyncpg.Pool | DbConn, ref: str, slug: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(_SELECT + " where f.project_ref = $1 and f.slug = $2", ref, slug)
    return None if row is None else function_json(row)


async def deploy(pool: asyncpg.Pool, ref: str, slug: str, *, name: str, kind: str, artifact: bytes,
                 entrypoint: str | None, settings: dict[str, Any], created_by: str | None) -> dict[str, Any]:
    """Store a new version and make it active (settings given in `settings` replace the function's)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """insert into madbase_control.functions (project_ref, slug, name) values ($1, $2, $3)
               on conflict (project_ref, slug) do nothing""", ref, slug, name)
        # lock the function row: two deploys at once get consecutive numbers
        await conn.execute("select 1 from madbase_control.functions where project_ref = $1 and slug = $2 "
                           "for update", ref, slug)
        current = await conn.fetchrow(
            "select coalesce(max(version), 0) as v from madbase_control.function_versions "
            "where project_ref = $1 and slug = $2", ref, slug)
        assert current is not None
        version = int(current["v"]) + 1
        await conn.execute(
            """insert into madbase_control.function_versions
               (project_ref, slug, version, kind, artifact, sha256, entrypoint, size_bytes, created_by)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            ref, slug, version, kind, artifact, hashlib.sha256(artifact).hexdigest(), entrypoint, len(artifact),
            created_by)
        await conn.execute("update madbase_control.functions set active_version = $3, name = $4, updated_at = now() "
                           "where project_ref = $1 and slug = $2", ref, slug, version, name)
        await _apply_settings(conn, ref, slug, settings)
        found = await get_function(conn, ref, slug)
    assert found is not None
    return found


async def _apply_settings(conn: DbConn, ref: str, slug: str, settings: dict[str, Any]) -> None:
    for column in ("verify_jwt", "limits", "allowed_hosts", "env", "status", "name"):
        if column not in settings:
            continue
        value = settings[column]
        cast = {"limits": "::jsonb", "env": "::jsonb"}.get(column, "")
        if column in ("limits", "env"):
            value = jsonutil.dumps_str(value)
        await conn.execute(f"update madbase_control.functions set {column} = $3{cast}, updated_at = now() "
                           "where project_ref = $1 and slug = $2", ref, slug, value)


async def update(pool: asyncpg.Pool, ref: str, slug: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    async with pool.acquire() as conn, conn.transaction():
        await _apply_settings(conn, ref, slug, settings)
        return await get_function(conn, ref, slug)


async def delete(pool: asyncpg.Pool, ref: str, slug: str) -> bool:
    result = await pool.execute("delete from madbase_control.functions where project_ref = $1 and slug = $2",
                                ref, slug)
    return bool(result.endswith(" 1"))


async def versions(pool: asyncpg.Pool, ref: str, slug: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """select v.version, v.kind, v.sha256, v.entrypoint, v.size_bytes, v.created_by, v.created_at,
                  v.version = f.active_version as active
           from madbase_control.function_versions v
           join madbase_control.functions f on f.project_ref = v.project_ref and f.slug = v.slug
           where v.project_ref = $1 and v.slug = $2 order by v.version desc""", ref, slug)
    return [{**dict(r), "created_at": r["created_at"].isoformat()} for r in rows]


async def rollback(pool: asyncpg.Pool, ref: str, slug: str, version: int) -> dict[str, Any] | None:
    async with pool.acquire() as conn, conn.transaction():
        exists = await conn.fetchval(
            "select 1 from madbase_control.function_versions where project_ref = $1 and slug = $2 and version = $3",
            ref, slug, version)
        if not exists:
            return None
        await conn.execute("update madbase_control.functions set active_version = $3, updated_at = now() "
                           "where project_ref = $1 and slug = $2", ref, slug, version)
        return await get_function(conn, ref, slug)


async def load(pool: asyncpg.Pool, ref: str, slug: str) -> Deployed | None:
    """The function and its active artifact (None: no such function or nothing deployed)."""
    row = await pool.fetchrow(
        """select f.name, f.status, f.verify_jwt, f.limits, f.allowed_hosts, f.env, v.version, v.kind, v.sha256,
                  v.artifact
           from madbase_control.functions f
           join madbase_control.function_versions v
             on v.project_ref = f.project_ref and v.slug = f.slug and v.version = f.active_version
           where f.project_ref = $1 and f.slug = $2""", ref, slug)
    if row is None:
        return None
    env = {str(k): str(v) for k, v in _json(row["env"]).items()}
    return Deployed(ref, slug, row["name"], row["status"], row["verify_jwt"], dict(_json(row["limits"])),
                    tuple(row["allowed_hosts"]), env, row["version"], row["kind"], row["sha256"],
                    bytes(row["artifact"]))


# -- secrets -----------------------------------------------------------------------------------------------
def _context(ref: str, name: str) -> str:
    return f"{ref}:secret:{name}"


async def list_secrets(pool: asyncpg.Pool, ref: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("select name, updated_at from madbase_control.secrets where project_ref = $1 "
                            "order by name", ref)
    return [{"name": r["name"], "updated_at": r["updated_at"].isoformat()} for r in rows]


async def set_secrets(pool: asyncpg.Pool, box: SecretBox, ref: str, pairs: list[tuple[str, str]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for name, value in pairs:
            await conn.execute(
                """insert into madbase_control.secrets (project_ref, name, value_enc) values ($1, $2, $3)
                   on conflict (project_ref, name) do update set value_enc = excluded.value_enc, updated_at = now()""",
                ref, name, box.seal(value, context=_context(ref, name)))


async def delete_secrets(pool: asyncpg.Pool, ref: str, names: list[str]) -> int:
    result = await pool.execute("delete from madbase_control.secrets where project_ref = $1 and name = any($2)",
                                ref, names)
    return int(result.split()[-1])


async def secret_values(pool: asyncpg.Pool, box: SecretBox, ref: str) -> dict[str, str]:
    rows = await pool.fetch("select name, value_enc from madbase_control.secrets where project_ref = $1", ref)
    return {r["name"]: box.open(bytes(r["value_enc"]), context=_context(ref, r["name"])) for r in rows}


# -- invocation logs ---------------------------------------------------------------------------------------
LOG_COLUMNS = ("project_ref", "slug", "version", "request_id", "method", "path", "status", "error", "duration_ms",
               "fuel", "memory_bytes", "logs")


async def write_logs(pool: asyncpg.Pool, rows: list[tuple[Any, ...]]) -> None:
    await pool.copy_records_to_table("function_logs", schema_name="madbase_control", columns=LOG_COLUMNS,
                                     records=rows)


async def prune_logs(pool: asyncpg.Pool, retention_days: float) -> None:
    await pool.execute("delete from madbase_control.function_logs where at < now() - make_interval(secs => $1)",
                       retention_days * 86400)


async def read_logs(pool: asyncpg.Pool, ref: str, slug: str, limit: int, before: int | None) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """select id, version, request_id, method, path, status, error, duration_ms, fuel, memory_bytes, logs, at
           from madbase_control.function_logs
           where project_ref = $1 and slug = $2 and ($3::bigint is null or id < $3)
           order by id desc limit $4""", ref, slug, before, limit)
    return [{**dict(r), "at": r["at"].isoformat()} for r in rows]

