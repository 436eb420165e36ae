"""`/storage/v1`: the Supabase Storage-compatible object API."""

from madbase.storage.service import service

__all__ = ["service"]
