"""The functions' control-plane routes under /admin/v1 (contributed through `Service(admin_routes=...)`):
deploy (a new numbered version), list/read/update/delete, versions, rollback, invocation logs, and the
project's secrets (names only when listed; values sealed at rest). Rights: functions.read|write,
secrets.read|write. A deploy is validated (WASM compiled, JS bundled and compiled) before it is stored;
every server process picks the change up through NOTIFY (functions/registry.py).
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import asyncpg

from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.kit.routing import Route
from madbase.core.numbers import ascii_uint
from madbase.core.platform import AdminRequest
from madbase.functions import deploy, store
from madbase.functions.registry import JS_UNAVAILABLE, JsUnavailable, Runners

MAX_DEPLOY_BODY = 50 * 2**20
MAX_SMALL_BODY = 1 * 2**20
MAX_SECRETS = 500
MAX_SECRET_BYTES = 64 * 1024
_runners: dict[Path, Runners] = {}


def _pool(request: AdminRequest) -> asyncpg.Pool:
    pool = request.ctx.runtime.control_pool
    assert pool is not None
    return pool


def _runners_for(request: AdminRequest) -> Runners:
    cache = request.ctx.runtime.settings.data_dir / "functions-cache"
    found = _runners.get(cache)
    if found is None:
        found = _runners[cache] = Runners(cache)
    return found


async def _json_body(request: AdminRequest, limit: int = MAX_SMALL_BODY) -> Any:
    return await request.json(limit, empty={})


def _slug(request: AdminRequest) -> str:
    slug = request.params[1]
    if not deploy.SLUG.match(slug):
        raise MessageError(404, "Function not found")
    return slug


# -- functions ---------------------------------------------------------------------------------------------
async def list_functions(request: AdminRequest) -> Response:
    return Response.json({"functions": await store.list_functions(_pool(request), request.project.ref),
                          "next_cursor": None})


async def deploy_function(request: AdminRequest) -> Response:
    content_type = request.header("content-type") or ""
    slug = request.query.get("slug")  # Supabase's `POST .../functions/deploy?slug=NAME` style
    try:
        if content_type.lower().startswith("multipart/form-data"):
            wanted = deploy.from_multipart(content_type, await request.read(MAX_DEPLOY_BODY), slug)
        else:
            wanted = deploy.from_json(await _json_body(request, MAX_DEPLOY_BODY), slug)
    except deploy.DeployError as exc:
        raise MessageError(400, str(exc)) from None
    artifact = await _build(request, wanted)
    found = await store.deploy(_pool(request), request.project.ref, wanted.slug, name=wanted.name, kind=wanted.kind,
                               artifact=artifact, entrypoint=wanted.entrypoint, settings=wanted.settings,
                               created_by=request.admin.email)
    await request.audit("functions.deploy", f"functions/{wanted.slug}",
                        {"version": found["version"], "kind": wanted.kind, "bytes": len(artifact)})
    return Response.json(found, 201)


async def _build(request: AdminRequest, wanted: deploy.DeployRequest) -> bytes:
    """The artifact to store, checked by preparing it the way an invocation will (compile errors: 400)."""
    runners = _runners_for(request)
    if wanted.kind == "wasm":
        assert wanted.entrypoint is not None
        artifact = wanted.files[wanted.entrypoint]
    else:
        try:
            bundler = importlib.import_module("madbase.functions.js.bundle")
        except ImportError:
            raise MessageError(400, JS_UNAVAILABLE) from None
        try:
            artifact = await asyncio.to_thread(bundler.bundle, wanted.files, wanted.entrypoint, wanted.import_map)
        except getattr(bundler, "BundleError", ValueError) as exc:
            raise MessageError(400, f"bundling failed: {exc}") from None
    try:
        runner = runners.get(wanted.kind)
        await asyncio.to_thread(runner.prepare, artifact)
    except JsUnavailable:
        raise MessageError(400, JS_UNAVAILABLE) from None
    except ValueError as exc:
        raise MessageError(400, str(exc)) from None
    return bytes(artifact)


async def get_function(request: AdminRequest) -> Response:
    found = await store.get_function(_pool(request), request.project.ref, _slug(request))
    if found is None:
        raise MessageError(404, "Function not found")
    return Response.json(found)


async def update_function(request: AdminRequest) -> Response:
    slug = _slug(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise MessageError(400, "The body must be a JSON object")
    try:
        settings = deploy.settings_from(body)
    except deploy.DeployError as exc:
        raise MessageError(400, str(exc)) from None
    found = await store.update(_pool(request), request.project.ref, slug, settings)
    if found is None:
        raise MessageError(404, "Function not found")
    await request.audit("functions.update", f"functions/{slug}", {"fields": sorted(settings)})
    return Response.json(found)


async def delete_function(request: AdminRequest) -> Response:
    slug = _slug(request)
    if not await store.delete(_pool(request), request.project.ref, slug):
        raise MessageError(404, "Function not found")
    await request.audit("functions.delete", f"functions/{slug}")
    return Response.json({"message": "Function deleted"})


async def list_versions(request: AdminRequest) -> Response:
    slug = _slug(request)
    rows = await store.versions(_pool(request), request.project.ref, slug)
    if not rows:
        raise MessageError(404, "Function not found")
    return Response.json({"versions": rows, "next_cursor": None})


async def rollback(request: AdminRequest) -> Response:
    slug = _slug(request)
    body = await _json_body(request)
    version = body.get("version") if isinstance(body, dict) else None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise MessageError(400, "version must be a positive integer")
    found = await store.rollback(_pool(request), request.project.ref, slug, version)
    if found is None:
        raise MessageError(404, f"Function {slug} has no version {version}")
    await request.audit("functions.rollback", f"functions/{slug}", {"version": version})
    return Response.json(found)


async def read_logs(request: AdminRequest) -> Response:
    slug = _slug(request)
    raw_limit = request.query.get("limit", "100")
    before_raw = request.query.get("cursor")
    if ascii_uint(raw_limit, 6) is None or int(raw_limit) < 1:
        raise MessageError(400, "limit must be a positive integer")
    if before_raw is not None and ascii_uint(before_raw, 18) is None:
        raise MessageError(400, "cursor must be a log id")
    limit = min(int(raw_limit), 1000)
    rows = await store.read_logs(_pool(request), request.project.ref, slug, limit,
                                 int(before_raw) if before_raw is not None else None)
    return Response.json({"logs": rows, "next_cursor": str(rows[-1]["id"]) if len(rows) == limit else None})


# -- secrets -----------------------------------------------------------------------------------------------
async def list_secrets(request: AdminRequest) -> Response:
    return Response.json(await store.list_secrets(_pool(request), request.project.ref))


async def set_secrets(request: AdminRequest) -> Response:
    body = await _json_body(request)
    if isinstance(body, dict):  # {"NAME": "value"} as a convenience beside Supabase's list
        body = [{"name": k, "value": v} for k, v in body.items()]
    if not isinstance(body, list) or not body or len(body) > MAX_SECRETS:
        raise MessageError(400, 'The body must be a list of {"name", "value"} (at most 500)')
    pairs: list[tuple[str, str]] = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str) or "\0" in item["value"]:
            raise MessageError(400, 'each secret is {"name": NAME, "value": "text"}')
        try:
            name = deploy.check_env_name(item.get("name"))
        except deploy.DeployError as exc:
            raise MessageError(400, str(exc)) from None
        if len(item["value"].encode()) > MAX_SECRET_BYTES:
            raise MessageError(400, f"{name}: a secret value is at most 64 KiB")
        pairs.append((name, item["value"]))
    await store.set_secrets(_pool(request), request.ctx.runtime.box, request.project.ref, pairs)
    await request.audit("secrets.set", "secrets", {"names": [n for n, _ in pairs]})
    return Response.json({"message": "Secrets set", "names": [n for n, _ in pairs]}, 201)


async def delete_secrets(request: AdminRequest) -> Response:
    body = await _json_body(request)
    if not isinstance(body, list) or not body or not all(isinstance(n, str) for n in body) or len(body) > 500:
        raise MessageError(400, 'The body must be a list of secret names: ["NAME", ...]')
    count = await store.delete_secrets(_pool(request), request.project.ref, list(body))
    await request.audit("secrets.delete", "secrets", {"names": list(body)})
    return Response.json({"message": f"{count} secret(s) deleted", "deleted": count})


_F = "/projects/{ref}/functions"
_S = "/projects/{ref}/functions/{slug}"
ROUTES: tuple[Route[Any], ...] = (
    route("GET", _F, list_functions, name="admin.functions.list", right="functions.read"),
    route("POST", _F, deploy_function, name="admin.functions.deploy", right="functions.write",
          body_limit=MAX_DEPLOY_BODY),
    route("POST", _F + "/deploy", deploy_function, name="admin.functions.deploy_named", right="functions.write",
          body_limit=MAX_DEPLOY_BODY),
    route("GET", _S, get_function, name="admin.functions.get", right="functions.read"),
    route("PATCH", _S, update_function, name="admin.functions.update", right="functions.write",
          body_limit=MAX_SMALL_BODY),
    route("DELETE", _S, delete_function, name="admin.functions.delete", right="functions.write"),
    route("GET", _S + "/versions", list_versions, name="admin.functions.versions", right="functions.read"),
    route("POST", _S + "/rollback", rollback, name="admin.functions.rollback", right="functions.write",
          body_limit=MAX_SMALL_BODY),
    route("GET", _S + "/logs", read_logs, name="admin.functions.logs", right="functions.read"),
    route("GET", "/projects/{ref}/secrets", list_secrets, name="admin.secrets.list", right="secrets.read"),
    route("POST", "/projects/{ref}/secrets", set_secrets, name="admin.secrets.set", right="secrets.write",
          body_limit=MAX_SMALL_BODY),
    route("DELETE", "/projects/{ref}/secrets", delete_secrets, name="admin.secrets.delete", right="secrets.write",
          body_limit=MAX_SMALL_BODY),
)
