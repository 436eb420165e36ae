"""The project-database side of realtime bookkeeping, over one owner connection per project and process.

- Persisted subscriptions (`realtime.subscription`): written at join, removed at leave or when their grace
  window ends; after a crash the next server adopts the rows of dead nodes, so changes committed meanwhile
  are kept for the clients that come back.
- Node liveness: a node is alive while its control connection (application_name `madbase_rt:<node>`) is.
- The permanent pgoutput slot, the consumer advisory lock, and WAL lag of the slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from madbase.core import jsonutil

APP_PREFIX = "madbase_rt:"
PUBLICATION = "supabase_realtime"
_LOCK_KEY = 0x6D62_7274  # "mbrt": one replication consumer per database


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    id: str
    topic: str
    binding_id: int
    schema: str
    table: str | None
    event: str
    filter: str | None
    claims: dict[str, Any]
    role: str
    last_seen: datetime


def slot_name(database: str) -> str:
    """Slot names are cluster-wide; one permanent slot per project database."""
    return "madbase_rt_" + hashlib.sha1(database.encode()).hexdigest()[:16]


class Store:
    def __init__(self, dsn: str, node: str) -> None:
        self.dsn = dsn
        self.node = node
        self.conn: asyncpg.Connection | None = None
        self.slot = ""
        self.has_lock = False
        # One asyncpg connection allows one operation at a time.
        self.lock = asyncio.Lock()

    async def connect(self) -> None:
        self.conn = await asyncpg.connect(self.dsn, timeout=10,
                                          server_settings={"application_name": APP_PREFIX + self.node})
        database = await self.conn.fetchval("select current_database()")
        self.slot = slot_name(str(database))

    @property
    def c(self) -> asyncpg.Connection:
        assert self.conn is not None
        return self.conn

    async def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            await self.conn.close()

    async def ensure_slot(self) -> None:
        async with self.lock:
            exists = await self.c.fetchval("select 1 from pg_replication_slots where slot_name = $1", self.slot)
            if not exists:
                try:
                    await self.c.execute("select pg_create_logical_replication_slot($1, 'pgoutput')", self.slot)
                except asyncpg.DuplicateObjectError:
                    pass

    async def try_lock(self) -> bool:
        async with self.lock:
            if not self.has_lock:
                self.has_lock = bool(await self.c.fetchval("select pg_try_advisory_lock($1::bigint)", _LOCK_KEY))
            return self.has_lock

    async def insert(self, rows: list[tuple[str, str, int, str, str | None, str, str | None, str, str]]) -> None:
        """rows: (id, topic, binding_id, schema, table, event, filter, claims_json, role)."""
        async with self.lock:
            if rows:
                await self.c.executemany(
                    "insert into realtime.subscription (id, node, topic, binding_id, schema_name, table_name, event, "
                    "filter, claims, claims_role) values ($1::uuid, $10, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
                    [(*r, self.node) for r in rows])

    async def delete(self, ids: list[str]) -> None:
        async with self.lock:
            if ids:
                await self.c.execute("delete from realtime.subscription where id = any($1::uuid[])", ids)

    async def update_claims(self, ids: list[str], claims_json: str, role: str) -> None:
        async with self.lock:
            if ids:
                await self.c.execute("update realtime.subscription set claims = $2::jsonb, claims_role = $3 "
                                     "where id = any($1::uuid[])", ids, claims_json, role)

    async def heartbeat(self) -> None:
        async with self.lock:
            await self.c.execute("update realtime.subscription set last_seen = now() where node = $1", self.node)

    async def adopt_orphans(self, max_age_seconds: float) -> list[StoredSubscription]:
        """Rows of nodes that are gone: drop those older than the grace window, adopt and return the rest."""
        async with self.lock:
            await self.c.execute(
                "delete from realtime.subscription s where s.last_seen < now() - make_interval(secs => $1) "
                "and not exists (select 1 from pg_stat_activity a where a.application_name = $2 || s.node)",
                max_age_seconds, APP_PREFIX)
            rows = await self.c.fetch(
                "update realtime.subscription s set node = $1 where s.node <> $1 "
                "and not exists (select 1 from pg_stat_activity a where a.application_name = $2 || s.node) "
                "returning s.id::text, s.topic, s.binding_id, s.schema_name, s.table_name, s.event, s.filter, "
                "s.claims::text, s.claims_role, s.last_seen", self.node, APP_PREFIX)
            out = [StoredSubscription(r["id"], r["topic"], int(r["binding_id"]), r["schema_name"], r["table_name"],
                                      r["event"], r["filter"], jsonutil.loads(r["claims"]), r["claims_role"],
                                      r["last_seen"]) for r in rows]
            out.sort(key=lambda s: s.last_seen)
            return out

    async def purge_messages(self) -> None:
        """realtime.messages rows matter only in the WAL; keep a day of them for inspection."""
        async with self.lock:
            await self.c.execute("delete from realtime.messages where inserted_at < now() - interval '1 day'")

    async def lag_bytes(self) -> tuple[int | None, str | None]:
        async with self.lock:
            row = await self.c.fetchrow(
                "select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint as lag, wal_status "
                "from pg_replication_slots where slot_name = $1", self.slot)
            if row is None:
                return None, None
            return (int(row["lag"]) if row["lag"] is not None else None), row["wal_status"]


def new_id() -> str:
    return str(uuid.uuid4())
