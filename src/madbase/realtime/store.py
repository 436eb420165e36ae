"""The project-database side of realtime bookkeeping, over one owner connection per project and process.

- Persisted subscriptions (`realtime.subscription`): written at join, removed at leave or when their grace
  window ends; after a crash the next server adopts the rows of dead nodes, so changes committed meanwhile
  are kept for the clients that come back. A row records how far it was served (`position`) once its
  socket is gone, so a replay skips what the client already had; with several processes any process may
  claim such a row (or one of a dead node) when its client re-joins.
- Node positions (`realtime.node_position`): how far a process served its live subscribers while a ghost
  held the slot back (single process).
- Node liveness: a node is alive while its control connection (application_name `madbase_rt:<node>`) is.
- The permanent pgoutput slot, the consumer advisory lock, and WAL lag of the slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

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
    position: int | None = None  # served up to this LSN (changes committed before it are not sent again)


class NewSubscription(NamedTuple):
    """A subscription to persist at join."""

    id: str
    topic: str
    binding_id: int
    schema: str
    table: str | None
    event: str
    filter: str | None
    claims_json: str
    role: str


class Claimed(NamedTuple):
    """A row a re-join took over: the row, the node that owned it, how far it was served (None: that
    node died with its socket open, its stored cursor stands for it)."""

    row: StoredSubscription
    node: str
    position: int | None


class StoredMessage(NamedTuple):
    """A private broadcast kept in realtime.messages (for `replay`)."""

    id: int
    event: str
    payload: str | None  # JSON text


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

    async def insert(self, rows: list[NewSubscription]) -> None:
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
            await self.c.execute("update realtime.subscription set last_seen = now() "
                                 "where node = $1 and detached_at is null", self.node)

    async def detach(self, ids: list[str], position: int) -> None:
        """Multi-process: the socket went away; the rows keep how far they were served for a re-join anywhere."""
        async with self.lock:
            if ids:
                await self.c.execute("update realtime.subscription set position = $2, detached_at = now() "
                                     "where id = any($1::uuid[])", ids, position)

    async def claim(self, topic: str, role: str, sub_claim: str, binding_ids: list[int], exclude: list[str]
                    ) -> list[Claimed]:
        """Multi-process re-join: take (delete) at most one row per binding with the same topic and identity
        that is detached or belongs to a dead node."""
        async with self.lock:
            rows = await self.c.fetch(
                "with c as (select s.id, s.binding_id, coalesce(s.detached_at, s.last_seen) as at "
                "  from realtime.subscription s where s.topic = $1 and s.claims_role = $2 "
                "  and coalesce(s.claims->>'sub', '') = $3 and s.binding_id = any($4::bigint[]) "
                "  and s.id <> all($5::uuid[]) and (s.detached_at is not null or not exists "
                "    (select 1 from pg_stat_activity a where a.application_name = $6 || s.node)) "
                "  for update skip locked), "
                "pick as (select distinct on (binding_id) id from c order by binding_id, at) "
                "delete from realtime.subscription s using pick where s.id = pick.id "
                "returning s.id::text, s.topic, s.binding_id, s.schema_name, s.table_name, s.event, s.filter, "
                "s.claims::text, s.claims_role, s.last_seen, s.node, s.position",
                topic, role, sub_claim, binding_ids, exclude, APP_PREFIX)
            return [Claimed(_stored(r), str(r["node"]), None if r["position"] is None else int(r["position"]))
                    for r in rows]

    async def purge_detached(self, grace_seconds: float, heartbeat_seconds: float) -> None:
        """Multi-process: rows nobody re-joined within the grace window (detached, or of a dead node)."""
        async with self.lock:
            await self.c.execute(
                "delete from realtime.subscription s where (s.detached_at is not null "
                "and s.detached_at < now() - make_interval(secs => $1)) or (s.detached_at is null "
                "and s.last_seen < now() - make_interval(secs => $1 + $2) and not exists "
                "(select 1 from pg_stat_activity a where a.application_name = $3 || s.node))",
                grace_seconds, heartbeat_seconds, APP_PREFIX)

    async def adopt_orphans(self, max_age_seconds: float) -> list[StoredSubscription]:
        """Rows of nodes that are gone: drop those older than the grace window, adopt and return the rest."""
        async with self.lock:
            await self.c.execute(
                "delete from realtime.subscription s where s.last_seen < now() - make_interval(secs => $1) "
                "and not exists (select 1 from pg_stat_activity a where a.application_name = $2 || s.node)",
                max_age_seconds, APP_PREFIX)
            await self.c.execute("delete from realtime.node_position where updated_at < now() - interval '1 day'")
            # A row live when its node died was served up to that node's recorded position (if any).
            rows = await self.c.fetch(
                "update realtime.subscription s set node = $1, position = coalesce(s.position, "
                "(select np.position from realtime.node_position np where np.node = s.node)) where s.node <> $1 "
                "and not exists (select 1 from pg_stat_activity a where a.application_name = $2 || s.node) "
                "returning s.id::text, s.topic, s.binding_id, s.schema_name, s.table_name, s.event, s.filter, "
                "s.claims::text, s.claims_role, s.last_seen, s.position", self.node, APP_PREFIX)
            out = [_stored(r) for r in rows]
            out.sort(key=lambda s: s.last_seen)
            return out

    async def save_position(self, position: int) -> None:
        async with self.lock:
            await self.c.execute(
                "insert into realtime.node_position (node, position) values ($1, $2) on conflict (node) "
                "do update set position = excluded.position, updated_at = now()", self.node, position)

    async def replay(self, topic: str, since_ms: int, limit: int) -> list[StoredMessage]:
        """Broadcast `replay`: the last `limit` (1..25, as Supabase) private broadcasts of a topic inserted
        since `since_ms`, oldest first."""
        async with self.lock:
            rows = await self.c.fetch(
                "select id, event, payload::text as payload from realtime.messages where topic = $1 and private "
                "and extension = 'broadcast' and inserted_at >= to_timestamp($2::float8 / 1000) "
                "order by inserted_at desc, id desc limit $3", topic, since_ms, max(1, min(limit, 25)))
        return [StoredMessage(int(r["id"]), str(r["event"] or ""), r["payload"]) for r in reversed(rows)]

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


def _stored(r: asyncpg.Record) -> StoredSubscription:
    return StoredSubscription(r["id"], r["topic"], int(r["binding_id"]), r["schema_name"], r["table_name"],
                              r["event"], r["filter"], jsonutil.loads(r["claims"]), r["claims_role"], r["last_seen"],
                              None if r["position"] is None else int(r["position"]))


def new_id() -> str:
    return str(uuid.uuid4())
