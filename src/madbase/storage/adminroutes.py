"""Storage's contribution to the control plane (`Service(admin_routes=...)`, docs/admin-operations.md): a
project's buckets (list, create, get, update, empty, delete) and objects (list by prefix, download, upload,
delete) through /admin/v1 with an admin's rights (storage.read / storage.write).

Each route runs storage's own handler (buckets.py, objects.py) on a `Call` made for it — the running storage
app (its backends, found through core/serviceapps.py), the project of `{ref}`, the service_role identity — so
limits, MIME checks, streaming and the backend (fs or S3) are exactly the Storage API's. Bodies the admin
route shapes itself (listing options, `prefixes`) are handed over as the request body. Storage's refusals
become the control plane's `{"message"}` with their status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from madbase.core import jsonutil, serviceapps
from madbase.core.authn import AuthContext
from madbase.core.context import RequestContext
from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.kit.routing import Route
from madbase.core.numbers import ascii_uint
from madbase.core.platform import AdminRequest, json_object_bytes
from madbase.core.types import Message, Receive
from madbase.storage import buckets, objects
from madbase.storage.call import BODY_ERRORS, MAX_JSON_BODY, Call
from madbase.storage.errors import StorageError

SERVICE_ROLE = AuthContext(role="service_role", claims={"role": "service_role"},
                           claims_json='{"role":"service_role"}', token=None, key_role="service_role")


def _body_of(data: bytes) -> Receive:
    """An ASGI receive handing over `data` as the whole body (for bodies the admin route shapes itself)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    return receive


def _call(request: AdminRequest, operation: str, params: tuple[str, ...], *, body: bytes | None = None,
          body_limit: int = MAX_JSON_BODY, query: dict[str, str] | None = None) -> Call:
    app = serviceapps.app_of(request.ctx.runtime, "storage")
    if app is None:
        raise MessageError(503, "the storage service is not running")
    ctx = request.ctx
    service_ctx = RequestContext(request_id=ctx.request_id, project_or_none=request.project, auth=SERVICE_ROLE,
                                 runtime=ctx.runtime, client_ip=ctx.client_ip,
                                 via_trusted_proxy=ctx.via_trusted_proxy)
    scope = request.scope if query is None else dict(request.scope, query_string=urlencode(query).encode())
    call = Call(app, scope, request.receive if body is None else _body_of(body), service_ctx,
                params=params, subpath=request.subpath, operation=operation, body_limit=body_limit,
                body_errors=BODY_ERRORS)
    call.stages = request.stages
    return call


async def _run(handler: Callable[[Call], Awaitable[Response]], call: Call) -> Response:
    try:
        return await handler(call)
    except StorageError as err:
        status = err.status_code if 400 <= err.status_code < 600 else err.http
        raise MessageError(status, err.message) from None


def _json(response: Response) -> Any:
    return jsonutil.loads(response.body) if response.body else None


def _bucket(request: AdminRequest) -> str:
    return request.params[1]


# -- buckets -------------------------------------------------------------------------------------------
async def list_buckets(request: AdminRequest) -> Response:
    """Buckets by name; `search` filters by name, `limit` (≤ 1000) and `cursor` page."""
    q = request.query
    limit = ascii_uint(q.get("limit") or "100", 9)
    offset = ascii_uint(q.get("cursor") or "0", 12)
    if limit is None or offset is None or limit < 1:
        raise MessageError(400, "limit and cursor must be non-negative integers")
    limit = min(limit, 1000)
    call = _call(request, "storage.bucket.list_buckets", (), body=b"",
                 query={"limit": str(limit + 1), "offset": str(offset), "search": q.get("search", "")})
    rows = _json(await _run(buckets.list_buckets, call))
    more = len(rows) > limit
    return Response.json({"buckets": rows[:limit], "next_cursor": str(offset + limit) if more else None})


async def create_bucket(request: AdminRequest) -> Response:
    body = await json_object_bytes(request)
    created = _json(await _run(buckets.create_bucket, _call(request, "storage.bucket.create_bucket", (),
                                                            body=body)))
    name = created["name"]
    bucket = _json(await _run(buckets.get_bucket, _call(request, "storage.bucket.get_bucket", (name,), body=b"")))
    await request.audit("storage.bucket.create", f"buckets/{name}", {"public": bucket.get("public")})
    return Response.json(bucket, 201)


async def get_bucket(request: AdminRequest) -> Response:
    call = _call(request, "storage.bucket.get_bucket", (_bucket(request),), body=b"")
    return Response.json(_json(await _run(buckets.get_bucket, call)))


async def update_bucket(request: AdminRequest) -> Response:
    bucket = _bucket(request)
    body = await json_object_bytes(request)
    await _run(buckets.update_bucket, _call(request, "storage.bucket.update_bucket", (bucket,), body=body))
    fields = sorted(jsonutil.loads(body)) if body.strip() else []
    await request.audit("storage.bucket.update", f"buckets/{bucket}", {"fields": fields})
    updated = _json(await _run(buckets.get_bucket, _call(request, "storage.bucket.get_bucket", (bucket,), body=b"")))
    return Response.json(updated)


