"""Versioned SQL migrations: record what ran, apply the rest in order, safe when servers start together.

Two servers starting at once both call `apply`; a session advisory lock per track serialises them, so the
second one finds everything recorded and applies nothing. Each file runs in its own transaction together
with its record, so a failure leaves neither a half-applied file nor a false record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

from madbase.core.types import DbConn

log = structlog.get_logger("madbase.migrations")

_BOOKKEEPING = """
create schema if not exists madbase_migrations;
create table if not exists madbase_migrations.applied (
  track      text not null,
  version    text not null,
  name       text not null,
  checksum   text not null,
  applied_at timestamptz not null default now(),
  primary key (track, version)
);
"""


class MigrationError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    track: str
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(track: str) -> list[Migration]:
    folder = resources.files("madbase.migrations").joinpath(track)
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version, _, rest = entry.name.partition("_")
        found.append(Migration(track, version, rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in track {track!r}")
    return found


def _lock_key(track: str) -> int:
    return int.from_bytes(hashlib.sha256(f"madbase:migrations:{track}".encode()).digest()[:8], "big", signed=True)


async def apply(conn: DbConn, track: str, migrations: list[Migration] | None = None) -> list[str]:
    """Apply the track's pending migrations on `conn`; returns the versions applied now."""
    todo = load(track) if migrations is None else migrations
    key = _lock_key(track)
    await conn.execute("select pg_advisory_lock($1)", key)
    try:
        await conn.execute(_BOOKKEEPING)
        rows = await conn.fetch("select version, checksum from madbase_migrations.applied where track = $1", track)
        done = {r["version"]: r["checksum"] for r in rows}
        applied: list[str] = []
        for migration in todo:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    log.warning("migration_changed_after_apply", track=track, version=migration.version)
                continue
            async with conn.transaction():
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        f"migration {track}/{migration.version}_{migration.name} failed: {exc}"
                    ) from exc
                await conn.execute(
                    "insert into madbase_migrations.applied (track, version, name, checksum) values ($1, $2, $3, $4)",
                    track, migration.version, migration.name, migration.checksum,
                )
            applied.append(migration.version)
            log.info("migration_applied", track=track, version=migration.version, name=migration.name)
        return applied
    finally:
        await conn.execute("select pg_advisory_unlock($1)", key)
