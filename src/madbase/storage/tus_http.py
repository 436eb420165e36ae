"""The TUS adapter: staging files on local disk (`<staging>/tus/<id>.bin` + `.json`), one in-process lock per
upload, and completion through the same commit path as a normal upload (RLS under the completing caller).

The staged file's size is the upload offset, so a PATCH cut off mid-way keeps what arrived and the client
resumes from there (HEAD). Completed uploads move into the backend (a rename on the filesystem backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from madbase.core import jsonutil
from madbase.core.kit import Response
from madbase.core.proxies import public_origin
from madbase.core.requestscope import ClientGone
from madbase.storage import keys, tus_files
from madbase.storage.backends.base import CHUNK, delete_quietly, version_key
from madbase.storage.bodies import parse_user_metadata
from madbase.storage.call import Call
from madbase.storage.errors import StorageError
from madbase.storage.tus import (
    TusError,
    UploadState,
    base_headers,
    check_patch,
    head_headers,
    options_headers,
    patch_headers,
    plan_create,
)
from madbase.storage.uploads import UploadTarget, commit_row, object_metadata, prepare

STAGING_MAX_AGE = 24 * 3600.0
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


class TusRegistry:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        # Running MD5 per upload with the offset it covers; lost on restart (then the file is re-read once).
        self._digests: dict[str, tuple[Any, int]] = {}

    def lock(self, upload_id: str) -> asyncio.Lock:
        return self._locks.setdefault(upload_id, asyncio.Lock())

    def digest_at(self, upload_id: str, offset: int) -> Any:
        """The running MD5 if it covers exactly `offset` bytes (a new one at 0), else None."""
        known = self._digests.get(upload_id)
        if known is not None and known[1] == offset:
            return known[0]
        return hashlib.md5(usedforsecurity=False) if offset == 0 else None

    def keep_digest(self, upload_id: str, digest: Any, offset: int) -> None:
        if digest is None:
            self._digests.pop(upload_id, None)
        else:
            self._digests[upload_id] = (digest, offset)

    def forget(self, upload_id: str) -> None:
        self._locks.pop(upload_id, None)
        self._digests.pop(upload_id, None)

    def sweep(self, staging: Path, grace: float) -> int:
        folder = staging / "tus"
        if not folder.exists():
            return 0
        cutoff = time.time() - max(grace, STAGING_MAX_AGE)
        removed = 0
        for entry in list(folder.iterdir()):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        return removed


def _error(err: TusError | StorageError) -> Response:
    if isinstance(err, StorageError):
        status = {403: 403, 404: 404, 409: 409, 413: 413, 415: 415}.get(err.status_code, err.http)
        return Response(status, base_headers(), err.body(), media_type="application/json")
    return Response(err.status, base_headers(), err.message.encode(), media_type="text/plain")


def _folder(call: Call) -> Path:
    settings, _ = call.storage()
    folder = settings.staging / "tus"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _load(call: Call, upload_id: str) -> tuple[UploadState, Path]:
    if not _UPLOAD_ID.fullmatch(upload_id):  # ids are uuid4 hex: anything else names no file (nor a long path)
        raise TusError(404, "Upload not found")
    folder = _folder(call)
    try:
        state = UploadState.from_dict(jsonutil.loads((folder / f"{upload_id}.json").read_bytes()))
    except (FileNotFoundError, ValueError, TypeError):
        raise TusError(404, "Upload not found") from None
    actor = call.actor()
    if state.owner != actor.sub or (state.owner is None and state.role != actor.role):
        raise TusError(404, "Upload not found")
    return state, folder / f"{upload_id}.bin"


def _location(call: Call, upload_id: str) -> str:
    # X-Forwarded-Host/-Proto only from a trusted proxy: anyone else could point the client's next PATCH
    # (with its Authorization header) at a host of their choosing.
    proto, host = public_origin(call.headers, call.scheme, trusted=call.ctx.via_trusted_proxy)
    return f"{proto}://{host}/storage/v1/upload/resumable/{upload_id}"


async def options(call: Call) -> Response:
    settings, _ = call.storage()
    return Response(204, options_headers(settings.file_size_limit))


async def create(call: Call) -> Response:
    settings, _ = call.storage()
    try:
        plan = plan_create(call.headers, settings.file_size_limit)
        name = keys.check_key(plan.name)
        keys.check_bucket_name(plan.bucket)
        user_metadata = parse_user_metadata(plan.user_metadata_json, base64_encoded=False)
        actor = call.actor()
        await prepare(await call.pool(), actor, UploadTarget(plan.bucket, name, plan.upsert), plan.content_type,
                      plan.length, settings.file_size_limit)
    except (TusError, StorageError) as err:
        return _error(err)
    upload_id = uuid.uuid4().hex
    state = UploadState(id=upload_id, length=plan.length, bucket=plan.bucket, name=name,
                        content_type=plan.content_type, cache_control=plan.cache_control,
                        user_metadata=user_metadata, upsert=plan.upsert, owner=actor.sub, role=actor.role)
    folder = _folder(call)
    data = folder / f"{upload_id}.bin"
    data.touch()
    tus_files.write_state(data.with_suffix(".json"), jsonutil.dumps(state.to_dict()))
    headers = {**base_headers(), "location": _location(call, upload_id)}
    if state.length == 0:
        response = await _append_and_maybe_finish(call, state, data, initial=True, body=False)
        if response.status >= 300:
            return response
        return Response(201, {**headers, "upload-offset": "0"})
    if (call.header("content-type") or "").startswith("application/offset+octet-stream"):
        patched = await _append_and_maybe_finish(call, state, data, initial=True)
        if patched.status >= 300:
            return patched
        headers["upload-offset"] = patched.header("upload-offset") or "0"
    return Response(201, headers)


async def head(call: Call) -> Response:
    try:
        state, data = _load(call, call.params[0])
        offset = data.stat().st_size
    except FileNotFoundError:
        return _error(TusError(404, "Upload not found"))
    except TusError as err:
        return _error(err)
    return Response(200, head_headers(state, offset))


async def delete(call: Call) -> Response:
    try:
        state, data = _load(call, call.params[0])
    except TusError as err:
        return _error(err)
    try:
        async with _claimed(call, state, data):
            tus_files.discard(data)  # under the claim: no other worker is appending to it
    except TusError as err:
        return _error(err)
    call.app.tus.forget(state.id)
    return Response(204, {"tus-resumable": "1.0.0"})


async def patch(call: Call) -> Response:
    try:
        state, data = _load(call, call.params[0])
    except TusError as err:
        return _error(err)
    return await _append_and_maybe_finish(call, state, data, initial=False)


async def _append_and_maybe_finish(call: Call, state: UploadState, data: Path, *, initial: bool,
                                   body: bool = True) -> Response:
    try:
        async with _claimed(call, state, data) as fd:
            return await _append_claimed(call, state, data, fd, initial=initial, body=body)
    except TusError as err:
        return _error(err)


@contextlib.asynccontextmanager
async def _claimed(call: Call, state: UploadState, data: Path) -> AsyncIterator[int]:
    """The upload's writer slot: the in-process lock first (a second request in this process is refused at once),
    then the staging file's `flock` (a request on another worker or server). TusError(423) when taken."""
    lock = call.app.tus.lock(state.id)
    if lock.locked():
        raise TusError(423, "The upload is being written by another request")
    async with lock:
        fd = await asyncio.to_thread(tus_files.claim, data)
        try:
            yield fd
        finally:
            tus_files.release(fd)


