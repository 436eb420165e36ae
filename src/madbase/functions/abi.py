"""The functions ABI's request and result records (CONTRACTS.md; fnrt owns this module and its CGI codec)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FunctionRequest:
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class FunctionResult:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    logs: str
    fuel_used: int
    memory_bytes: int
    error: str | None  # None | "cpu" | "memory" | "wall" | "crash" | "boot"
