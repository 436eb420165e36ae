"""The byte-store contract, run against every backend: memory, filesystem, and S3 (obstore against moto in
server mode). A key is visible only once its stream completed; a failing stream leaves nothing."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from madbase.storage.backends.base import Backend, KeyNotFound, version_key
from madbase.storage.backends.fs import FsBackend
from madbase.storage.backends.memory import MemoryBackend
from madbase.storage.backends.s3 import S3Backend
from tests.storage.conftest import make_s3_bucket


@pytest.fixture(params=["memory", "fs", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        return MemoryBackend()
    if request.param == "fs":
        return FsBackend(tmp_path / "root")
    endpoint = request.getfixturevalue("moto_endpoint")
    return S3Backend({"bucket": make_s3_bucket(endpoint), "endpoint": endpoint, "access_key_id": "test",
                      "secret_access_key": "test", "prefix": "proj"})


async def chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def read(backend: Backend, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in await backend.open(key, start, end)])


async def test_put_open_range_copy_delete_list(backend: Backend) -> None:
    data = os.urandom(12 * 1024 * 1024 + 5)  # more than two S3 multipart parts
    key = version_key("0123abcd-version")
    assert await backend.put(key, chunks(data)) == len(data)
    assert await read(backend, key) == data
    assert await read(backend, key, 100, 199) == data[100:200]
    assert await read(backend, key, len(data) - 10) == data[-10:]
    copy_key = version_key("4567efgh-version")
    await backend.copy(key, copy_key)
    assert await read(backend, copy_key, 0, 9) == data[:10]
    listed = sorted([k.key async for k in backend.list_keys("objects/")])
    assert listed == sorted([key, copy_key])
    assert all([k.modified > time.time() - 600 async for k in backend.list_keys("objects/")])
    await backend.delete([key, "objects/zz/missing"])
    with pytest.raises(KeyNotFound):
        await backend.open(key)
    assert await read(backend, copy_key, 0, 9) == data[:10]


async def test_failed_stream_leaves_nothing(backend: Backend) -> None:
    key = version_key("89abcdef-failed")

    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * (6 * 1024 * 1024)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await backend.put(key, broken())
    with pytest.raises(KeyNotFound):
        await backend.open(key)
    assert [k async for k in backend.list_keys("objects/")] == []
    assert await backend.sweep_temporary(time.time() + 1) == 0  # fs removed its temporary file already


async def test_put_file(backend: Backend, tmp_path: Path) -> None:
    staged = tmp_path / "staged.bin"
    staged.write_bytes(b"staged bytes")
    await backend.put_file(version_key("aa00-staged"), staged)
    assert not staged.exists()
    assert await read(backend, version_key("aa00-staged")) == b"staged bytes"
