"""Bucket endpoints (`/bucket…`): every statement runs under the caller's role, so RLS on storage.buckets
decides (service_role bypasses); emptying deletes rows under the caller's role, then the bytes."""

from __future__ import annotations

from typing import Any

from madbase.core.kit import Response
from madbase.storage import errors, keys, repo
from madbase.storage.actor import transaction
from madbase.storage.backends.base import delete_quietly, version_key
from madbase.storage.call import Call, json_response
from madbase.storage.dberrors import BUCKET_EXISTS, BUCKET_NOT_EMPTY
from madbase.storage.limits import check_mime_list, parse_size


async def list_buckets(call: Call) -> Response:
    q = call.query
    try:
        limit = int(q["limit"]) if q.get("limit") else None
        offset = int(q.get("offset") or 0)
    except ValueError:
        raise errors.invalid_request("limit and offset must be numbers") from None
    sort = q.get("sortColumn") or "name"
    order = (q.get("sortOrder") or "asc").lower()
    if sort not in repo.BUCKET_SORT_COLUMNS or order not in ("asc", "desc"):
        raise errors.invalid_request("Invalid sortColumn or sortOrder")
    async with transaction(await call.pool(), call.actor(), readonly=True) as conn:
        rows = await repo.list_buckets(conn, limit=limit, offset=max(offset, 0), search=q.get("search") or "",
                                       sort=sort, order=order)
    return json_response([repo.render_bucket(r) for r in rows])


async def get_bucket(call: Call) -> Response:
    async with transaction(await call.pool(), call.actor(), readonly=True) as conn:
        row = await repo.find_bucket(conn, call.params[0])
    if row is None:
        raise errors.no_such_bucket()
    return json_response(repo.render_bucket(row))


def _bucket_options(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "public" in body and body["public"] is not None:
        if not isinstance(body["public"], bool):
            raise errors.invalid_request("public must be a boolean")
        out["public"] = body["public"]
    if "file_size_limit" in body:
        out["file_size_limit"] = parse_size(body["file_size_limit"])
    if "allowed_mime_types" in body:
        out["allowed_mime_types"] = check_mime_list(body["allowed_mime_types"])
    return out


async def create_bucket(call: Call) -> Response:
    body = await call.json()
    bucket_id = keys.check_bucket_name(body.get("id") or body.get("name"))
    opts = _bucket_options(body)
    actor = call.actor()
    async with transaction(await call.pool(), actor, errors=BUCKET_EXISTS) as conn:
        await repo.insert_bucket(conn, bucket_id, bool(opts.get("public", False)), opts.get("file_size_limit"),
                                 opts.get("allowed_mime_types"), actor.owner_uuid, actor.sub)
    return json_response({"name": bucket_id})


async def update_bucket(call: Call) -> Response:
    body = await call.json()
    opts = _bucket_options(body)
    async with transaction(await call.pool(), call.actor()) as conn:
        updated = await repo.update_bucket(conn, call.params[0], opts)
    if updated is None:
        raise errors.no_such_bucket()
    return json_response({"message": "Successfully updated"})


async def empty_bucket(call: Call) -> Response:
    await call.json()
    _, backend = call.storage()
    async with transaction(await call.pool(), call.actor()) as conn:
        if await repo.find_bucket(conn, call.params[0]) is None:
            raise errors.no_such_bucket()
        versions = await repo.delete_all_objects(conn, call.params[0])
    await delete_quietly(backend, [version_key(v) for v in versions])
    return json_response({"message": "Successfully emptied"})


async def delete_bucket(call: Call) -> Response:
    await call.json()
    async with transaction(await call.pool(), call.actor(), errors=BUCKET_NOT_EMPTY) as conn:
        deleted = await repo.delete_bucket(conn, call.params[0])
    if deleted is None:
        raise errors.no_such_bucket()
    return json_response({"message": "Successfully deleted"})
