"""The upload pipeline, the one place where bytes and metadata meet.

1+2. one rolled-back transaction: bucket limits read as storage's own role (uploading needs no SELECT policy
   on buckets), MIME check, declared size; then the row insert (or upsert) under the caller's role, so RLS
   refuses before a single byte is stored (403), as does an existing object without upsert (409);
3. bytes stream to a fresh version key (size limit and MD5 checked on the way) — invisible, no row points at it;
4. one transaction under the caller's role: per-path advisory lock, read the replaced version, insert/upsert
   the row (RLS decides again), commit — the object becomes visible in one step;
5. after commit the replaced version's bytes are deleted; on any failure the new version's bytes are.
A crash between 3 and 5 leaves only unreferenced version keys, which the sweeper removes.
Bodies of at most SMALL_UPLOAD bytes skip 1+2: the same checks run inside the commit transaction of step 4
(receiving them costs less than the extra transaction; a refusal deletes the bytes just written).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from madbase.storage import errors, repo
from madbase.storage.actor import Actor, as_storage, become_storage, transaction
from madbase.storage.backends.base import Backend, delete_quietly, version_key
from madbase.storage.bodies import UploadBody
from madbase.storage.limits import effective_limit, mime_allowed

SMALL_UPLOAD = 256 * 1024


class _Rollback(Exception):
    def __init__(self, limit: int = 0) -> None:
        super().__init__()
        self.limit = limit


@dataclass(slots=True)
class UploadTarget:
    bucket_id: str
    name: str
    upsert: bool


def object_metadata(*, size: int, etag: str, mimetype: str, cache_control: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "eTag": etag, "size": size, "mimetype": mimetype, "cacheControl": cache_control,
        "lastModified": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "contentLength": size, "httpStatusCode": 200,
    }


def _limit_for(bucket: repo.BucketLimits | None, bucket_id: str, content_type: str, declared: int | None,
               global_limit: int) -> int:
    if bucket is None:
        raise errors.no_such_bucket(bucket_id)
    if not mime_allowed(content_type, bucket.allowed_mime_types):
        raise errors.invalid_mime_type(content_type)
    limit = effective_limit(bucket.file_size_limit, global_limit)
    if declared is not None and limit and declared > limit:
        raise errors.entity_too_large()
    return limit


async def check_bucket(pool: asyncpg.Pool, bucket_id: str, content_type: str, declared: int | None,
                       global_limit: int) -> int:
    """The byte limit for this upload; raises NoSuchBucket / InvalidMimeType / EntityTooLarge."""
    async with transaction(pool, Actor.storage(), readonly=True) as conn:
        bucket = await repo.bucket_limits(conn, bucket_id)
    return _limit_for(bucket, bucket_id, content_type, declared, global_limit)


async def prepare(pool: asyncpg.Pool, actor: Actor, target: UploadTarget, content_type: str,
                  declared: int | None, global_limit: int) -> int:
    """`check_bucket` and `probe_permission` in one rolled-back transaction; returns the byte limit."""
    try:
        async with transaction(pool, actor) as conn:
            async with as_storage(conn, actor):
                bucket = await repo.bucket_limits(conn, target.bucket_id)
                limit = _limit_for(bucket, target.bucket_id, content_type, declared, global_limit)
            await repo.write_object(conn, object_id=str(uuid.uuid4()), bucket_id=target.bucket_id, name=target.name,
                                    owner=actor.owner_uuid, owner_id=actor.sub, metadata=None, user_metadata=None,
                                    version=str(uuid.uuid4()), upsert=target.upsert)
            raise _Rollback(limit)
    except _Rollback as done:
        return done.limit


async def probe_permission(pool: asyncpg.Pool, actor: Actor, target: UploadTarget) -> None:
    """Try the row write under the caller's role and roll it back: 403/409/404 before reading the body."""
    try:
        async with transaction(pool, actor) as conn:
            await repo.write_object(conn, object_id=str(uuid.uuid4()), bucket_id=target.bucket_id, name=target.name,
                                    owner=actor.owner_uuid, owner_id=actor.sub, metadata=None, user_metadata=None,
                                    version=str(uuid.uuid4()), upsert=target.upsert)
            raise _Rollback
    except _Rollback:
        return


@dataclass(frozen=True, slots=True)
class LateCheck:
    """Bucket checks done at commit instead of before the bytes (small uploads: one transaction, not two)."""

    content_type: str
    size: int
    global_limit: int


async def commit_row(pool: asyncpg.Pool, actor: Actor, target: UploadTarget, metadata: dict[str, Any],
                     user_metadata: Any, version: str, check: LateCheck | None = None) -> tuple[str, str | None]:
    """Insert/upsert the row; returns its id and the version it replaced."""
    new_id = str(uuid.uuid4())
    async with transaction(pool, actor) as conn:
        replaced: str | None = None
        if target.upsert or check is not None:
            if target.upsert:
                await repo.lock_path(conn, target.bucket_id, target.name)
            async with as_storage(conn, actor):
                if check is not None:
                    bucket = await repo.bucket_limits(conn, target.bucket_id)
                    _limit_for(bucket, target.bucket_id, check.content_type, check.size, check.global_limit)
                if target.upsert:
                    replaced = await repo.current_version(conn, target.bucket_id, target.name)
        await repo.write_object(conn, object_id=new_id, bucket_id=target.bucket_id, name=target.name,
                                owner=actor.owner_uuid, owner_id=actor.sub, metadata=metadata,
                                user_metadata=user_metadata, version=version, upsert=target.upsert)
        if replaced is not None:  # an upsert kept the existing row's id
            if not actor.internal:
                await become_storage(conn)
            new_id = await repo.object_id(conn, target.bucket_id, target.name) or new_id
    return new_id, replaced


async def store(pool: asyncpg.Pool, backend: Backend, actor: Actor, target: UploadTarget, body: UploadBody,
                global_limit: int, *, probe: bool = True) -> tuple[str, int]:
    """Store one upload; returns the object's id and its size."""
    # A small body is cheaper to receive than a second transaction: check everything at commit instead.
    late = probe and body.request_length is not None and body.request_length <= SMALL_UPLOAD
    if late:
        limit = global_limit
    elif probe:
        limit = await prepare(pool, actor, target, body.content_type, body.content_length, global_limit)
    else:
        limit = await check_bucket(pool, target.bucket_id, body.content_type, body.content_length, global_limit)
    version = str(uuid.uuid4())
    key = version_key(version)
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0

    async def guarded() -> AsyncIterator[bytes]:
        nonlocal size
        async for chunk in body.chunks:
            size += len(chunk)
            if limit and size > limit:
                raise errors.entity_too_large()
            yield chunk

    await backend.put(key, guarded(), md5)
    metadata = object_metadata(size=size, etag=f'"{md5.hexdigest()}"', mimetype=body.content_type,
                               cache_control=body.cache_control)
    try:
        check = LateCheck(body.content_type, size, global_limit) if late else None
        new_id, replaced = await commit_row(pool, actor, target, metadata, body.user_metadata, version, check)
    except BaseException:
        await delete_quietly(backend, [key])
        raise
    if replaced and replaced != version:
        await delete_quietly(backend, [version_key(replaced)])
    return new_id, size
