"""Per-project schema caches: loaded on first use, reloaded on `NOTIFY pgrst, 'reload schema'`.

Each project gets one LISTEN connection (owner DSN) on channel `pgrst`; a notification (sent by the DDL
event trigger of migration 4001, or by hand) schedules a reload. Reloads build a new snapshot and swap it
in atomically, so requests in flight keep the snapshot they started with; several notifications while a
reload runs collapse into one more reload. A failed reload keeps serving the previous snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg
import structlog

from madbase.core.projects import Project
from madbase.rest.schema import SchemaCache, introspect

log = structlog.get_logger("madbase.rest")


class ProjectSchema:
    def __init__(self, project: Project, schemas: tuple[str, ...]) -> None:
        self.project = project
        self.schemas = schemas
        self.cache: SchemaCache | None = None
        self._version = 0
        self._lock = asyncio.Lock()
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection[Any] | None = None
        self._pool: asyncpg.Pool | None = None
        self._listen_tried = 0.0
        self._loaded_at = 0.0

    async def get(self, pool: asyncpg.Pool) -> SchemaCache:
        cache = self.cache
        if cache is not None:
            if self._listener is None and not self.reloading and time.monotonic() - self._listen_tried > 5.0:
                self.schedule_reload(relisten=True)  # the LISTEN connection is gone: reconnect and catch up
            return cache
        async with self._lock:
            if self.cache is None:
                self._pool = pool
                await self._listen()
                await self._load()
        assert self.cache is not None
        return self.cache

    def refresh_on_miss(self) -> bool:
        """A name missed: reload now unless a reload is running or the snapshot is under 2 s old (catches DDL
        when no event trigger could be installed). True when a reload is (now) in progress."""
        if self.reloading:
            return True
        if time.monotonic() - self._loaded_at < 2.0:
            return False
        self.schedule_reload()
        return True

    @property
    def reloading(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait_reload(self) -> None:
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    async def _load(self) -> None:
        assert self._pool is not None
        self._version += 1
        # the snapshot's age counts from the start of the catalog reads: DDL committed while they ran may be
        # missing from it, and must not be shielded from refresh_on_miss by a fresh-looking timestamp
        started = time.monotonic()
        async with self._pool.acquire() as conn:
            self.cache = await introspect(conn, self.schemas, self._version)
        self._loaded_at = started
        log.info("schema_cache_loaded", project_ref=self.project.ref, version=self._version,
                 relations=len(self.cache.tables), functions=len(self.cache.functions))

    async def _listen(self) -> None:
        self._listen_tried = time.monotonic()
        try:
            conn = await asyncpg.connect(self.project.record.db_url, timeout=10)
            await conn.add_listener("pgrst", self._on_notify)
            conn.add_termination_listener(self._on_lost)
            self._listener = conn
        except Exception as exc:  # serve without auto-reload rather than fail requests
            log.warning("schema_listener_failed", project_ref=self.project.ref, error=str(exc))

    def _on_lost(self, *_: object) -> None:
        self._listener = None
        self.schedule_reload(relisten=True)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if str(payload).strip() in ("", "reload schema"):
            self.schedule_reload()

    def schedule_reload(self, relisten: bool = False) -> None:
        if self.reloading:
            self._dirty = True
            return
        self._task = asyncio.get_running_loop().create_task(self._reload(relisten))

    async def _reload(self, relisten: bool) -> None:
        while True:
            self._dirty = False
            try:
                if relisten and self._listener is None:
                    await self._listen()
                await self._load()
            except Exception as exc:
                log.warning("schema_reload_failed", project_ref=self.project.ref, error=str(exc))
            if not self._dirty:
                return

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None


class SchemaRegistry:
    def __init__(self) -> None:
        self._by_project: dict[tuple[str, str], ProjectSchema] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def for_project(self, project: Project, schemas: tuple[str, ...]) -> ProjectSchema:
        key = (project.ref, project.record.db_url)
        entry = self._by_project.get(key)
        if entry is None or entry.schemas != schemas:
            if entry is not None:  # exposed schemas changed: a new cache, and the old listener goes
                task = asyncio.get_running_loop().create_task(entry.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            entry = self._by_project[key] = ProjectSchema(project, schemas)
        return entry

    async def close(self) -> None:
        for entry in list(self._by_project.values()):
            await entry.close()
        self._by_project.clear()
