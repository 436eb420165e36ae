"""The storage ASGI app: its route table (core/kit: each route with its guards and the operation's stable
name), the kit's dispatcher, and the background sweeper. Handlers live in buckets.py, objects.py, signed.py
and tus_http.py.

Operation names are what RLS policies see as `current_setting('storage.operation')`. They are written out
here, not derived from the handlers' module and function names (as they once were), so renaming code never
changes them; tests/storage/test_units.py pins them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from pathlib import Path
from typing import Any

import structlog

from madbase.core.context import RequestContext
from madbase.core.kit import Dispatcher, Response, Route, RouteTable, ServiceKit, route
from madbase.core.runtime import Runtime
from madbase.core.types import Receive, Scope, Send
from madbase.storage import buckets, errors, objects, signed, sweeper, tus_http
from madbase.storage.call import BODY_ERRORS, MAX_JSON_BODY, Call, Handler, error_response
from madbase.storage.config import Backends
from madbase.storage.errors import StorageError
from madbase.storage.metrics import StorageMetrics

log = structlog.get_logger("madbase.storage")

PREFIX = "/storage/v1"
SWEEP_TICK = 60.0  # how often the loop looks; each project's own interval decides when it is swept

_GH = ("GET", "HEAD")
_JSON = MAX_JSON_BODY  # routes whose body is a JSON document; uploads stream (bounded by the bucket's limit)

ROUTES: RouteTable[Handler] = RouteTable([
    route("GET", "/bucket", buckets.list_buckets, name="storage.bucket.list_buckets"),
    route("POST", "/bucket", buckets.create_bucket, name="storage.bucket.create_bucket", body_limit=_JSON),
    route("POST", "/bucket/{bucket}/empty", buckets.empty_bucket, name="storage.bucket.empty_bucket",
          body_limit=_JSON),
    route("GET", "/bucket/{bucket}", buckets.get_bucket, name="storage.bucket.get_bucket"),
    route("PUT", "/bucket/{bucket}", buckets.update_bucket, name="storage.bucket.update_bucket", body_limit=_JSON),
    route("DELETE", "/bucket/{bucket}", buckets.delete_bucket, name="storage.bucket.delete_bucket",
          body_limit=_JSON),
    route("POST", "/object/list/{bucket}", objects.list_objects, name="storage.object.list_objects",
          body_limit=_JSON),
    route("POST", "/object/list-v2/{bucket}", objects.list_objects_v2, name="storage.object.list_objects_v2",
          body_limit=_JSON),
    route("POST", "/object/move", objects.move, name="storage.object.move", body_limit=_JSON),
    route("POST", "/object/copy", objects.copy, name="storage.object.copy", body_limit=_JSON),
    route("POST", "/object/sign/{bucket}", signed.sign_many, name="storage.object.sign_many", body_limit=_JSON),
    route("POST", "/object/sign/{bucket}/{path*}", signed.sign_one, name="storage.object.sign_one",
          body_limit=_JSON),
    route(_GH, "/object/sign/{bucket}/{path*}", signed.get_signed, name="storage.object.get_signed"),
    route("POST", "/object/upload/sign/{bucket}/{path*}", signed.sign_upload, name="storage.object.sign_upload",
          body_limit=_JSON),
    route("PUT", "/object/upload/sign/{bucket}/{path*}", signed.upload_signed, name="storage.object.upload_signed"),
    route(_GH, "/object/public/{bucket}/{path*}", objects.download_public, name="storage.object.download_public"),
    route(_GH, "/object/authenticated/{bucket}/{path*}", objects.download, name="storage.object.download"),
    route("GET", "/object/info/public/{bucket}/{path*}", objects.info_public, name="storage.object.info_public"),
    route("GET", "/object/info/authenticated/{bucket}/{path*}", objects.info, name="storage.object.info"),
    route("GET", "/object/info/{bucket}/{path*}", objects.info, name="storage.object.info"),
    route(_GH, "/object/{bucket}/{path*}", objects.download, name="storage.object.download"),
    route(("POST", "PUT"), "/object/{bucket}/{path*}", objects.upload, name="storage.object.upload"),
    route("DELETE", "/object/{bucket}/{path*}", objects.remove_one, name="storage.object.remove_one"),
    route("DELETE", "/object/{bucket}", objects.remove_many, name="storage.object.remove_many", body_limit=_JSON),
    route("DELETE", "/cdn/{bucket}", objects.purge_cache, name="storage.object.purge_cache"),
    route("DELETE", "/cdn/{bucket}/{path*}", objects.purge_cache, name="storage.object.purge_cache"),
    route(_GH, "/render/image/{rest**}", objects.render_image, name="storage.object.render_image"),
    route("OPTIONS", "/upload/resumable", tus_http.options, name="storage.resumable.options"),
    route("POST", "/upload/resumable", tus_http.create, name="storage.resumable.create"),
    route("OPTIONS", "/upload/resumable/{upload_id}", tus_http.options, name="storage.resumable.options"),
    route("HEAD", "/upload/resumable/{upload_id}", tus_http.head, name="storage.resumable.head"),
    route("PATCH", "/upload/resumable/{upload_id}", tus_http.patch, name="storage.resumable.patch"),
    route("DELETE", "/upload/resumable/{upload_id}", tus_http.delete, name="storage.resumable.delete"),
])


def _render(err: Exception) -> Response:
    assert isinstance(err, StorageError)
    return error_response(err)


def _forbidden(route: Route[Any], ctx: RequestContext) -> Exception:
    return errors.access_denied(f"{ctx.auth.role} may not call {route.name}")


KIT = ServiceKit(name="storage", prefix=PREFIX, error_type=StorageError, render=_render,
                 not_found=errors.not_found_route, forbidden=_forbidden, body_errors=BODY_ERRORS)


class StorageApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.backends = Backends(Path(runtime.settings.data_dir).resolve())
        self._sweeper: asyncio.Task[None] | None = None
        self._last_sweep: dict[str, float] = {}
        self.tus = tus_http.TusRegistry()
        self.metrics = StorageMetrics(runtime.metrics.registry)
        self._dispatch: Dispatcher[Call] = Dispatcher(KIT, ROUTES, functools.partial(Call, self))

    async def startup(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="storage-sweeper")

    async def shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.backends.close()

    async def sweep_all(self) -> int:
        removed = 0
        for ref in list(self.runtime.projects.active_refs):
            project = self.runtime.projects.resolve(ref)
            settings, backend = self.backends.get(project)
            if settings.backend == "fs" and not settings.root.exists() and not settings.staging.exists():
                continue  # nothing stored yet: do not wake the project's database
            now = time.monotonic()
            if now - self._last_sweep.get(ref, -1e12) < settings.sweep_interval:
                continue
            self._last_sweep[ref] = now
            try:
                pool = await self.runtime.pools.get(project)
                swept = await sweeper.sweep(pool, backend, settings.sweep_grace)
                swept += await asyncio.to_thread(self.tus.sweep, settings.staging, settings.sweep_grace)
                self.metrics.swept.labels(ref).inc(swept)
                removed += swept
            except Exception as exc:  # one project's trouble must not stop the others' sweep
                log.warning("storage_sweep_failed", project_ref=ref, error=str(exc))
        return removed

    async def sweep_orphans(self) -> int:
        """Partial writes left by processes that died (kill -9 mid-upload), in every project's filesystem
        backend, whatever their age: no database, one directory listing per project, so it runs at start and
        on every tick (the full sweep keeps its per-project interval)."""
        removed = 0
        for ref in list(self.runtime.projects.active_refs):
            try:
                settings, backend = self.backends.get(self.runtime.projects.resolve(ref))
                if settings.backend == "fs" and settings.root.exists():
                    swept = await backend.sweep_temporary(0.0)
                    if swept:
                        self.metrics.swept.labels(ref).inc(swept)
                        log.info("storage_orphans_swept", project_ref=ref, count=swept)
                    removed += swept
            except Exception as exc:  # one project's trouble must not stop the others' sweep
                log.warning("storage_sweep_failed", project_ref=ref, error=str(exc))
        return removed

    async def _sweep_loop(self) -> None:
        await asyncio.sleep(1.0)
        while True:
            try:
                await self.sweep_orphans()
                await self.sweep_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("storage_sweep_failed", error=str(exc))
            await asyncio.sleep(SWEEP_TICK)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._dispatch(scope, receive, send)


def build(runtime: Runtime) -> StorageApp:
    return StorageApp(runtime)
