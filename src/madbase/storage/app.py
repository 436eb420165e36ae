"""The storage ASGI app: one route table (method, path pattern, handler), dispatch, error rendering, and the
background sweeper. Handlers live in buckets.py, objects.py, signed.py and tus_http.py."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from madbase.core.context import get_context
from madbase.core.errors import GatewayError
from madbase.core.runtime import Runtime
from madbase.core.types import Receive, Scope, Send
from madbase.storage import buckets, errors, objects, signed, sweeper, tus_http
from madbase.storage.call import Call, error_response
from madbase.storage.config import Backends
from madbase.storage.errors import StorageError
from madbase.storage.metrics import StorageMetrics

log = structlog.get_logger("madbase.storage")

PREFIX = "/storage/v1"
Handler = Callable[[Call], Awaitable[Response]]
SWEEP_TICK = 60.0  # how often the loop looks; each project's own interval decides when it is swept

_B = r"([^/]+)"
_P = r"(.+)"
ROUTES: list[tuple[frozenset[str], re.Pattern[str], Handler]] = [
    (frozenset({m}), re.compile(p), h) for m, p, h in [
        ("GET", r"^/bucket/?$", buckets.list_buckets),
        ("POST", r"^/bucket/?$", buckets.create_bucket),
        ("POST", rf"^/bucket/{_B}/empty/?$", buckets.empty_bucket),
        ("GET", rf"^/bucket/{_B}/?$", buckets.get_bucket),
        ("PUT", rf"^/bucket/{_B}/?$", buckets.update_bucket),
        ("DELETE", rf"^/bucket/{_B}/?$", buckets.delete_bucket),
        ("POST", rf"^/object/list/{_B}/?$", objects.list_objects),
        ("POST", rf"^/object/list-v2/{_B}/?$", objects.list_objects_v2),
        ("POST", r"^/object/move/?$", objects.move),
        ("POST", r"^/object/copy/?$", objects.copy),
        ("POST", rf"^/object/sign/{_B}/?$", signed.sign_many),
        ("POST", rf"^/object/sign/{_B}/{_P}$", signed.sign_one),
        ("GET", rf"^/object/sign/{_B}/{_P}$", signed.get_signed),
        ("HEAD", rf"^/object/sign/{_B}/{_P}$", signed.get_signed),
        ("POST", rf"^/object/upload/sign/{_B}/{_P}$", signed.sign_upload),
        ("PUT", rf"^/object/upload/sign/{_B}/{_P}$", signed.upload_signed),
        ("GET", rf"^/object/public/{_B}/{_P}$", objects.download_public),
        ("HEAD", rf"^/object/public/{_B}/{_P}$", objects.download_public),
        ("GET", rf"^/object/authenticated/{_B}/{_P}$", objects.download),
        ("HEAD", rf"^/object/authenticated/{_B}/{_P}$", objects.download),
        ("GET", rf"^/object/info/public/{_B}/{_P}$", objects.info_public),
        ("GET", rf"^/object/info/authenticated/{_B}/{_P}$", objects.info),
        ("GET", rf"^/object/info/{_B}/{_P}$", objects.info),
        ("GET", rf"^/object/{_B}/{_P}$", objects.download),
        ("HEAD", rf"^/object/{_B}/{_P}$", objects.download),
        ("POST", rf"^/object/{_B}/{_P}$", objects.upload),
        ("PUT", rf"^/object/{_B}/{_P}$", objects.upload),
        ("DELETE", rf"^/object/{_B}/{_P}$", objects.remove_one),
        ("DELETE", rf"^/object/{_B}/?$", objects.remove_many),
        ("DELETE", rf"^/cdn/{_B}/?$", objects.purge_cache),
        ("DELETE", rf"^/cdn/{_B}/{_P}$", objects.purge_cache),
        ("GET", r"^/render/image/.*$", objects.render_image),
        ("HEAD", r"^/render/image/.*$", objects.render_image),
        ("OPTIONS", r"^/upload/resumable/?$", tus_http.options),
        ("POST", r"^/upload/resumable/?$", tus_http.create),
        ("OPTIONS", r"^/upload/resumable/([^/]+)$", tus_http.options),
        ("HEAD", r"^/upload/resumable/([^/]+)$", tus_http.head),
        ("PATCH", r"^/upload/resumable/([^/]+)$", tus_http.patch),
        ("DELETE", r"^/upload/resumable/([^/]+)$", tus_http.delete),
    ]
]


def operation(handler: Handler) -> str:
    """`storage.object.upload`, `storage.bucket.create_bucket`, … as `storage.operation` for policies."""
    family = {"buckets": "bucket", "tus_http": "resumable"}.get(handler.__module__.rsplit(".", 1)[-1], "object")
    return f"storage.{family}.{handler.__name__}"


class StorageApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.backends = Backends(Path(runtime.settings.data_dir).resolve())
        self._sweeper: asyncio.Task[None] | None = None
        self._last_sweep: dict[str, float] = {}
        self.tus = tus_http.TusRegistry()
        self.metrics = StorageMetrics(runtime.metrics.registry)

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
        if scope["type"] != "http":
            return
        ctx = get_context(scope)
        path: str = scope["path"]
        sub = path[len(PREFIX):] or "/"
        method: str = scope["method"]
        request = Request(scope, receive)
        response: Response
        try:
            for methods, pattern, handler in ROUTES:
                if method in methods:
                    match = pattern.match(sub)
                    if match:
                        call = Call(self, request, ctx, match.groups(), sub, operation(handler))
                        response = await handler(call)
                        break
            else:
                raise errors.not_found_route(method, path)
        except StorageError as err:
            response = error_response(err)
        except ClientDisconnect:
            return
        except GatewayError:
            raise
        await response(scope, receive, send)


def build(runtime: Runtime) -> StorageApp:
    return StorageApp(runtime)
