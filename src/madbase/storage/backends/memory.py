"""An in-memory backend for unit tests (same semantics as the others: visible only when complete)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path

from madbase.storage.backends.base import CHUNK, Digest, KeyNotFound, StoredKey


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, float]] = {}

    async def put(self, key: str, chunks: AsyncIterable[bytes], digest: Digest | None = None) -> int:
        parts = [bytes(c) async for c in chunks]
        data = b"".join(parts)
        if digest is not None:
            digest.update(data)
        self.objects[key] = (data, time.time())
        return len(data)

    async def put_file(self, key: str, path: Path) -> None:
        self.objects[key] = (path.read_bytes(), time.time())  # noqa: ASYNC240
        path.unlink()  # noqa: ASYNC240

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if key not in self.objects:
            raise KeyNotFound(key)
        data = self.objects[key][0]
        stop = len(data) if end is None else end + 1

        async def gen() -> AsyncIterator[bytes]:
            for pos in range(start, stop, CHUNK):
                yield data[pos:min(pos + CHUNK, stop)]

        return gen()

    async def copy(self, src: str, dst: str) -> None:
        if src not in self.objects:
            raise KeyNotFound(src)
        self.objects[dst] = (self.objects[src][0], time.time())

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)

    async def list_keys(self, prefix: str) -> AsyncIterator[StoredKey]:
        for key, (_, modified) in list(self.objects.items()):
            if key.startswith(prefix):
                yield StoredKey(key, modified)

    async def sweep_temporary(self, older_than: float) -> int:
        return 0

    async def close(self) -> None:
        return None
