"""Realtime settings, read from the environment once per process (`MADBASE_REALTIME_*`)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def _int(name: str, default: int) -> int:
    return int(_float(name, default))


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
    def from_env(cls) -> RealtimeSettings:
        return cls(
            grace_seconds=_float("MADBASE_REALTIME_GRACE_SECONDS", 30.0),
            socket_queue_max=_int("MADBASE_REALTIME_SOCKET_QUEUE", 1000),
            ghost_buffer_max=_int("MADBASE_REALTIME_GHOST_BUFFER", 10_000),
            max_lag_bytes=_int("MADBASE_REALTIME_MAX_LAG_BYTES", 1 << 30),
            redis_url=os.environ.get("MADBASE_REALTIME_REDIS_URL", ""),
            heartbeat_seconds=_float("MADBASE_REALTIME_NODE_HEARTBEAT", 5.0),
            max_channels_per_socket=_int("MADBASE_REALTIME_MAX_CHANNELS", 100),
            max_payload_kb=_int("MADBASE_REALTIME_MAX_PAYLOAD_KB", 3000),
            max_events_per_second=_int("MADBASE_REALTIME_MAX_EVENTS_PER_SECOND", 2500),
            max_joins_per_second=_int("MADBASE_REALTIME_MAX_JOINS_PER_SECOND", 2500),
            log_maxlen=_int("MADBASE_REALTIME_LOG_MAXLEN", 100_000),
        )
