"""The interface every function runtime implements (WASM here, JavaScript in functions/js), and its limits.

A runner is synchronous and stateless between invocations: `prepare` turns a deployed artifact into something
cheap to instantiate (compiled once per deploy, cached on disk by artifact hash + runtime version), `invoke` runs
one request in a fresh, isolated instance and blocks until it ends; the service calls it from a worker thread
(wasm releases the GIL) and bounds how many run at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from madbase.functions.abi import FunctionRequest, FunctionResult

__all__ = ["FunctionRequest", "FunctionResult", "Limits", "OutboundFetch", "Runner", "limits_from"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-invocation limits, Supabase's defaults (CPU 2 s, memory 256 MB, wall clock 150 s)."""

    cpu_time_ms: int = 2000
    memory_mb: int = 256
    wall_clock_ms: int = 150_000
    max_body_bytes: int = 20 * 2**20


# Host-side HTTP for a function: the request's `path` is the absolute URL; the implementation enforces the
# allow-list (the project's own API + the function's allowed hosts) and answers FunctionResult(error="blocked").
OutboundFetch = Callable[[FunctionRequest], FunctionResult]


class Runner(Protocol):
    kind: str  # "wasm" | "js"

    def prepare(self, artifact: bytes) -> Any:
        """Compile once per deploy (cached on disk by hash + runtime version); raises ValueError if invalid."""
        ...

    def invoke(self, prepared: Any, request: FunctionRequest, env: Mapping[str, str], limits: Limits,
               fetch: OutboundFetch | None) -> FunctionResult:
        """Run one request in a fresh instance; blocking. Never raises for what the function does."""
        ...


# Upper bounds an operator or deployer may not exceed (a runaway configuration must not take the server down).
MAX_LIMITS = Limits(cpu_time_ms=60_000, memory_mb=2048, wall_clock_ms=400_000, max_body_bytes=256 * 2**20)


def limits_from(config: Mapping[str, Any] | None, base: Limits | None = None) -> Limits:
    """Limits from a manifest/config mapping (unknown keys ignored, values clamped to 1..MAX_LIMITS)."""
    base = base or Limits()
    values: dict[str, int] = {}
    for f in fields(Limits):
        raw = (config or {}).get(f.name)
        current = int(getattr(base, f.name))
        if raw is None:
            values[f.name] = current
            continue
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"limits.{f.name} must be an integer")
        values[f.name] = max(1, min(raw, int(getattr(MAX_LIMITS, f.name))))
    return Limits(**values)