async def _append_claimed(call: Call, state: UploadState, data: Path, fd: int, *, initial: bool, body: bool
                          ) -> Response:
    """Append one request's bytes while holding the upload's claim; finish when the last byte arrived."""
    current = tus_files.size(fd)
    if body:
        headers = dict(call.headers)
        if initial:
            headers.setdefault("upload-offset", "0")
        try:
            remaining = check_patch(headers, state, current)
        except TusError as err:
            return _error(err)
    else:
        remaining = 0
    written = 0
    digest = call.app.tus.digest_at(state.id, current)
    disconnected = False
    too_long = False
    pending: list[bytes] = []
    pending_size = 0
    try:
        if body:
            async for chunk in call.body_stream():
                if written + pending_size + len(chunk) > remaining:
                    too_long = True
                    break
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= CHUNK:
                    await asyncio.to_thread(tus_files.append, fd, pending, digest)
                    written += pending_size
                    pending, pending_size = [], 0
    except ClientGone:
        disconnected = True
    if pending:  # what arrived before a disconnect is kept: the client resumes after it
        await asyncio.to_thread(tus_files.append, fd, pending, digest)
        written += pending_size
    call.app.tus.keep_digest(state.id, digest, current + written)
    if too_long:
        return _error(TusError(413, "The chunk exceeds the declared Upload-Length"))
    offset = current + written
    if disconnected:
        return Response(499)
    if offset < state.length:
        return Response(204, patch_headers(offset))
    try:
        await _finish(call, state, data, offset)
    except StorageError as err:
        return _error(err)
    return Response(204, patch_headers(offset))


async def _finish(call: Call, state: UploadState, data: Path, size: int) -> None:
    """(the caller holds the upload's claim) Move the bytes into the backend and commit the row."""
    _, backend = call.storage()
    pool = await call.pool()
    md5 = call.app.tus.digest_at(state.id, size)
    if md5 is None or size == 0:  # the server restarted mid-upload: hash the staged file once
        md5 = await asyncio.to_thread(_hash_file, data)
    version = str(uuid.uuid4())
    key = version_key(version)
    await backend.put_file(key, data)
    metadata = object_metadata(size=size, etag=f'"{md5.hexdigest()}"', mimetype=state.content_type,
                               cache_control=state.cache_control)
    try:
        _, replaced = await commit_row(pool, call.actor(), UploadTarget(state.bucket, state.name, state.upsert),
                                       metadata, state.user_metadata, version)
    except BaseException:
        await delete_quietly(backend, [key])
        tus_files.discard(data)
        raise
    finally:
        call.app.tus.forget(state.id)
    tus_files.discard(data)
    call.app.metrics.uploaded.labels(call.ctx.project.ref).inc(size)
    if replaced and replaced != version:
        await delete_quietly(backend, [version_key(replaced)])


def _hash_file(path: Path) -> Any:
    md5 = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            md5.update(chunk)
    return md5
