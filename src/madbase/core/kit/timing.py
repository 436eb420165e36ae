"""Stage timing for one request: named stages, reported as `Server-Timing` and into the stage histogram.

    stages = Stages()
    ... (route, read the body)
    stages.mark("plan")         # the time since the last mark (or the start) is the stage "plan"
    ...
    stages.mark("transaction")
    stages.header()             # 'plan;dur=0.412, transaction;dur=1.207'

A stage marked twice adds up (e.g. two transactions). `observe(metrics, service)` records each stage in
`madbase_http_stage_duration_seconds{service,stage}` (core/metrics.py); the dispatcher does both, the header
only when the project enables `server_timing_enabled` (timings say something about the data: opt-in, as
PostgREST's `db-plan-enabled`-style switches are).
"""

from __future__ import annotations

import time
from typing import Protocol


class StageSink(Protocol):
    def observe_stage(self, service: str, stage: str, seconds: float) -> None: ...


class Stages:
    __slots__ = ("_durations", "_last", "started")

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self._last = self.started
        self._durations: dict[str, float] = {}

    def mark(self, name: str) -> float:
        """End stage `name` now (it began at the previous mark); returns its seconds."""
        now = time.perf_counter()
        spent = now - self._last
        self._last = now
        self._durations[name] = self._durations.get(name, 0.0) + spent
        return spent

    def skip(self) -> None:
        """Start the next stage now, not counting the time since the last mark anywhere."""
        self._last = time.perf_counter()

    @property
    def durations(self) -> dict[str, float]:
        """Seconds per stage, in the order the stages were first marked."""
        return dict(self._durations)

    def header(self, names: tuple[str, ...] | None = None) -> str:
        """The Server-Timing header value (durations in milliseconds): every stage, or those of `names` that
        were marked, in that order (a service keeping the names its clients know, e.g. PostgREST's)."""
        durations = self._durations
        if names is None:
            items = list(durations.items())
        else:
            items = [(name, durations[name]) for name in names if name in durations]
        return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in items)

    def observe(self, sink: StageSink, service: str) -> None:
        many = getattr(sink, "observe_stages", None)
        if many is not None:  # core/metrics.Metrics: all stages in one call
            many(service, self._durations)
            return
        for name, seconds in self._durations.items():
            sink.observe_stage(service, name, seconds)
