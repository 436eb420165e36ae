"""`/auth/v1`: the GoTrue-compatible auth API."""

from madbase.auth.service import service

__all__ = ["service"]
