"""Per-invocation records: buffered in memory, written to the control database in batches every second (an
invocation never waits for its log), pruned past the retention period; and the per-function metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from madbase.functions import store

log = structlog.get_logger("madbase.functions")

FLUSH_S = 1.0
PRUNE_S = 3600.0
RETENTION_DAYS = 7.0
MAX_BUFFER = 10_000  # rows kept while the control DB is away; older ones are dropped


class FunctionMetrics:
    """`madbase_function_invocations_total{project,function,status}` and
    `madbase_function_duration_seconds{project,function}` in the server's registry."""

    _by_registry: dict[int, FunctionMetrics] = {}

    def __init__(self, registry: CollectorRegistry) -> None:
        self.invocations = Counter("madbase_function_invocations", "Edge function invocations",
                                   ["project", "function", "status"], registry=registry)
        self.duration = Histogram("madbase_function_duration_seconds", "Edge function invocation time",
                                  ["project", "function"], registry=registry,
                                  buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                           2.5, 5, 10, 30, 150))

    @classmethod
    def of(cls, registry: CollectorRegistry) -> FunctionMetrics:
        """One set per registry (a test may build several apps on one runtime)."""
        found = cls._by_registry.get(id(registry))
        if found is None:
            found = cls._by_registry[id(registry)] = cls(registry)
        return found

    def observe(self, project: str, function: str, status: int, seconds: float) -> None:
        self.invocations.labels(project, function, str(status)).inc()
        self.duration.labels(project, function).observe(seconds)


class LogWriter:
    def __init__(self, pool: asyncpg.Pool, retention_days: float = RETENTION_DAYS) -> None:
        self._pool = pool
        self._rows: list[tuple[Any, ...]] = []
        self._retention = retention_days
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def add(self, ref: str, slug: str, version: int | None, request_id: str, method: str, path: str, status: int,
            error: str | None, duration_ms: float, fuel: int, memory_bytes: int, logs: str) -> None:
        if len(self._rows) >= MAX_BUFFER:
            del self._rows[: MAX_BUFFER // 10]
        self._rows.append((ref, slug, version, request_id, method, path[:1000], status, error, duration_ms, fuel,
                           memory_bytes, logs[: store.MAX_LOG_TEXT]))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="function-logs")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()

    async def flush(self) -> None:
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        try:
            await store.write_logs(self._pool, rows)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("function_logs_write_failed", error=str(exc), rows=len(rows))
            self._rows = rows + self._rows

    async def _run(self) -> None:
        last_prune = 0.0
        while True:
            await asyncio.sleep(FLUSH_S)
            await self.flush()
            if time.monotonic() - last_prune > PRUNE_S:
                last_prune = time.monotonic()
                try:
                    await store.prune_logs(self._pool, self._retention)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("function_logs_prune_failed", error=str(exc))
