"""All SQL storage runs (fixed text, values as $n parameters) and the JSON shapes rows are rendered in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.types import DbConn

BUCKET_COLUMNS = ("id, name, owner, owner_id, public, file_size_limit, allowed_mime_types, type::text as type, "
                  "created_at, updated_at")
OBJECT_COLUMNS = ("id, bucket_id, name, owner, owner_id, version, metadata, user_metadata, created_at, updated_at, "
                  "last_accessed_at")

SORT_COLUMNS = {"name", "updated_at", "created_at", "last_accessed_at"}
BUCKET_SORT_COLUMNS = {"id", "name", "created_at", "updated_at"}


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return jsonutil.loads(value)
    return value


def render_bucket(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"],
        "owner": str(row["owner"]) if row["owner"] else (row["owner_id"] or ""),
        "owner_id": row["owner_id"],
        "public": bool(row["public"]), "type": row["type"],
        "file_size_limit": row["file_size_limit"], "allowed_mime_types": row["allowed_mime_types"],
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
    }


def render_object(row: asyncpg.Record, *, name: str | None = None) -> dict[str, Any]:
    """A `FileObject` as list/remove return it."""
    return {
        "name": row["name"] if name is None else name,
        "id": str(row["id"]) if row["id"] else None,
        "bucket_id": row["bucket_id"],
        "owner": str(row["owner"]) if row["owner"] else row["owner_id"],
        "owner_id": row["owner_id"],
        "version": row["version"],
        "updated_at": iso(row["updated_at"]), "created_at": iso(row["created_at"]),
        "last_accessed_at": iso(row["last_accessed_at"]),
        "metadata": _json(row["metadata"]),
        "user_metadata": _json(row["user_metadata"]),
    }


@dataclass(frozen=True, slots=True)
class BucketLimits:
    id: str
    public: bool
    file_size_limit: int | None
    allowed_mime_types: list[str] | None


# -- buckets --------------------------------------------------------------------------------------------
async def find_bucket(conn: DbConn, bucket_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"select {BUCKET_COLUMNS} from storage.buckets where id = $1", bucket_id)


async def bucket_limits(conn: DbConn, bucket_id: str) -> BucketLimits | None:
    row = await conn.fetchrow("select id, public, file_size_limit, allowed_mime_types from storage.buckets "
                              "where id = $1", bucket_id)
    if row is None:
        return None
    return BucketLimits(row["id"], bool(row["public"]), row["file_size_limit"], row["allowed_mime_types"])


async def list_buckets(conn: DbConn, *, limit: int | None, offset: int, search: str, sort: str,
                       order: str) -> list[asyncpg.Record]:
    assert sort in BUCKET_SORT_COLUMNS and order in ("asc", "desc")
    sql = (f"select {BUCKET_COLUMNS} from storage.buckets where ($1 = '' or name ilike '%' || $1 || '%') "
           f"order by {sort} {order} limit $2 offset $3")
    return list(await conn.fetch(sql, search, limit, offset))


async def insert_bucket(conn: DbConn, bucket_id: str, public: bool, limit: int | None, mimes: list[str] | None,
                        owner: str | None, owner_id: str | None) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types, owner, owner_id) "
        "values ($1, $1, $2, $3, $4, $5::uuid, $6) returning id", bucket_id, public, limit, mimes, owner, owner_id)


async def update_bucket(conn: DbConn, bucket_id: str, sets: dict[str, Any]) -> str | None:
    allowed = ("public", "file_size_limit", "allowed_mime_types")
    names = [k for k in allowed if k in sets]
    assignments = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(names))
    sql = (f"update storage.buckets set {assignments}{', ' if names else ''}updated_at = now() where id = $1 "
           "returning id")
    value: str | None = await conn.fetchval(sql, bucket_id, *[sets[k] for k in names])
    return value


async def delete_bucket(conn: DbConn, bucket_id: str) -> str | None:
    value: str | None = await conn.fetchval("delete from storage.buckets where id = $1 returning id", bucket_id)
    return value


async def bucket_has_objects(conn: DbConn, bucket_id: str) -> bool:
    return bool(await conn.fetchval("select exists(select 1 from storage.objects where bucket_id = $1)", bucket_id))


# -- objects --------------------------------------------------------------------------------------------
# The object row read as one statement for the runner's one-round-trip path (`TxRunner.statement`): values are
# elements of one text array, the columns' types are declared for `madbase.run_prepared`'s record.
FIND_OBJECT_STATEMENT = (f"select {OBJECT_COLUMNS} from storage.objects where bucket_id = ($1::text[])[1] "
                         "and name = ($1::text[])[2]")
OBJECT_COLUMN_TYPES = ("id uuid, bucket_id text, name text, owner uuid, owner_id text, version text, metadata jsonb, "
                       "user_metadata jsonb, created_at timestamptz, updated_at timestamptz, "
                       "last_accessed_at timestamptz")


async def find_object(conn: DbConn, bucket_id: str, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"select {OBJECT_COLUMNS} from storage.objects where bucket_id = $1 and name = $2",
                               bucket_id, name)


async def find_public_object(conn: DbConn, bucket_id: str, name: str) -> tuple[bool, asyncpg.Record | None]:
    """(bucket exists and is public, the object)."""
    public = await conn.fetchval("select public from storage.buckets where id = $1", bucket_id)
    if not public:
        return False, None
    return True, await find_object(conn, bucket_id, name)


async def lock_path(conn: DbConn, bucket_id: str, name: str) -> None:
    await conn.execute("select pg_advisory_xact_lock(hashtextextended($1, 7))", bucket_id + "/" + name)


async def current_version(conn: DbConn, bucket_id: str, name: str) -> str | None:
    value: str | None = await conn.fetchval(
        "select version from storage.objects where bucket_id = $1 and name = $2", bucket_id, name)
    return value


INSERT_OBJECT = (
    "insert into storage.objects (id, bucket_id, name, owner, owner_id, metadata, user_metadata, version) "
    "values ($1, $2, $3, $4::uuid, $5, $6::jsonb, $7::jsonb, $8)"
)
UPSERT_TAIL = (
    " on conflict (bucket_id, name) do update set owner = excluded.owner, owner_id = excluded.owner_id, "
    "metadata = excluded.metadata, user_metadata = excluded.user_metadata, version = excluded.version, "
    "last_accessed_at = now()"
)


async def write_object(conn: DbConn, *, object_id: str, bucket_id: str, name: str, owner: str | None,
                       owner_id: str | None, metadata: dict[str, Any] | None, user_metadata: Any, version: str,
                       upsert: bool) -> None:
    """Insert (or upsert) without RETURNING: as on Supabase, a plain upload needs only an INSERT policy."""
    sql = INSERT_OBJECT + (UPSERT_TAIL if upsert else "")
    await conn.execute(sql, object_id, bucket_id, name, owner, owner_id,
                       None if metadata is None else jsonutil.dumps_str(metadata),
                       None if user_metadata is None else jsonutil.dumps_str(user_metadata), version)


async def object_id(conn: DbConn, bucket_id: str, name: str) -> str | None:
    value = await conn.fetchval("select id from storage.objects where bucket_id = $1 and name = $2", bucket_id, name)
    return None if value is None else str(value)


async def delete_objects(conn: DbConn, bucket_id: str, names: list[str]) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        f"delete from storage.objects where bucket_id = $1 and name = any($2::text[]) returning {OBJECT_COLUMNS}",
        bucket_id, names))


async def delete_all_objects(conn: DbConn, bucket_id: str) -> list[str]:
    rows = await conn.fetch("delete from storage.objects where bucket_id = $1 returning version", bucket_id)
    return [r["version"] for r in rows if r["version"]]


async def move_object(conn: DbConn, src_bucket: str, src: str, dst_bucket: str, dst: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"update storage.objects set bucket_id = $3, name = $4 where bucket_id = $1 and name = $2 "
        f"returning {OBJECT_COLUMNS}", src_bucket, src, dst_bucket, dst)


async def touch_metadata(conn: DbConn, object_id: Any, metadata: dict[str, Any]) -> None:
    await conn.execute("update storage.objects set metadata = $2::jsonb where id = $1", object_id,
                       jsonutil.dumps_str(metadata))


async def referenced_versions(conn: DbConn, versions: list[str]) -> set[str]:
    rows = await conn.fetch("select version from storage.objects where version = any($1::text[])", versions)
    return {r["version"] for r in rows}
