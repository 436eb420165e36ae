"""A project's health (database, replication, storage checked now) and usage (per-minute samples).

Usage samples come from the server's own metrics (core/metrics.py and what services register there), read by
one sampler task per server process every `MADBASE_USAGE_SAMPLE_SECONDS` (60): requests and 5xx errors (deltas
of `madbase_http_requests`), latency p50/p99 (deltas of the per-project latency counts, bucket bounds),
pool connections in use, realtime sockets and slot lag, storage bytes moved (uploaded + downloaded), function
invocations. **Samples are per process**: with `--workers N` or several servers, each answers for the requests
it served itself (the sampler keeps no shared state); a scrape of `/metrics` on every process sums them.

Memory: a sample is stored only for a project that had activity in that minute, as one array of doubles;
24 h are kept (1,440 samples at most per project).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

from madbase.admin import storagecheck
from madbase.core.kit import Response
from madbase.core.kit.message import MessageError
from madbase.core.metrics import PROJECT_LATENCY_BUCKETS
from madbase.core.platform import AdminRequest
from madbase.core.runtime import Runtime
from madbase.core.types import ASGIApp, Receive, Scope, Send

log = structlog.get_logger("madbase.admin.usage")

SERIES = ("requests", "errors", "latency_p50_ms", "latency_p99_ms", "pool_in_use", "realtime_sockets",
          "slot_lag_bytes", "storage_bytes", "function_invocations")
PERIODS = {"1h": 3600, "24h": 86_400}
KEEP_SECONDS = 86_400


def _quantile(counts: list[int], q: float) -> float:
    """The upper bound (ms) of the bucket holding quantile `q` of a per-minute latency histogram."""
    total = sum(counts)
    if total == 0:
        return 0.0
    rank = q * total
    running = 0
    for i, n in enumerate(counts):
        running += n
        if running >= rank:
            bound = PROJECT_LATENCY_BUCKETS[i] if i < len(PROJECT_LATENCY_BUCKETS) else PROJECT_LATENCY_BUCKETS[-1] * 2
            return bound * 1000
    return PROJECT_LATENCY_BUCKETS[-1] * 2000


class Sampler:
    """The per-process usage sampler (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.interval = runtime.settings.usage_sample_seconds
        keep = max(1, int(KEEP_SECONDS / self.interval))
        self.ticks: deque[float] = deque(maxlen=keep)
        self.samples: dict[str, deque[array[float]]] = {}
        self._keep = keep
        self._last_counters: dict[str, dict[str, float]] = {}
        self._last_latency: dict[str, list[int]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.sample()  # the baseline of the counters
        self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.sample()
            except Exception as exc:  # a sample lost is no reason to stop sampling
                log.warning("usage_sample_failed", error=str(exc))

    def _counters(self) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
        """(cumulative counters, gauges) per project from the metrics registry."""
        counters: dict[str, dict[str, float]] = {}
        gauges: dict[str, dict[str, float]] = {}

        def add(target: dict[str, dict[str, float]], ref: str, key: str, value: float) -> None:
            per = target.setdefault(ref, {})
            per[key] = per.get(key, 0.0) + value

        for family in self.runtime.metrics.registry.collect():
            for s in family.samples:
                ref = s.labels.get("project")
                if ref is None:
                    continue
                name = s.name
                if name == "madbase_http_requests_total":
                    add(counters, ref, "requests", s.value)
                    if s.labels.get("status", "").startswith("5"):
                        add(counters, ref, "errors", s.value)
                elif name in ("madbase_storage_uploaded_bytes_total", "madbase_storage_downloaded_bytes_total",
                              "madbase_storage_bytes_total"):
                    add(counters, ref, "storage_bytes", s.value)
                elif name == "madbase_function_invocations_total":
                    add(counters, ref, "function_invocations", s.value)
                elif name == "madbase_realtime_slot_lag_bytes":
                    add(gauges, ref, "slot_lag_bytes", s.value)
                elif name in ("madbase_realtime_sockets", "madbase_realtime_project_sockets"):
                    add(gauges, ref, "realtime_sockets", s.value)
        for ref, _max, current, idle in self.runtime.pools.stats():
            add(gauges, ref, "pool_in_use", float(current - idle))
        return counters, gauges

    def sample(self, now: float | None = None) -> None:
        """Take one sample of every project (deltas since the previous one)."""
        now = time.time() if now is None else now
        counters, gauges = self._counters()
        latency = {ref: list(c) for ref, c in self.runtime.metrics.project_latency.items()}
        first = not self.ticks and not self._last_counters
        for ref in set(counters) | set(gauges) | set(latency):
            before = self._last_counters.get(ref, {})
            now_c = counters.get(ref, {})
            deltas = {k: max(0.0, v - before.get(k, 0.0)) for k, v in now_c.items()}
            lat_now = latency.get(ref)
            lat_before = self._last_latency.get(ref)
            window = ([a - (lat_before[i] if lat_before else 0) for i, a in enumerate(lat_now)] if lat_now
                      else [])
            g = gauges.get(ref, {})
            values = {"requests": deltas.get("requests", 0.0), "errors": deltas.get("errors", 0.0),
                      "latency_p50_ms": _quantile(window, 0.5) if window else 0.0,
                      "latency_p99_ms": _quantile(window, 0.99) if window else 0.0,
                      "pool_in_use": g.get("pool_in_use", 0.0), "realtime_sockets": g.get("realtime_sockets", 0.0),
                      "slot_lag_bytes": g.get("slot_lag_bytes", 0.0),
                      "storage_bytes": deltas.get("storage_bytes", 0.0),
                      "function_invocations": deltas.get("function_invocations", 0.0)}
            if first or not any(values.values()):
                continue
            series = self.samples.get(ref)
            if series is None:
                series = self.samples[ref] = deque(maxlen=self._keep)
            series.append(array("d", [now, *(values[k] for k in SERIES)]))
        self._last_counters = counters
        self._last_latency = latency
        self.ticks.append(now)

    def series(self, ref: str, seconds: int, now: float | None = None) -> dict[str, list[list[float]]]:
        """Every series of `ref` over the last `seconds`, one point per sample tick (0 where it was idle)."""
        now = time.time() if now is None else now
        since = now - seconds
        stored = {row[0]: row for row in self.samples.get(ref, ()) if row[0] >= since}
        out: dict[str, list[list[float]]] = {name: [] for name in SERIES}
        for tick in self.ticks:
            if tick < since:
                continue
            row = stored.get(tick)
            for i, name in enumerate(SERIES, start=1):
                out[name].append([int(tick), row[i] if row is not None else 0.0])
        return out


_SAMPLERS: dict[int, Sampler] = {}


def sampler(runtime: Runtime) -> Sampler | None:
    return _SAMPLERS.get(id(runtime))


class WithSampler:
    """The admin service's ASGI app plus the process's usage sampler, started and stopped with the gateway."""

    # weakref: the gateway registers it in core/serviceapps.py; `table`: the OpenAPI route reads the dispatcher's
    __slots__ = ("__weakref__", "app", "runtime")

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    @property
    def table(self) -> Any:
        return getattr(self.app, "table", None)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        return self.app(scope, receive, send)

    async def startup(self) -> None:
        s = Sampler(self.runtime)
        _SAMPLERS[id(self.runtime)] = s
        s.start()

    async def shutdown(self) -> None:
        s = _SAMPLERS.pop(id(self.runtime), None)
        if s is not None:
            await s.stop()


# -- the routes ------------------------------------------------------------------------------------------------
async def usage(request: AdminRequest) -> Response:
    period = request.query.get("period", "1h")
    if period not in PERIODS:
        raise MessageError(400, "period must be 1h or 24h")
    s = sampler(request.ctx.runtime)
    series = s.series(request.project.ref, PERIODS[period]) if s is not None else {n: [] for n in SERIES}
    return Response.json({"period": period, "interval_seconds": s.interval if s else None, "per_process": True,
                          "series": series})


async def _timed(check: Callable[[], Any], limit: float = 10.0) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result: dict[str, Any] = await asyncio.wait_for(check(), limit)
    except TimeoutError:
        return {"ok": False, "detail": f"no answer within {limit:.0f} s"}
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return {"ok": False, "detail": " ".join(str(exc).split())[:300] or type(exc).__name__}
    result.setdefault("latency_ms", round((time.perf_counter() - started) * 1000, 2))
    return result


async def health(request: AdminRequest) -> Response:
    runtime = request.ctx.runtime
    project = request.project
    db_url = project.record.db_url

    async def database() -> dict[str, Any]:
        conn = await asyncpg.connect(db_url, timeout=5)
        try:
            version = await conn.fetchval("select current_setting('server_version')")
        finally:
            await conn.close()
        return {"ok": True, "detail": f"PostgreSQL {version} answered"}

    async def replication() -> dict[str, Any]:
        conn = await asyncpg.connect(db_url, timeout=5)
        try:
            wal = await conn.fetchval("select current_setting('wal_level')")
            rows = await conn.fetch(
                "select slot_name, active, pg_wal_lsn_diff(pg_current_wal_lsn(), "
                "coalesce(confirmed_flush_lsn, restart_lsn))::bigint as lag from pg_replication_slots "
                "where database = current_database()")
        finally:
            await conn.close()
        slots = [{"name": r["slot_name"], "active": r["active"], "lag_bytes": r["lag"]} for r in rows]
        ok = wal == "logical"
        detail = (f"{len(slots)} replication slot(s)" if ok else
                  f"wal_level is {wal}: Realtime's postgres_changes need wal_level = logical")
        return {"ok": ok, "wal_level": wal, "slots": slots, "detail": detail}

    async def storage() -> dict[str, Any]:
        conf = project.config.get("storage")
        return await storagecheck.check(conf if isinstance(conf, dict) else {}, runtime.settings.data_dir,
                                        project.ref)

    db, repl, store = await asyncio.gather(_timed(database), _timed(replication), _timed(storage, 25.0))
    found = runtime.projects.lookup(project.ref)
    project_status = "paused" if found and found[1] == "disabled" else (found[1] if found else "unknown")
    healthy = db["ok"] and repl["ok"] and store["ok"]
    status = "healthy" if healthy else ("unhealthy" if not db["ok"] else "degraded")
    return Response.json({"ref": project.ref, "status": status, "project_status": project_status,
                          "checks": {"database": db, "replication": repl, "storage": store}})