async def empty_bucket(request: AdminRequest) -> Response:
    bucket = _bucket(request)
    await _run(buckets.empty_bucket, _call(request, "storage.bucket.empty_bucket", (bucket,), body=b""))
    await request.audit("storage.bucket.empty", f"buckets/{bucket}")
    return Response(204)


async def delete_bucket(request: AdminRequest) -> Response:
    """Delete an empty bucket; `?force=true` empties it first."""
    bucket = _bucket(request)
    force = request.query.get("force", "false").lower() == "true"
    if force:
        await _run(buckets.empty_bucket, _call(request, "storage.bucket.empty_bucket", (bucket,), body=b""))
    await _run(buckets.delete_bucket, _call(request, "storage.bucket.delete_bucket", (bucket,), body=b""))
    await request.audit("storage.bucket.delete", f"buckets/{bucket}", {"force": force})
    return Response(204)


# -- objects -------------------------------------------------------------------------------------------
async def list_objects(request: AdminRequest) -> Response:
    """Objects and folders under `prefix` (`delimiter=false`: every object below it, flat), `limit` (≤ 1000)
    at a time, `cursor` for the next page."""
    q = request.query
    options: dict[str, Any] = {"prefix": q.get("prefix", ""), "with_delimiter": q.get("delimiter", "true") != "false"}
    if q.get("limit"):
        options["limit"] = q["limit"]
    if q.get("cursor"):
        options["cursor"] = q["cursor"]
    call = _call(request, "storage.object.list_objects_v2", (_bucket(request),), body=jsonutil.dumps(options))
    listed = _json(await _run(objects.list_objects_v2, call))
    return Response.json({"objects": listed["objects"], "folders": listed["folders"],
                          "next_cursor": listed.get("nextCursor")})


async def download_object(request: AdminRequest) -> Response:
    call = _call(request, "storage.object.download", (_bucket(request), request.params[2]), body=b"")
    return await _run(objects.download, call)


async def upload_object(request: AdminRequest) -> Response:
    """Upload (the body streamed to the backend, bounded by the bucket's size limit and the server's body
    limit); `x-upsert: true` replaces an existing object."""
    bucket, name = _bucket(request), request.params[2]
    uploaded = _json(await _run(objects.upload, _call(request, "storage.object.upload", (bucket, name), body_limit=0)))
    await request.audit("storage.object.upload", f"buckets/{bucket}/objects/{name}",
                        {"upsert": (request.header("x-upsert") or "").lower() == "true"})
    return Response.json(uploaded, 201)


async def delete_object(request: AdminRequest) -> Response:
    bucket, name = _bucket(request), request.params[2]
    await _run(objects.remove_one, _call(request, "storage.object.remove_one", (bucket, name), body=b""))
    await request.audit("storage.object.delete", f"buckets/{bucket}/objects/{name}")
    return Response(204)


async def delete_objects(request: AdminRequest) -> Response:
    """Delete the objects named in `{"prefixes": [...]}` (Storage's remove); answers those deleted."""
    bucket = _bucket(request)
    body = await json_object_bytes(request)
    removed = _json(await _run(objects.remove_many, _call(request, "storage.object.remove_many", (bucket,),
                                                         body=body)))
    names = [r.get("name") for r in removed or [] if isinstance(r, dict)]
    await request.audit("storage.object.delete_many", f"buckets/{bucket}/objects", {"count": len(names)})
    return Response.json({"objects": removed, "next_cursor": None})


_P = "/projects/{ref}/buckets"
_J = MAX_JSON_BODY
ADMIN_ROUTES: tuple[Route[Any], ...] = (
    route("GET", _P, list_buckets, name="admin.buckets.list", right="storage.read"),
    route("POST", _P, create_bucket, name="admin.buckets.create", right="storage.write", body_limit=_J),
    route("GET", _P + "/{id}", get_bucket, name="admin.buckets.get", right="storage.read"),
    route("PATCH", _P + "/{id}", update_bucket, name="admin.buckets.update", right="storage.write", body_limit=_J),
    route("DELETE", _P + "/{id}", delete_bucket, name="admin.buckets.delete", right="storage.write"),
    route("POST", _P + "/{id}/empty", empty_bucket, name="admin.buckets.empty", right="storage.write"),
    route("GET", _P + "/{id}/objects", list_objects, name="admin.objects.list", right="storage.read"),
    route("DELETE", _P + "/{id}/objects", delete_objects, name="admin.objects.delete_many", right="storage.write",
          body_limit=_J),
    route("GET", _P + "/{id}/objects/{path*}", download_object, name="admin.objects.download", right="storage.read"),
    route("POST", _P + "/{id}/objects/{path*}", upload_object, name="admin.objects.upload", right="storage.write"),
    route("DELETE", _P + "/{id}/objects/{path*}", delete_object, name="admin.objects.delete", right="storage.write"),
)
