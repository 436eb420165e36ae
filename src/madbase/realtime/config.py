"""Realtime's view of the process settings: the `MADBASE_REALTIME_*` values of `madbase.config.Settings`
(validated there at start, documented in .env.example), as one small immutable record the service passes
around (tests build it directly)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from madbase.config import Settings


@dataclass(frozen=True, slots=True)
class RealtimeSettings:
    # How long a subscription of a vanished socket (or of a crashed server) keeps collecting its changes.
    grace_seconds: float = 30.0
    # Frames waiting for one socket before it is disconnected as too slow.
    socket_queue_max: int = 1000
    # Changes kept for one disconnected subscription during the grace window.
    ghost_buffer_max: int = 10_000
    # WAL the slot may retain before lag is reported (bytes).
    max_lag_bytes: int = 1 << 30
    # Redis URL for cross-process fan-out (empty: single process).
    redis_url: str = ""
    heartbeat_seconds: float = 5.0
    max_channels_per_socket: int = 100
    # Defaults of Supabase's self-hosted tenant (payload) and of its larger plans (rates); per project in
    # config["realtime"] (see limits.py).
    max_payload_kb: int = 3000
    max_events_per_second: int = 2500
    max_joins_per_second: int = 2500
    # Transaction log entries kept in Redis (multi-process): a client away longer than this many
    # transactions is told that changes were missed.
    log_maxlen: int = 100_000

    @classmethod
    def from_settings(cls, settings: Settings) -> RealtimeSettings:
        return cls(
            grace_seconds=settings.realtime_grace_seconds,
            socket_queue_max=settings.realtime_socket_queue,
            ghost_buffer_max=settings.realtime_ghost_buffer,
            max_lag_bytes=settings.realtime_max_lag_bytes,
            redis_url=settings.realtime_redis_url,
            heartbeat_seconds=settings.realtime_node_heartbeat,
            max_channels_per_socket=settings.realtime_max_channels,
            max_payload_kb=settings.realtime_max_payload_kb,
            max_events_per_second=settings.realtime_max_events_per_second,
            max_joins_per_second=settings.realtime_max_joins_per_second,
            log_maxlen=settings.realtime_log_maxlen,
        )
