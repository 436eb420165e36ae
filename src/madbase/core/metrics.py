"""Prometheus metrics: requests by service, status and project; latency histogram; pool statistics."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

STAGE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
# the `le` labels as prometheus_client's Histogram writes them ("1.0", "+Inf")
_STAGE_LE: tuple[str, ...] = (*(floatToGoString(b) for b in STAGE_BUCKETS), "+Inf")  # type: ignore[no-untyped-call]


class _PoolCollector(Collector):
    def __init__(self, stats: Callable[[], list[tuple[str, int, int, int]]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[GaugeMetricFamily]:
        size = GaugeMetricFamily("madbase_db_pool_max_size", "Pool bound per project", labels=["project"])
        open_ = GaugeMetricFamily("madbase_db_pool_connections", "Open connections per project", labels=["project"])
        idle = GaugeMetricFamily("madbase_db_pool_idle", "Idle connections per project", labels=["project"])
        for ref, max_size, current, idle_n in self._stats():
            size.add_metric([ref], max_size)
            open_.add_metric([ref], current)
            idle.add_metric([ref], idle_n)
        yield from (size, open_, idle)


class StageHistogram(Collector):
    """`madbase_http_stage_duration_seconds{service,stage}`, kept as plain counts and summed at scrape time.

    Every request built on the kit observes ~5-7 stages, on the hot path: prometheus_client's `Histogram`
    takes a lock and increments a locked value per observation (several µs each, measured: more than REST's
    whole routing). Here an observation is one bisect and two additions (the event loop is the only writer;
    a scrape reads a consistent-enough snapshot, as Prometheus tolerates)."""

    __slots__ = ("_series",)

    def __init__(self) -> None:
        # service → stage → ([count per bucket (the last: +Inf)], [sum of seconds])
        self._series: dict[str, dict[str, tuple[list[int], list[float]]]] = {}

    def observe(self, service: str, stage: str, seconds: float) -> None:
        self.observe_all(service, {stage: seconds})

    def observe_all(self, service: str, durations: dict[str, float]) -> None:
        """Every stage of one request (one call per request: the dispatcher's hot path)."""
        stages = self._series.get(service)
        if stages is None:
            stages = self._series[service] = {}
        for stage, seconds in durations.items():
            series = stages.get(stage)
            if series is None:
                series = stages[stage] = ([0] * (len(STAGE_BUCKETS) + 1), [0.0])
            series[0][bisect_left(STAGE_BUCKETS, seconds)] += 1
            series[1][0] += seconds

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily("madbase_http_stage_duration_seconds", "Request time per stage",
                                       labels=["service", "stage"])
        every = [(svc, stage, series) for svc, stages in list(self._series.items())
                 for stage, series in list(stages.items())]
        for service, stage, (counts, total) in every:
            running = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip(_STAGE_LE, counts, strict=True):
                running += count
                buckets.append((bound, running))
            family.add_metric([service, stage], buckets, total[0])
        yield family


# Per-project latency buckets (upper bounds, seconds) kept as plain cumulative counts for the control plane's
# per-minute usage samples (admin/usage.py): the Prometheus histogram is per service only.
PROJECT_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, pool_stats: Callable[[], list[tuple[str, int, int, int]]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("madbase_http_requests", "HTTP requests", ["service", "status", "project"],
                                registry=self.registry)
        self.latency = Histogram(
            "madbase_http_request_duration_seconds", "Request latency", ["service"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        # per named stage of a request (core/kit/timing.py): where the time goes, by service
        self.stage_latency = StageHistogram()
        self.registry.register(self.stage_latency)
        self.registry.register(_PoolCollector(pool_stats))
        # POST /auth/v1/token outcomes other than refreshes (password, id_token, pkce, ...): sign-ins
        self.sign_ins = Counter("madbase_auth_sign_ins", "Auth sign-in attempts by result", ["project", "result"],
                                registry=self.registry)
        self._children: dict[tuple[str, int, str], Callable[[], None]] = {}
        #: set by a worker of a multi-process server: gathers every worker's series
        self.gather: Callable[[], Awaitable[bytes]] | None = None
        self._latency_children: dict[str, Callable[[float], None]] = {}
        #: project ref → cumulative request counts per PROJECT_LATENCY_BUCKETS (the last: slower)
        self.project_latency: dict[str, list[int]] = {}

    def observe(self, service: str, status: int, project: str, seconds: float) -> None:
        key = (service, status, project)
        inc = self._children.get(key)
        if inc is None:
            inc = self.requests.labels(service, str(status), project).inc
            self._children[key] = inc
        inc()
        observe = self._latency_children.get(service)
        if observe is None:
            observe = self.latency.labels(service).observe
            self._latency_children[service] = observe
        observe(seconds)
        counts = self.project_latency.get(project)
        if counts is None:
            counts = self.project_latency[project] = [0] * (len(PROJECT_LATENCY_BUCKETS) + 1)
        counts[bisect_left(PROJECT_LATENCY_BUCKETS, seconds)] += 1

    def observe_sign_in(self, project: str, status: int) -> None:
        self.sign_ins.labels(project, "success" if status < 300 else "failure").inc()

    def observe_stage(self, service: str, stage: str, seconds: float) -> None:
        self.stage_latency.observe(service, stage, seconds)

    def observe_stages(self, service: str, durations: dict[str, float]) -> None:
        self.stage_latency.observe_all(service, durations)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def render_all(self) -> bytes:
        """What `/metrics` serves: this process's series, or every worker's (core/workermetrics.py)."""
        if self.gather is not None:
            return await self.gather()
        return self.render()
