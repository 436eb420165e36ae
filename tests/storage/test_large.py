"""Streaming both ways: a 1 GB object (generated on the fly, never held in memory by the test either) goes
up and down with identical checksums while the server's RSS grows by less than 30 MB.

Size via MADBASE_STORAGE_BIG_MB (default 1024)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env

SIZE = int(os.environ.get("MADBASE_STORAGE_BIG_MB", "1024")) * 1024 * 1024
BLOCK = 1024 * 1024


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def big_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    import asyncio

    db_url = asyncio.run(create_database(pg_cluster, "big"))
    env = external_db_env(db_url)
    proc = MadbaseProcess(tmp_path_factory.mktemp("bigsrv"), env).start()

    async def configure() -> None:
        import asyncpg

        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("update madbase_control.projects set config = config || "
                               "'{\"storage\": {\"file_size_limit\": \"4GB\"}}'::jsonb")
        finally:
            await conn.close()

    asyncio.run(configure())
    proc.stop()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.slow
async def test_one_gigabyte_round_trip_streams(big_server: MadbaseProcess, tmp_path: Path) -> None:
    proc = big_server
    assert proc.proc is not None
    h = proc.headers(key=proc.service_role_key)
    block = os.urandom(BLOCK)
    sent = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for i in range(SIZE // BLOCK):
            chunk = i.to_bytes(8, "big") + block[8:]
            sent.update(chunk)
            yield chunk

    async with httpx.AsyncClient(base_url=proc.url + "/storage/v1", timeout=600) as c:
        assert (await c.post("/bucket", json={"id": "big"}, headers=h)).status_code == 200
        # warm up the code paths so the baseline includes imports, pools and buffers
        await c.post("/object/big/warm.bin", content=os.urandom(4 * BLOCK), headers=h)
        await c.get("/object/big/warm.bin", headers=h)
        baseline = psutil.Process(proc.proc.pid).memory_info().rss
        with RssSampler(proc.proc.pid) as up:
            started = time.perf_counter()
            r = await c.post("/object/big/huge.bin", content=body(),
                             headers={**h, "content-type": "application/octet-stream"})
            up_seconds = time.perf_counter() - started
        assert r.status_code == 200, r.text
        received = hashlib.sha256()
        size = 0
        with RssSampler(proc.proc.pid) as down:
            started = time.perf_counter()
            async with c.stream("GET", "/object/big/huge.bin", headers=h) as resp:
                assert resp.status_code == 200
                async for chunk in resp.aiter_raw():
                    received.update(chunk)
                    size += len(chunk)
            down_seconds = time.perf_counter() - started
    assert size == SIZE and received.hexdigest() == sent.hexdigest()
    growth_up = (up.peak - baseline) / 2**20
    growth_down = (down.peak - baseline) / 2**20
    print(f"\n{SIZE / 2**20:.0f} MB up {SIZE / 2**20 / up_seconds:.0f} MB/s (RSS +{growth_up:.1f} MB), "
          f"down {SIZE / 2**20 / down_seconds:.0f} MB/s (RSS +{growth_down:.1f} MB)")
    assert growth_up < 30 and growth_down < 30


@pytest.mark.slow
async def test_multipart_upload_streams(big_server: MadbaseProcess) -> None:
    proc = big_server
    assert proc.proc is not None
    h = proc.headers(key=proc.service_role_key)
    size = min(SIZE, 256 * 1024 * 1024)
    block = os.urandom(BLOCK)
    sent = hashlib.sha256()
    boundary = "----madbase-large-boundary"

    async def body() -> AsyncIterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n3600\r\n"
               f"--{boundary}\r\nContent-Disposition: form-data; name=\"\"; filename=\"blob\"\r\n"
               "Content-Type: application/octet-stream\r\n\r\n").encode()
        for i in range(size // BLOCK):
            chunk = i.to_bytes(8, "big") + block[8:]
            sent.update(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    async with httpx.AsyncClient(base_url=proc.url + "/storage/v1", timeout=600) as c:
        await c.post("/bucket", json={"id": "mp"}, headers=h)
        await c.post("/object/mp/warm.bin", files={"": ("w", os.urandom(4 * BLOCK), "application/octet-stream")},
                     headers=h)
        baseline = psutil.Process(proc.proc.pid).memory_info().rss
        with RssSampler(proc.proc.pid) as up:
            r = await c.post("/object/mp/multi.bin", content=body(),
                             headers={**h, "content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 200, r.text
        got = hashlib.sha256()
        async with c.stream("GET", "/object/mp/multi.bin", headers=h) as resp:
            async for chunk in resp.aiter_raw():
                got.update(chunk)
    assert got.hexdigest() == sent.hexdigest()
    growth = (up.peak - baseline) / 2**20
    print(f"\nmultipart {size / 2**20:.0f} MB up: RSS +{growth:.1f} MB")
    assert growth < 30


@pytest.mark.slow
async def test_tus_large_upload_streams(big_server: MadbaseProcess) -> None:
    import base64

    proc = big_server
    assert proc.proc is not None
    h = proc.headers(key=proc.service_role_key)
    size = min(SIZE, 256 * 1024 * 1024)
    part = 6 * 1024 * 1024  # what Supabase recommends for tus clients
    block = os.urandom(BLOCK)
    sent = hashlib.sha256()
    md = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                  {"bucketName": "tusbig", "objectName": "big.bin"}.items())

    def piece(offset: int, length: int) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            pos = offset
            while pos < offset + length:
                i, skip = divmod(pos, BLOCK)
                chunk = (i.to_bytes(8, "big") + block[8:])[skip:skip + offset + length - pos]
                sent.update(chunk)
                pos += len(chunk)
                yield chunk
        return gen()

    async with httpx.AsyncClient(base_url=proc.url + "/storage/v1", timeout=600) as c:
        await c.post("/bucket", json={"id": "tusbig"}, headers=h)
        r = await c.post("/upload/resumable", headers={**h, "Tus-Resumable": "1.0.0", "Upload-Length": str(size),
                                                       "Upload-Metadata": md})
        assert r.status_code == 201, r.text
        url = r.headers["location"]
        baseline = psutil.Process(proc.proc.pid).memory_info().rss
        with RssSampler(proc.proc.pid) as up:
            offset = 0
            while offset < size:
                length = min(part, size - offset)
                r = await c.patch(url, content=piece(offset, length), headers={
                    **h, "Tus-Resumable": "1.0.0", "Upload-Offset": str(offset), "Content-Length": str(length),
                    "Content-Type": "application/offset+octet-stream"})
                assert r.status_code == 204, r.text
                offset = int(r.headers["upload-offset"])
        got = hashlib.sha256()
        async with c.stream("GET", "/object/tusbig/big.bin", headers=h) as resp:
            async for chunk in resp.aiter_raw():
                got.update(chunk)
    assert got.hexdigest() == sent.hexdigest()
    growth = (up.peak - baseline) / 2**20
    print(f"\nTUS {size / 2**20:.0f} MB in 6 MB PATCHes: RSS +{growth:.1f} MB")
    assert growth < 30
