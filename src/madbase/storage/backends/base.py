"""The byte-store Protocol every backend implements, and the key layout shared by all of them.

Bytes are immutable once written: every upload writes a new *version* key (`objects/ab/<version>`), so
metadata rows point at versions and a move is a pure metadata update. `put` makes a key visible only when
all its bytes are in place (temporary file + rename, or an S3 multipart upload completed at the end); a
failed or cancelled `put` leaves nothing at the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

log = structlog.get_logger("madbase.storage")

CHUNK = 1024 * 1024


class KeyNotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StoredKey:
    key: str
    modified: float  # epoch seconds


def version_key(version: str) -> str:
    return f"objects/{version[:2]}/{version}"


def version_of(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "objects":
        return parts[2]
    return None


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class Backend(Protocol):
    name: str

    async def put(self, key: str, chunks: AsyncIterable[bytes], digest: Digest | None = None) -> int:
        """Store the stream at `key`, visible only once complete; returns the number of bytes. `digest` sees
        every byte in order (the filesystem backend feeds it from its writer thread, off the event loop)."""
        ...

    async def put_file(self, key: str, path: Path) -> None:
        """Store a local file at `key` (the file is consumed: moved or deleted)."""
        ...

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end] (inclusive) of `key`; raises KeyNotFound before yielding anything."""
        ...

    async def copy(self, src: str, dst: str) -> None: ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete keys; missing keys are not an error."""
        ...

    def list_keys(self, prefix: str) -> AsyncIterator[StoredKey]: ...

    async def sweep_temporary(self, older_than: float) -> int:
        """Remove temporary leftovers (partial writes) last touched before `older_than`; returns the count."""
        ...

    async def close(self) -> None: ...


async def delete_quietly(backend: Backend, keys: Sequence[str]) -> None:
    """Delete bytes whose rows are already gone (or never committed); a failure is logged, not raised —
    the sweeper removes what is left."""
    if not keys:
        return
    try:
        await asyncio.shield(backend.delete(keys))
    except Exception as exc:
        log.warning("storage_delete_failed", count=len(keys), error=str(exc))
