"""Signed URLs: create (single, batch), fetch with `?token=`, and signed upload URLs.

Creating a signed URL needs the caller to be able to read the object (RLS); fetching it needs only the
token. Creating a signed upload URL probes the caller's INSERT permission; uploading with the token then
writes as storage's own role with the owner recorded in the token.
"""

from __future__ import annotations

from typing import Any

from madbase.core.kit import Response
from madbase.storage import errors, keys, repo, signing
from madbase.storage.actor import Actor, transaction
from madbase.storage.call import Call, json_response
from madbase.storage.objects import _find, _upload
from madbase.storage.uploads import UploadTarget, probe_permission

MAX_SIGN_PATHS = 1000


def _signed_path(bucket: str, name: str, token: str) -> str:
    # Not percent-encoded, as Supabase returns it: storage-js passes the whole URL through encodeURI().
    return f"/object/sign/{bucket}/{name}?token={token}"


async def sign_one(call: Call) -> Response:
    bucket, name = call.params[0], call.params[1]
    body = await call.json()
    expires = signing.parse_expires(body.get("expiresIn"))
    if body.get("transform"):
        # No image transformations here: a URL that silently ignored them would serve the original.
        raise errors.feature_not_enabled()
    if await _find(call, call.actor(), bucket, name) is None:
        raise errors.no_such_key()
    token = signing.sign_download(call.ctx.project, bucket, name, expires)
    return json_response({"signedURL": _signed_path(bucket, name, token)})


async def sign_many(call: Call) -> Response:
    bucket = call.params[0]
    body = await call.json()
    expires = signing.parse_expires(body.get("expiresIn"))
    paths = body.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise errors.invalid_request("body must have required property 'paths'")
    if len(paths) > MAX_SIGN_PATHS:
        raise errors.invalid_request(f"At most {MAX_SIGN_PATHS} paths can be signed at once")
    async with transaction(await call.pool(), call.actor(), readonly=True) as conn:
        rows = await conn.fetch("select name from storage.objects where bucket_id = $1 and name = any($2::text[])",
                                bucket, paths)
    found = {r["name"] for r in rows}
    out: list[dict[str, Any]] = []
    for path in paths:
        if path in found:
            token = signing.sign_download(call.ctx.project, bucket, path, expires)
            out.append({"error": None, "path": path, "signedURL": _signed_path(bucket, path, token)})
        else:
            out.append({"error": "Either the object does not exist or you do not have access to it", "path": path,
                        "signedURL": None})
    return json_response(out)


async def get_signed(call: Call) -> Response:
    bucket, name = call.params[0], call.params[1]
    signing.verify(call.ctx.project, call.query.get("token"), bucket, name, signing.DOWNLOAD)

    async def find() -> Any:
        async with transaction(await call.pool(), Actor.storage(), readonly=True) as conn:
            return await repo.find_object(conn, bucket, name)

    row = await find()
    if row is None:
        raise errors.no_such_key()
    _, backend = call.storage()
    return await call.serve(row, backend, reload=find)


async def sign_upload(call: Call) -> Response:
    bucket, name = call.params[0], keys.check_key(call.params[1])
    await call.json()
    upsert = call.upsert_header()
    actor = call.actor()
    await probe_permission(await call.pool(), actor, UploadTarget(bucket, name, upsert))
    token = signing.sign_upload(call.ctx.project, bucket, name, actor.sub, upsert)
    url = f"/object/upload/sign/{bucket}/{name}?token={token}"
    return json_response({"url": url, "token": token})


async def upload_signed(call: Call) -> Response:
    bucket, name = call.params[0], keys.check_key(call.params[1])
    claims = signing.verify(call.ctx.project, call.query.get("token"), bucket, name, signing.UPLOAD)
    owner = claims.get("owner")
    actor_claims: dict[str, Any] = {"role": "supabase_storage_admin"}
    if isinstance(owner, str):
        actor_claims["sub"] = owner
    # Only the token decides (as on Supabase): storage-js sends `x-upsert` on every signed upload, and a
    # create-only token must not become an overwrite because the request asks for one.
    upsert = claims["upsert"] is True
    return await _upload(call, Actor.storage(actor_claims), bucket, name, upsert, probe=False)
