"""`/realtime/v1`: Phoenix-channel WebSocket (postgres_changes, broadcast, presence)."""

from madbase.realtime.service import service

__all__ = ["service"]
