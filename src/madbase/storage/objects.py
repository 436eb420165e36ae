"""Object endpoints (`/object…`): upload, download (authenticated/public), info, list, move, copy, remove.

Reads and writes a user triggers run under the caller's role and claims (RLS decides); public downloads
read as storage's own role after checking the bucket is public.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from madbase.core.kit import Response
from madbase.core.numbers import ascii_uint
from madbase.core.requestscope import ClientGone
from madbase.storage import errors, keys, listing, repo
from madbase.storage.actor import Actor, statement, transaction
from madbase.storage.backends.base import KeyNotFound, delete_quietly, version_key
from madbase.storage.bodies import UploadBody, is_multipart, multipart_body, raw_body
from madbase.storage.call import Call, json_response, require_str
from madbase.storage.uploads import UploadTarget, commit_row, store


async def read_upload_body(call: Call) -> UploadBody:
    headers = call.headers
    content_type = headers.get("content-type")
    if is_multipart(content_type):
        assert content_type is not None
        length = headers.get("content-length")
        return await multipart_body(content_type, call.body_stream(),
                                    ascii_uint(length))
    return raw_body(headers, call.body_stream())


async def upload(call: Call) -> Response:
    bucket, name = call.params[0], keys.check_key(call.params[1])
    upsert = call.method == "PUT" or call.upsert_header()
    return await _upload(call, call.actor(), bucket, name, upsert)


async def _upload(call: Call, actor: Actor, bucket: str, name: str, upsert: bool, *, probe: bool = True
                  ) -> Response:
    settings, backend = call.storage()
    pool = await call.pool()
    try:
        body = await read_upload_body(call)
        new_id, size = await store(pool, backend, actor, UploadTarget(bucket, name, upsert), body,
                                   settings.file_size_limit, probe=probe)
    except ClientGone:
        return Response(499)
    call.stages.mark("store")  # permission probe, bytes to the backend, commit
    call.app.metrics.uploaded.labels(call.ctx.project.ref).inc(size)
    return json_response({"Id": new_id, "Key": f"{bucket}/{name}"})


async def _find(call: Call, actor: Actor, bucket: str, name: str) -> asyncpg.Record | None:
    # one round trip: the object read is the whole transaction (the hot path of every download)
    return await statement(await call.pool(), actor, repo.FIND_OBJECT_STATEMENT, [bucket, name],
                           repo.OBJECT_COLUMN_TYPES, readonly=True)


async def download(call: Call) -> Response:
    bucket, name = call.params[0], call.params[1]
    actor = call.actor()
    row = await _find(call, actor, bucket, name)
    if row is None:
        raise errors.no_such_key()
    _, backend = call.storage()
    return await call.serve(row, backend, reload=lambda: _find(call, actor, bucket, name))


async def _find_public(call: Call, bucket: str, name: str) -> asyncpg.Record | None:
    async with transaction(await call.pool(), Actor.storage(), readonly=True) as conn:
        public, row = await repo.find_public_object(conn, bucket, name)
    if not public:
        raise errors.no_such_bucket()
    return row


async def download_public(call: Call) -> Response:
    bucket, name = call.params[0], call.params[1]
    row = await _find_public(call, bucket, name)
    if row is None:
        raise errors.no_such_key()
    _, backend = call.storage()
    return await call.serve(row, backend, reload=lambda: _find_public(call, bucket, name))


async def purge_cache(call: Call) -> Response:
    """`DELETE /cdn/{bucket}[/{path}]`: MadBase has no CDN in front of it, so there is nothing to purge — the
    object (or bucket) must still be visible to the caller, as on Supabase."""
    if len(call.params) > 1 and call.params[1]:
        if await _find(call, call.actor(), call.params[0], call.params[1]) is None:
            raise errors.no_such_key()
    else:
        async with transaction(await call.pool(), call.actor(), readonly=True) as conn:
            bucket = await repo.find_bucket(conn, call.params[0])
        if bucket is None:
            raise errors.no_such_bucket()
    return json_response({"message": "success"})


async def render_image(call: Call) -> Response:
    raise errors.feature_not_enabled()


def render_info(row: asyncpg.Record) -> dict[str, Any]:
    obj = repo.render_object(row)
    meta = obj["metadata"] or {}
    return {
        "id": obj["id"], "name": obj["name"], "version": obj["version"], "bucket_id": obj["bucket_id"],
        "size": meta.get("size"), "content_type": meta.get("mimetype"), "cache_control": meta.get("cacheControl"),
        "etag": meta.get("eTag"), "metadata": obj["user_metadata"] or {},  # Storage: {} when none was given
        "last_modified": obj["updated_at"], "created_at": obj["created_at"],
    }


async def info(call: Call) -> Response:
    row = await _find(call, call.actor(), call.params[0], call.params[1])
    if row is None:
        raise errors.no_such_key()
    return json_response(render_info(row), headers={"cache-control": "no-cache"})


async def info_public(call: Call) -> Response:
    row = await _find_public(call, call.params[0], call.params[1])
    if row is None:
        raise errors.no_such_key()
    return json_response(render_info(row), headers={"cache-control": "no-cache"})


async def list_objects(call: Call) -> Response:
    plan = listing.plan_list(await call.json())
    async with transaction(await call.pool(), call.actor(), readonly=True) as conn:
        rows = await conn.fetch(plan.sql(), *plan.args(call.params[0]))
    out = [{
        "name": r["name"], "id": str(r["id"]) if r["id"] else None,
        "updated_at": repo.iso(r["updated_at"]), "created_at": repo.iso(r["created_at"]),
        "last_accessed_at": repo.iso(r["last_accessed_at"]),
        "metadata": repo._json(r["metadata"]),
    } for r in rows]
    return json_response(out)


async def list_objects_v2(call: Call) -> Response:
    plan = listing.plan_list_v2(await call.json())
    async with transaction(await call.pool(), call.actor(), readonly=True) as conn:
        rows = list(await conn.fetch(plan.sql(), *plan.args(call.params[0])))
    has_next = len(rows) > plan.limit
    rows = rows[:plan.limit]
    folders = [{"name": r["name"], **plan.key(r["name"])} for r in rows if r["id"] is None]
    objs = [{
        "name": r["name"], **plan.key(r["name"]), "id": str(r["id"]),
        "updated_at": repo.iso(r["updated_at"]), "created_at": repo.iso(r["created_at"]),
        "last_accessed_at": repo.iso(r["last_accessed_at"]), "metadata": repo._json(r["metadata"]),
    } for r in rows if r["id"] is not None]
    out: dict[str, Any] = {"hasNext": has_next, "folders": folders, "objects": objs}
    if has_next:
        out["nextCursor"] = str(plan.offset + plan.limit)
    return json_response(out)


async def remove_many(call: Call) -> Response:
    body = await call.json()
    prefixes = body.get("prefixes")
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise errors.invalid_request("body must have required property 'prefixes'")
    if len(prefixes) > 1000:
        raise errors.invalid_request("At most 1000 objects can be deleted at once")
    return json_response(await _remove(call, call.params[0], prefixes))


async def _remove(call: Call, bucket: str, names: list[str]) -> list[dict[str, Any]]:
    _, backend = call.storage()
    async with transaction(await call.pool(), call.actor()) as conn:
        rows = await repo.delete_objects(conn, bucket, names)
    await delete_quietly(backend, [version_key(r["version"]) for r in rows if r["version"]])
    return [repo.render_object(r) for r in rows]


async def remove_one(call: Call) -> Response:
    removed = await _remove(call, call.params[0], [call.params[1]])
    if not removed:
        raise errors.no_such_key()
    return json_response({"message": "Successfully deleted"})


def _move_args(body: dict[str, Any]) -> tuple[str, str, str, str]:
    bucket = require_str(body, "bucketId")
    src = require_str(body, "sourceKey")
    dst = keys.check_key(require_str(body, "destinationKey"))
    dst_bucket = body.get("destinationBucket") or bucket
    if not isinstance(dst_bucket, str):
        raise errors.invalid_request("destinationBucket must be a string")
    return bucket, src, dst_bucket, dst


async def move(call: Call) -> Response:
    bucket, src, dst_bucket, dst = _move_args(await call.json())
    async with transaction(await call.pool(), call.actor()) as conn:
        row = await repo.move_object(conn, bucket, src, dst_bucket, dst)
    if row is None:
        raise errors.no_such_key()
    return json_response({"message": "Successfully moved"})


async def copy(call: Call) -> Response:
    body = await call.json()
    bucket, src, dst_bucket, dst = _move_args(body)
    if (bucket, src) == (dst_bucket, dst):  # as Supabase: copying onto itself changes nothing
        if await _find(call, call.actor(), bucket, src) is None:
            raise errors.no_such_key()
        return json_response({"Key": f"{dst_bucket}/{dst}", "name": dst})
    copy_meta = body.get("copyMetadata", True) is not False
    user_meta = body.get("metadata")
    upsert = call.upsert_header()
    actor = call.actor()
    pool = await call.pool()
    _, backend = call.storage()
    source = await _find(call, actor, bucket, src)
    if source is None or not source["version"]:
        raise errors.no_such_key()
    version = str(uuid.uuid4())
    metadata = repo._json(source["metadata"])
    if not copy_meta and isinstance(user_meta, dict):
        new_user_meta: Any = user_meta
    else:
        new_user_meta = repo._json(source["user_metadata"]) if copy_meta else None
    try:
        await backend.copy(version_key(source["version"]), version_key(version))
    except KeyNotFound:
        raise errors.no_such_key() from None
    try:
        new_id, replaced = await commit_row(pool, actor, UploadTarget(dst_bucket, dst, upsert), metadata,
                                            new_user_meta, version)
    except BaseException:
        await delete_quietly(backend, [version_key(version)])
        raise
    if replaced:
        await delete_quietly(backend, [version_key(replaced)])
    return json_response({"Id": new_id, "Key": f"{dst_bucket}/{dst}", "name": dst})
