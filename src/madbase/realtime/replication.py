"""The replication consumer: psycopg2's LogicalReplicationConnection (pgoutput, proto 1) on the event loop.

`loop.add_reader` wakes us when the socket has data; `read_message()` is drained until it returns None and
the raw payloads are queued (the reader is removed while the queue is full: back-pressure reaches the
server instead of memory). One task decodes them in order, groups them into transactions and awaits the
`on_transaction` callback, which hands every change to every live subscriber's queue; only then is the
transaction's end LSN confirmed (`send_feedback(flush_lsn=…, force=True)`). When idle, the server's
keepalive `wal_end` is confirmed too, so unrelated write traffic does not pin WAL. A crash between the
hand-off and the confirmation means the transaction is sent again after restart — never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from madbase.realtime import pgoutput as p

if TYPE_CHECKING:
    import psycopg2.extensions
    import psycopg2.extras

log = structlog.get_logger("madbase.realtime")

_QUEUE_MAX = 20_000
_BATCH_CHANGES = 500  # hand off at most this many changes at once (one RLS call for all of them)
_STATUS_INTERVAL = 10.0


@dataclass(slots=True)
class Change:
    kind: str  # INSERT / UPDATE / DELETE / TRUNCATE
    relation: p.Relation
    new: tuple[p.Value, ...] | None = None
    old: tuple[p.Value, ...] | None = None
    old_key_only: bool = False  # the old tuple holds only the replica identity key (others are null)


@dataclass(slots=True)
class Transaction:
    xid: int
    commit_time: datetime
    end_lsn: int = 0
    changes: list[Change] = field(default_factory=list)
    commit_lsn: int = 0  # start of the commit record: confirming up to here makes the server resend it


OnTransactions = Callable[[list[Transaction]], Awaitable[None]]
OnRelation = Callable[[p.Relation], None]


class Consumer:
    def __init__(self, dsn: str, slot: str, publication: str, on_transactions: OnTransactions,
                 on_relation: OnRelation, limit: Callable[[int], int] | None = None) -> None:
        self.dsn = dsn
        self.slot = slot
        self.publication = publication
        self.on_transactions = on_transactions
        self.on_relation = on_relation
        self.limit = limit
        self.relations = p.RelationCache()
        self.confirmed_lsn = 0
        self.events_out = 0
        self._conn: psycopg2.extensions.connection | None = None
        self._cur: psycopg2.extras.ReplicationCursor | None = None
        self._raw: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._reading = False
        self._fd = -1  # the socket the reader watches, kept: a lost connection's fileno() raises
        self._error: BaseException | None = None

    def _connect(self) -> None:
        # Imported here: psycopg2 and its libpq add ≈ 5 MB to the server's RSS, needed only once a project
        # has postgres_changes subscriptions.
        import psycopg2
        import psycopg2.extras

        conn = psycopg2.connect(self.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection,
                                application_name="madbase_rt_consumer")
        cur = conn.cursor()
        cur.start_replication(slot_name=self.slot, decode=False,
                              options={"proto_version": "1", "publication_names": self.publication})
        self._conn, self._cur = conn, cur

    def _on_readable(self) -> None:
        cur = self._cur
        if cur is None:  # closed meanwhile: never leave a reader spinning on a dead (or reused) descriptor
            self._pause()
            return
        try:
            while len(self._raw) < _QUEUE_MAX:
                msg = cur.read_message()
                if msg is None:
                    break
                self._raw.append(msg.payload)
        except Exception as exc:  # connection lost: let the run loop raise it
            self._error = exc
        if len(self._raw) >= _QUEUE_MAX:
            self._pause()
        self._wake.set()

    def _pause(self) -> None:
        if self._reading:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._reading = False

    def _resume(self) -> None:
        if not self._reading and self._conn is not None:
            self._fd = self._conn.fileno()
            asyncio.get_running_loop().add_reader(self._fd, self._on_readable)
            self._reading = True
            self._on_readable()

    def _confirm(self, lsn: int) -> None:
        if self.limit is not None:
            lsn = self.limit(lsn)
        if self._cur is not None and lsn > self.confirmed_lsn:
            self._cur.send_feedback(flush_lsn=lsn, force=True)
            self.confirmed_lsn = lsn

    async def run(self) -> None:
        """Stream until cancelled or the connection fails (the caller reconnects)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._connect)
        txn: Transaction | None = None
        ready: list[Transaction] = []
        ready_changes = 0
        last_status = time.monotonic()
        try:
            self._resume()
            while True:
                if ready and (not self._raw or ready_changes >= _BATCH_CHANGES):
                    await self.on_transactions(ready)
                    self.events_out += ready_changes
                    self._confirm(ready[-1].end_lsn)
                    ready, ready_changes = [], 0
                if not self._raw:
                    if self._error is not None:
                        raise self._error
                    self._wake.clear()
                    if txn is None and not ready and self._cur is not None:
                        # Everything received is handed off: the keepalive position is safe to confirm.
                        self._confirm(self._cur.wal_end)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), _STATUS_INTERVAL)
                    if time.monotonic() - last_status >= _STATUS_INTERVAL and self._cur is not None:
                        self._cur.send_feedback()
                        last_status = time.monotonic()
                    continue
                payload = self._raw.popleft()
                if not self._reading and len(self._raw) < _QUEUE_MAX // 2:
                    self._resume()
                msg = p.decode(payload)
                if isinstance(msg, p.Begin):
                    txn = Transaction(msg.xid, msg.commit_time)
                elif isinstance(msg, p.Commit):
                    if txn is not None and txn.changes:
                        txn.end_lsn = msg.end_lsn
                        txn.commit_lsn = msg.commit_lsn
                        ready.append(txn)
                        ready_changes += len(txn.changes)
                    elif not ready:
                        self._confirm(msg.end_lsn)
                    txn = None
                elif isinstance(msg, p.Relation):
                    self.relations.feed(msg)
                    self.on_relation(msg)
                elif isinstance(msg, p.Type):
                    self.relations.feed(msg)
                elif txn is not None:
                    change = self._change(msg)
                    if change is not None:
                        txn.changes.append(change)
        finally:
            self.close()

    def _change(self, msg: p.Message) -> Change | None:
        if isinstance(msg, p.Insert):
            return Change("INSERT", self.relations.get(msg.relation_id), new=msg.new)
        if isinstance(msg, p.Update):
            return Change("UPDATE", self.relations.get(msg.relation_id), new=msg.new, old=msg.old,
                          old_key_only=msg.old_kind == "K")
        if isinstance(msg, p.Delete):
            return Change("DELETE", self.relations.get(msg.relation_id), old=msg.old, old_key_only=msg.old_kind == "K")
        if isinstance(msg, p.Truncate):
            return None  # Supabase Realtime does not deliver TRUNCATE to postgres_changes subscribers
        return None

    def close(self) -> None:
        # The reader goes first, by the descriptor it was added with: after a lost connection fileno() raises,
        # and a reader left behind would spin on the dead descriptor (a busy event loop) or a reused one.
        with contextlib.suppress(Exception):
            self._pause()
        self._reading = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            self._cur = None
