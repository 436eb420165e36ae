"""Realtime settings go through the validated process settings: a bad value stops the start with one line."""

from __future__ import annotations

import pytest

from madbase.config import ConfigError, load_settings
from madbase.realtime.config import RealtimeSettings


def test_defaults_match_the_documented_ones() -> None:
    assert RealtimeSettings.from_settings(load_settings()) == RealtimeSettings()


def test_environment_values_reach_realtime(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"MADBASE_REALTIME_GRACE_SECONDS": "2.5", "MADBASE_REALTIME_SOCKET_QUEUE": "50",
           "MADBASE_REALTIME_GHOST_BUFFER": "7", "MADBASE_REALTIME_MAX_LAG_BYTES": "4096",
           "MADBASE_REALTIME_REDIS_URL": "redis://127.0.0.1:6379/0", "MADBASE_REALTIME_NODE_HEARTBEAT": "1",
           "MADBASE_REALTIME_MAX_CHANNELS": "3", "MADBASE_REALTIME_MAX_PAYLOAD_KB": "256",
           "MADBASE_REALTIME_MAX_EVENTS_PER_SECOND": "10", "MADBASE_REALTIME_MAX_JOINS_PER_SECOND": "20",
           "MADBASE_REALTIME_LOG_MAXLEN": "500"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert RealtimeSettings.from_settings(load_settings()) == RealtimeSettings(
        grace_seconds=2.5, socket_queue_max=50, ghost_buffer_max=7, max_lag_bytes=4096,
        redis_url="redis://127.0.0.1:6379/0", heartbeat_seconds=1.0, max_channels_per_socket=3, max_payload_kb=256,
        max_events_per_second=10, max_joins_per_second=20, log_maxlen=500)


@pytest.mark.parametrize(("name", "value"), [
    ("MADBASE_REALTIME_GRACE_SECONDS", "thirty"),  # used to become the default silently
    ("MADBASE_REALTIME_GRACE_SECONDS", "-1"),
    ("MADBASE_REALTIME_SOCKET_QUEUE", "0"),
    ("MADBASE_REALTIME_SOCKET_QUEUE", "1.5"),
    ("MADBASE_REALTIME_GHOST_BUFFER", "many"),
    ("MADBASE_REALTIME_MAX_LAG_BYTES", "0"),
    ("MADBASE_REALTIME_REDIS_URL", "127.0.0.1:6379"),
    ("MADBASE_REALTIME_NODE_HEARTBEAT", "0"),
    ("MADBASE_REALTIME_MAX_CHANNELS", "-5"),
    ("MADBASE_REALTIME_MAX_PAYLOAD_KB", "0"),
    ("MADBASE_REALTIME_MAX_EVENTS_PER_SECOND", "x"),
    ("MADBASE_REALTIME_MAX_JOINS_PER_SECOND", "0"),
    ("MADBASE_REALTIME_LOG_MAXLEN", "0"),
])
def test_bad_values_stop_the_start_with_one_line(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"invalid setting {name}: ") and "\n" not in message
