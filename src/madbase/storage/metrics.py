"""Storage's Prometheus series, registered on the server's registry (served at `/metrics`):
bytes stored and served per project, objects swept."""

from __future__ import annotations

from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry, Counter


class StorageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.uploaded = Counter("madbase_storage_uploaded_bytes", "Object bytes stored", ["project"],
                                registry=registry)
        self.downloaded = Counter("madbase_storage_downloaded_bytes", "Object bytes served", ["project"],
                                  registry=registry)
        self.swept = Counter("madbase_storage_swept_keys", "Unreferenced byte keys removed", ["project"],
                             registry=registry)

    def count_download(self, project: str, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        counter = self.downloaded.labels(project)

        async def counted() -> AsyncIterator[bytes]:
            async for chunk in stream:
                counter.inc(len(chunk))
                yield chunk

        return counted()
