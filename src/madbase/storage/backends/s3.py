"""The S3-compatible backend (AWS S3, MinIO, R2, moto …) through obstore.

obstore (Rust `object_store` bindings) was chosen over aiobotocore: one self-contained wheel with no
Python dependencies, native asyncio, typed, and multipart upload of a stream built in (an upload becomes
visible only when the multipart upload completes; a failed stream aborts it). Part size 5 MB with two
parts in flight keeps memory per upload around 10-15 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from madbase.storage.backends.base import CHUNK, Digest, KeyNotFound, StoredKey

PART_SIZE = 5 * 1024 * 1024


class S3Backend:
    name = "s3"

    def __init__(self, options: dict[str, Any]) -> None:
        bucket = options.get("bucket")
        if not isinstance(bucket, str) or not bucket:
            raise ValueError("storage.s3.bucket is required")
        config: dict[str, Any] = {}
        for key in ("endpoint", "region", "access_key_id", "secret_access_key", "session_token"):
            if options.get(key):
                config[key] = str(options[key])
        config.setdefault("region", "us-east-1")
        config["virtual_hosted_style_request"] = bool(options.get("virtual_hosted_style", False))
        client: dict[str, Any] = {}
        endpoint = str(options.get("endpoint", ""))
        if options.get("allow_http", endpoint.startswith("http://")):
            client["allow_http"] = True
        prefix = str(options.get("prefix", "")).strip("/") or None
        self.store = S3Store(bucket, prefix=prefix, config=config, client_options=client)  # type: ignore[arg-type]

    async def put(self, key: str, chunks: AsyncIterable[bytes], digest: Digest | None = None) -> int:
        total = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal total
            async for chunk in chunks:
                total += len(chunk)
                if digest is not None:
                    digest.update(chunk)
                yield chunk

        await obstore.put_async(self.store, key, counted(), use_multipart=True, chunk_size=PART_SIZE,
                                max_concurrency=2)
        return total

    async def put_file(self, key: str, path: Path) -> None:
        await obstore.put_async(self.store, key, path, use_multipart=True, chunk_size=PART_SIZE,
                                max_concurrency=2)
        path.unlink()  # noqa: ASYNC240

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            if end is None and start == 0:
                result = await obstore.get_async(self.store, key)
            else:
                stop = end + 1 if end is not None else (await obstore.head_async(self.store, key))["size"]
                result = await obstore.get_async(self.store, key, options={"range": (start, stop)})
        except (NotFoundError, FileNotFoundError):
            raise KeyNotFound(key) from None
        stream = result.stream(min_chunk_size=CHUNK)

        async def gen() -> AsyncIterator[bytes]:
            async for chunk in stream:
                yield bytes(chunk)

        return gen()

    async def copy(self, src: str, dst: str) -> None:
        try:
            await obstore.copy_async(self.store, src, dst)
        except (NotFoundError, FileNotFoundError):
            raise KeyNotFound(src) from None

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            with contextlib.suppress(NotFoundError, FileNotFoundError):
                await obstore.delete_async(self.store, key)

    async def list_keys(self, prefix: str) -> AsyncIterator[StoredKey]:
        async for batch in obstore.list(self.store, prefix):
            for meta in batch:
                yield StoredKey(str(meta["path"]), meta["last_modified"].timestamp())

    async def sweep_temporary(self, older_than: float) -> int:
        # Incomplete multipart uploads are aborted by obstore on failure; after a crash the bucket's
        # lifecycle rule (AbortIncompleteMultipartUpload) removes them.
        return 0

    async def close(self) -> None:
        await asyncio.sleep(0)
