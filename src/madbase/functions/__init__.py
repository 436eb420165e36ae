"""`/functions/v1`: WASM edge functions."""

from madbase.functions.service import service

__all__ = ["service"]
