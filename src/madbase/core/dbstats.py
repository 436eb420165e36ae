"""Database facts for the alerts that PostgreSQL alone knows, sampled in the background and served at scrape.

`madbase_db_replication_slot_lag_bytes{project,slot}` and `madbase_db_replication_slot_active{project,slot}`
come from `pg_replication_slots` (MadBase's realtime slots, `madbase_rt_*`): a slot nobody consumes retains
WAL until the disk fills, which the realtime consumer's own lag gauge cannot show once the consumer is gone.
`madbase_mail_outbox_failing{project}` and `madbase_mail_outbox_oldest_failing_seconds{project}` count the auth
mails whose sending has failed at least once and that are still pending (auth's durable outbox).

A scrape must not wait on a database, so a task refreshes the figures every `interval` seconds (one short
query per project whose pool this process has opened, over the project's own admin connection) and the
collector serves the last sample.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import asyncpg
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = structlog.get_logger("madbase.dbstats")

_SLOTS = """
select slot_name, active, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::float8 as lag
from pg_replication_slots where slot_name like 'madbase\\_rt\\_%' and database = current_database()
"""
_OUTBOX = """
select count(*)::int as failing, coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as oldest
from auth.madbase_mail_outbox where sent_at is null and attempts > 0
"""


class DbStats(Collector):
    """Samples each open project's database; `dsn_of(ref)` gives the project's admin DSN (None: skip it)."""

    def __init__(self, refs: Callable[[], list[str]], dsn_of: Callable[[str], str | None],
                 interval: float = 15.0) -> None:
        self._refs = refs
        self._dsn_of = dsn_of
        self._interval = interval
        self._slots: dict[str, list[tuple[str, bool, float]]] = {}
        self._outbox: dict[str, tuple[int, float]] = {}
        self._conns: dict[str, asyncpg.Connection] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dbstats")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
        self._conns.clear()

    async def _run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self._interval)

    async def sample(self) -> None:
        refs = set(self._refs())
        for ref in list(self._conns):
            if ref not in refs:
                with contextlib.suppress(Exception):
                    await self._conns.pop(ref).close()
                self._slots.pop(ref, None)
                self._outbox.pop(ref, None)
        for ref in sorted(refs):
            try:
                await asyncio.wait_for(self._sample_one(ref), 10)
            except Exception as exc:  # a database that is down: keep the last figures, try again next time
                log.debug("dbstats_sample_failed", project_ref=ref, error=str(exc))
                conn = self._conns.pop(ref, None)
                if conn is not None:
                    conn.terminate()

    async def _sample_one(self, ref: str) -> None:
        conn = self._conns.get(ref)
        if conn is None or conn.is_closed():
            dsn = self._dsn_of(ref)
            if dsn is None:
                return
            conn = await asyncpg.connect(dsn, timeout=5, server_settings={"application_name": "madbase/dbstats"})
            self._conns[ref] = conn
        rows = await conn.fetch(_SLOTS)
        self._slots[ref] = [(r["slot_name"], bool(r["active"]), float(r["lag"])) for r in rows]
        try:
            row = await conn.fetchrow(_OUTBOX)
        except asyncpg.UndefinedTableError:  # a database auth has not prepared yet
            self._outbox[ref] = (0, 0.0)
        else:
            assert row is not None
            self._outbox[ref] = (int(row["failing"]), float(row["oldest"]))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        lag = GaugeMetricFamily("madbase_db_replication_slot_lag_bytes",
                                "WAL retained by a MadBase replication slot (pg_replication_slots)",
                                labels=["project", "slot"])
        active = GaugeMetricFamily("madbase_db_replication_slot_active",
                                   "1 while a consumer reads the MadBase replication slot", labels=["project", "slot"])
        failing = GaugeMetricFamily("madbase_mail_outbox_failing", "Auth mails pending after a failed send",
                                    labels=["project"])
        oldest = GaugeMetricFamily("madbase_mail_outbox_oldest_failing_seconds",
                                   "Age of the oldest auth mail pending after a failed send", labels=["project"])
        for ref, slots in list(self._slots.items()):
            for name, is_active, retained in slots:
                lag.add_metric([ref, name], retained)
                active.add_metric([ref, name], 1.0 if is_active else 0.0)
        for ref, (count, age) in list(self._outbox.items()):
            failing.add_metric([ref], count)
            oldest.add_metric([ref], age)
        yield from (lag, active, failing, oldest)
