"""Removes bytes no metadata row points at: partial writes left by crashes or dropped connections, and
versions whose row was replaced or deleted by a process that died before deleting them.

Only keys older than the project's grace period (`sweep_grace_seconds`, default one hour) are touched, so
uploads in flight (not yet committed) are never removed.
"""

from __future__ import annotations

import time

import asyncpg
import structlog

from madbase.storage import repo
from madbase.storage.actor import Actor, transaction
from madbase.storage.backends.base import Backend, StoredKey, delete_quietly, version_of

log = structlog.get_logger("madbase.storage")
BATCH = 500


async def sweep(pool: asyncpg.Pool, backend: Backend, grace: float) -> int:
    cutoff = time.time() - grace
    removed = await backend.sweep_temporary(cutoff)
    batch: list[StoredKey] = []
    async for item in backend.list_keys("objects/"):
        if item.modified < cutoff and version_of(item.key):
            batch.append(item)
            if len(batch) >= BATCH:
                removed += await _sweep_batch(pool, backend, batch)
                batch = []
    if batch:
        removed += await _sweep_batch(pool, backend, batch)
    return removed


async def _sweep_batch(pool: asyncpg.Pool, backend: Backend, batch: list[StoredKey]) -> int:
    versions = [v for v in (version_of(i.key) for i in batch) if v]
    async with transaction(pool, Actor.storage(), readonly=True) as conn:
        alive = await repo.referenced_versions(conn, versions)
    dead = [i.key for i in batch if version_of(i.key) not in alive]
    if dead:
        await delete_quietly(backend, dead)
        log.info("storage_swept", count=len(dead))
    return len(dead)
