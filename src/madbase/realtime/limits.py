"""Per-project realtime limits (Supabase's tenant limits) and the per-second counters that enforce them.

Values come from the project's `config["realtime"]` (Supabase's field names: `max_payload_size_in_kb`,
`max_events_per_second`, `max_joins_per_second`, `max_channels_per_client`), else from the process settings
(`MADBASE_REALTIME_*`). Counters are kept per process: with N processes a project may reach N times the limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from madbase.core.numbers import ascii_uint

if TYPE_CHECKING:
    from madbase.core.projects import Project
    from madbase.realtime.config import RealtimeSettings

PAYLOAD_TOO_LARGE = "Payload size exceeds tenant limit"


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int
    events_per_second: int
    joins_per_second: int
    channels_per_client: int


def _positive(raw: Any, default: int) -> int:
    if isinstance(raw, bool):
        return default
    if isinstance(raw, int | float) and 0 < raw < 2**62:  # no inf (int() would raise), no absurd sizes
        return int(raw)
    number = ascii_uint(raw) if isinstance(raw, str) else None
    if number:
        return number
    return default


def limits_for(project: Project, settings: RealtimeSettings) -> Limits:
    raw = project.config.get("realtime")
    cfg: dict[str, Any] = raw if isinstance(raw, dict) else {}
    # Supabase counts the payload size in units of 1,000 bytes ("KB").
    return Limits(
        max_payload_bytes=_positive(cfg.get("max_payload_size_in_kb"), settings.max_payload_kb) * 1000,
        events_per_second=_positive(cfg.get("max_events_per_second"), settings.max_events_per_second),
        joins_per_second=_positive(cfg.get("max_joins_per_second"), settings.max_joins_per_second),
        channels_per_client=_positive(cfg.get("max_channels_per_client"), settings.max_channels_per_socket),
    )


def payload_size(payload: Any) -> int:
    """Bytes of a broadcast/presence payload: raw length for binary, JSON-encoded length otherwise."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return len(payload)
    try:
        return len(orjson.dumps(payload))
    except TypeError:
        return 0


class RateWindow:
    """Events in the current one-second window (fixed windows: cheap, and enough to stop a flood)."""

    __slots__ = ("count", "second")

    def __init__(self) -> None:
        self.second = 0
        self.count = 0

    def take(self, limit: int, n: int = 1) -> bool:
        """Count n events; False (and nothing counted) if that would exceed `limit` in this second."""
        now = int(time.monotonic())
        if now != self.second:
            self.second, self.count = now, 0
        if self.count + n > limit:
            return False
        self.count += n
        return True
