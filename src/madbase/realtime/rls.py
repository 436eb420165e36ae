"""Who may see a change: table facts (PK, RLS flag), per-role visible columns, and the batched RLS check.

Supabase's walrus decides visibility by selecting the changed row by primary key under each subscriber's
role and claims. MadBase does the same, but for all (row, role+claims) pairs of a batch of changes in ONE
database call (`realtime.madbase_visible_sets`, migrations 3004, 3006, 3007), and only for INSERT/UPDATE — DELETE cannot
be checked (the row is gone), so, as on Supabase, it reaches every matching subscriber with only the primary
key when the table has RLS enabled. Checks run on a dedicated connection with the project's owner DSN.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import asyncpg

from madbase.core import jsonutil

# GRANT/REVOKE and ENABLE ROW LEVEL SECURITY reach this process as a new Relation message only when it runs the
# replication consumer; other processes (and a missed invalidation) re-read the facts after this many seconds.
_FACTS_TTL = 5.0


@dataclass(frozen=True, slots=True)
class TableInfo:
    rls_enabled: bool
    pk: tuple[str, ...]


class RowCheck(NamedTuple):
    """One (row, subscriber group) pair of a batch: may group `group` (1-based) select the row of table
    `relation_id` whose primary key has the text values `values` (in key order; the database knows the key)?"""

    group: int
    relation_id: int
    values: list[str | None]


class Visibility:
    """Cached table facts and role column privileges, and the batched RLS check.

    Uses one dedicated connection with the project's owner DSN: the owner runs
    `realtime.madbase_visible_sets` (not executable by API roles) as a single statement — its
    transaction-local role/claims switches end with that statement — so a batch costs one round trip.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._tables: dict[int, tuple[float, TableInfo]] = {}
        self._columns: dict[tuple[int, str], tuple[float, frozenset[str]]] = {}

    async def _c(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=10,
                                               server_settings={"application_name": "madbase_rt_rls"})
        return self._conn

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    def invalidate(self, relation_id: int) -> None:
        self._tables.pop(relation_id, None)
        for key in [k for k in self._columns if k[0] == relation_id]:
            del self._columns[key]

    async def table(self, relation_id: int) -> TableInfo:
        cached = self._tables.get(relation_id)
        if cached is not None and time.monotonic() - cached[0] < _FACTS_TTL:
            return cached[1]
        async with self._lock:
            conn = await self._c()
            row = await conn.fetchrow(
                "select c.relrowsecurity, coalesce((select array_agg(a.attname order by k.ord) "
                "  from pg_index i cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord) "
                "  join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum "
                "  where i.indrelid = c.oid and i.indisprimary), '{}') as pk "
                "from pg_class c where c.oid = $1::oid", relation_id)
        info = TableInfo(bool(row["relrowsecurity"]), tuple(row["pk"])) if row else TableInfo(False, ())
        self._tables[relation_id] = (time.monotonic(), info)
        return info

    async def columns(self, relation_id: int, role: str) -> frozenset[str]:
        key = (relation_id, role)
        cached = self._columns.get(key)
        if cached is not None and time.monotonic() - cached[0] < _FACTS_TTL:
            return cached[1]
        async with self._lock:
            conn = await self._c()
            rows = await conn.fetch(
                "select attname from pg_attribute where attrelid = $1::oid and attnum > 0 "
                "and not attisdropped and has_column_privilege($2::text, attrelid, attnum, 'SELECT')",
                relation_id, role)
        cols = frozenset(r["attname"] for r in rows)
        self._columns[key] = (time.monotonic(), cols)
        return cols

    async def check_batch(self, checks: Sequence[RowCheck], roles: Sequence[str],
                          claims: Sequence[str], xids: Sequence[int] = ()) -> list[bool]:
        """One answer per check, in order; `roles`/`claims`: those of group g at index g - 1.

        `xids`: the transactions of the checked changes; the database waits until they are visible (a change
        can arrive before its commit is, see migration 3007) before looking the rows up."""
        if not checks:
            return []
        order = sorted(range(len(checks)), key=lambda i: (checks[i].group, checks[i].relation_id))
        pos = [i + 1 for i in order]
        grp = [checks[i].group for i in order]
        ent = [checks[i].relation_id for i in order]
        keyv = [jsonutil.dumps_str(checks[i].values) for i in order]
        async with self._lock:
            conn = await self._c()
            result = await conn.fetchval(
                "select realtime.madbase_visible_sets($1::int[], $2::int[], $3::oid[], $4::text[], $5::text[], "
                "$6::text[], $7::bigint[])", pos, grp, ent, keyv, list(roles), list(claims), list(xids))
        return [bool(x) for x in (result or [])]


@dataclass(frozen=True, slots=True)
class TopicRights:
    """What a caller may do on a private topic, per extension, as Supabase's broadcast/presence policies."""

    broadcast_read: bool = True
    broadcast_write: bool = True
    presence_read: bool = True
    presence_write: bool = True

    @property
    def may_join(self) -> bool:
        return self.broadcast_read or self.presence_read


PUBLIC_RIGHTS = TopicRights()


async def topic_rights(pool: asyncpg.Pool, topic: str, role: str, claims_json: str) -> TopicRights:
    """The four policy checks of a private topic (each its own rolled-back probe)."""
    return TopicRights(*[await may_access_topic(pool, topic, ext, role, claims_json, write=write)
                         for ext, write in (("broadcast", False), ("broadcast", True),
                                            ("presence", False), ("presence", True))])


async def may_access_topic(pool: asyncpg.Pool, topic: str, extension: str, role: str, claims_json: str,
                           *, write: bool) -> bool:
    """Private channels: RLS on realtime.messages decides, with realtime.topic() = the channel name.

    Read: a probe row is inserted (as supabase_realtime_admin), then selected under the caller's role and
    claims; write: the caller inserts a row itself. Both run in a transaction that is always rolled back.
    """
    conn = await pool.acquire()
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("select set_config('role', 'supabase_realtime_admin', true), "
                               "set_config('realtime.topic', $1, true)", topic)
            if not write:
                await conn.execute("select realtime.madbase_probe($1, $2)", topic, extension)
            await conn.execute(
                "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true), "
                "set_config('request.jwt.claim.sub', coalesce($2::jsonb ->> 'sub', ''), true), "
                "set_config('request.jwt.claim.role', coalesce($2::jsonb ->> 'role', ''), true)", role, claims_json)
            if write:
                try:
                    await conn.execute("insert into realtime.messages (topic, extension, private) "
                                       "values ($1, $2, true)", topic, extension)
                    return True
                except (asyncpg.InsufficientPrivilegeError, asyncpg.exceptions.CheckViolationError):
                    return False
            return bool(await conn.fetchval(
                "select exists(select 1 from realtime.messages where topic = $1 and extension = $2)", topic, extension))
        except asyncpg.InsufficientPrivilegeError:
            return False
        finally:
            await tx.rollback()
    finally:
        await pool.release(conn)
