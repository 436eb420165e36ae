"""`/rest/v1`: the PostgREST-compatible data API (request → plan → SQL → response)."""

from madbase.rest.service import service

__all__ = ["service"]
