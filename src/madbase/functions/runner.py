"""The runner interface every function runtime implements (CONTRACTS.md; fnrt owns this module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from madbase.functions.abi import FunctionRequest, FunctionResult


@dataclass(frozen=True, slots=True)
class Limits:
    cpu_time_ms: int = 2000
    memory_mb: int = 256
    wall_clock_ms: int = 150_000
    max_body_bytes: int = 20 * 2**20


OutboundFetch = Callable[[FunctionRequest], FunctionResult]


class Runner(Protocol):
    kind: str

    def prepare(self, artifact: bytes) -> Any: ...

    def invoke(self, prepared: Any, request: FunctionRequest, env: Mapping[str, str], limits: Limits,
               fetch: OutboundFetch | None) -> FunctionResult: ...
