"""One project's realtime state in this process: channels by topic, presence, postgres_changes subscriptions.

A `Subscription` is one postgres_changes binding of one joined channel. When its socket goes away without
leaving (network loss, a slow consumer cut off, a server crash seen from the next server) it becomes a
*ghost* for the grace window: it keeps collecting its changes (bounded), and a client re-joining the same
topic with the same binding and identity adopts it and gets the collected changes first, in commit order.

Single process: the replication consumer calls `deliver_transactions` directly, and ghosts live in memory.
With Redis (several processes) the consumer appends to the project's transaction log instead; every process
reads the log from its cursor (`_log_loop`), a vanished subscription is only a row with a position, and a
re-join on any process replays the log for it (`attach`). Either way, visibility is decided per change with
one database call for all (role, claims) groups (`rls.Visibility.check_batch`), and payloads carry only the
columns each role may select.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
import orjson
import structlog

from madbase.core import jsonutil
from madbase.realtime import protocol as pr
from madbase.realtime.authz import deliverable
from madbase.realtime.config import RealtimeSettings
from madbase.realtime.filters import Filter
from madbase.realtime.limits import Limits, RateWindow, limits_for
from madbase.realtime.payload import commit_ts_text, filter_value, record_json, typed_row
from madbase.realtime.pgoutput import Relation
from madbase.realtime.presence import PresenceMixin
from madbase.realtime.replication import Change, Consumer, Transaction
from madbase.realtime.rls import PUBLIC_RIGHTS, TableInfo, TopicRights, Visibility
from madbase.realtime.store import PUBLICATION, Store, StoredSubscription
from madbase.realtime.values import BUILTIN_TYPE_NAMES, comparable

if TYPE_CHECKING:
    from madbase.core.projects import Project
    from madbase.core.runtime import Runtime
    from madbase.realtime.fanout import Fanout

log = structlog.get_logger("madbase.realtime")


class Outlet(Protocol):
    """The socket side of a channel: queue one message (may disconnect a slow socket)."""

    def send(self, msg: pr.Message) -> None: ...


@dataclass(eq=False, slots=True)
class Channel:
    outlet: Outlet
    topic: str
    join_ref: str | None
    config: pr.JoinConfig
    role: str
    claims: dict[str, Any]
    claims_json: str
    presence_key: str
    subs: list[Subscription] = field(default_factory=list)
    presence_ref: str | None = None
    rights: TopicRights = PUBLIC_RIGHTS  # private channels: what the realtime.messages policies allow
    replayed: frozenset[int] = frozenset()  # realtime.messages ids sent by `replay`: not sent again live
    paused: bool = False  # the access token switched to another identity, not yet re-authorized: send nothing

    @property
    def room(self) -> str:
        return pr.room_of(self.topic, self.config.private)

    def push(self, msg: pr.Message) -> None:
        if not self.paused:
            self.outlet.send(msg)


@dataclass(eq=False, slots=True)
class Subscription:
    id: str
    topic: str
    binding: pr.PgBinding
    filter: Filter | None
    role: str
    claims_json: str
    sub_claim: str
    channel: Channel | None
    # Filled only while the subscription is a ghost; a list, not a deque: an empty deque costs ~600 bytes
    # (one block of 64 slots) for each of thousands of idle subscriptions.
    buffer: list[bytes] = field(default_factory=list)
    floor_lsn: int = 0  # commit LSN of the oldest buffered change (the slot is not confirmed past it)
    expires: float = 0.0
    overflowed: bool = False
    adopted_by: Subscription | None = None
    skip_before: int = 0  # adopted after a crash: changes committed before this LSN were already delivered

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.topic, self.binding.id, self.role, self.sub_claim)

    def wants(self, kind: str) -> bool:
        return self.binding.event in ("*", kind)


_GAP_MESSAGE = "Some changes may have been missed: the cross-server change log has a gap"
_MISSED_MESSAGE = "Some changes were dropped while disconnected"
_Work = tuple[Change, str, int, list["Subscription"], TableInfo, dict[tuple[str, str], int]]
_Item = tuple["Subscription", bytes, str]  # subscriber, payload, the claims it was checked with
_Prepared = list[tuple[Change, int, list["Subscription"], list[_Item]]]


class ProjectHub(PresenceMixin):
    def __init__(self, runtime: Runtime, project: Project, settings: RealtimeSettings, node: str,
                 fanout: Fanout | None = None) -> None:
        self.runtime = runtime
        self.project = project
        self.settings = settings
        self.node = node
        self.topics: dict[str, set[Channel]] = {}
        self.presence: dict[str, dict[str, dict[str, tuple[Channel | None, dict[str, Any]]]]] = {}
        self.by_table: dict[tuple[str, str | None], set[Subscription]] = {}
        self.ghosts: dict[tuple[str, int, str, str], deque[Subscription]] = {}
        self.visibility = Visibility(project.record.db_url)
        self.store = Store(project.record.db_url, node)
        self.pg_error: str | None = None
        self.lag_bytes: int | None = None
        self.lagging = False
        self.delivered = 0
        self.consumer: Consumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: asyncio.Future[None] | None = None
        self._type_names: dict[int, str] = dict(BUILTIN_TYPE_NAMES)
        self._pool: asyncpg.Pool | None = None
        self.fanout = fanout
        self.started = False
        self._start_failed = 0.0
        # Stream mode (Redis): LSN of the last log entry handed to this process's subscribers; the log loop
        # and re-joins that replay the log take `delivery_lock`, so a replay ends exactly where live delivery
        # resumes.
        self.cursor = 0
        # Single process: end LSN of the last batch handed to the queues (a detached subscription's position).
        self.handed_lsn = 0
        self.delivery_lock = asyncio.Lock()
        self.log_gaps = 0
        # Per-second counters of this project's client messages and joins (limits.py).
        self.events_rate = RateWindow()
        self.joins_rate = RateWindow()
        self._relations: dict[int, Relation] = {}
        # (schema, table) → (relation, {column: {typed value: subs}}, other subs): `col=eq.v` subscriptions
        # are looked up by the row's value instead of being tested one by one.
        self._eq_cache: dict[tuple[str, str | None], tuple[Relation, dict[str, dict[Any, list[Subscription]]],
                                                           list[Subscription]]] = {}
        # phx_ref → node, for presence entries tracked on other processes
        self.remote_presence: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------------------
    async def ready(self) -> None:
        if self._ready is not None and self._start_failed and time.monotonic() - self._start_failed > 5.0:
            self._ready = None  # the database was unreachable: try again (at most every 5 s)
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            try:
                await self._start()
                self._start_failed = 0.0
            except Exception as exc:
                log.error("realtime_start_failed", project_ref=self.project.ref, error=str(exc))
                self.pg_error = "Unable to connect to the project database"
                self._start_failed = time.monotonic()
                for task in self._tasks:
                    task.cancel()
                self._tasks.clear()
                with contextlib.suppress(Exception):
                    await self.store.close()
            else:
                self.pg_error = self.pg_error if self.pg_error != "Unable to connect to the project database" \
                    else None
            self._ready.set_result(None)
        await asyncio.shield(self._ready)

    @property
    def limits(self) -> Limits:
        return limits_for(self.project, self.settings)

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None or not self.runtime.pools.owns(self.project, self._pool):
            self._pool = await self.runtime.pools.get(self.project)
        return self._pool

    async def _start(self) -> None:
        await self.pool()  # runs the tenant bootstrap (migrations) first
        await self.store.connect()
        try:
            await self.store.ensure_slot()
        except asyncpg.PostgresError as exc:
            log.error("realtime_slot_failed", project_ref=self.project.ref, error=str(exc))
            self.pg_error = _replication_problem(exc)
        if self.fanout is None:
            # Single process: the subscriptions of a crashed predecessor become ghosts here at once. (With
            # Redis, any process claims them when their client re-joins and replays the log for them.)
            orphans = await self.store.adopt_orphans(self.settings.grace_seconds + self.settings.heartbeat_seconds)
            for stored in orphans:
                self._add_orphan(stored)
            if orphans:
                log.info("realtime_subscriptions_adopted", project_ref=self.project.ref, count=len(orphans))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name=f"rt-house-{self.project.ref}"))
        if self.pg_error is None:
            self._tasks.append(asyncio.create_task(self._consume_forever(), name=f"rt-consumer-{self.project.ref}"))
        if self.fanout is not None:
            self.cursor = await self.fanout.log_top(self.project.ref)
            await self.fanout.save_cursor(self.project.ref, self.cursor)
            self._tasks.append(asyncio.create_task(self._log_loop(), name=f"rt-log-{self.project.ref}"))
            self.fanout.publish_soon("s", self.project.ref, {})
        self.started = True

    async def close(self) -> None:
        await self.visibility.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.store.close()

    async def _housekeeping(self) -> None:
        last_lag_check = 0.0
        while True:
            await asyncio.sleep(min(1.0, self.settings.heartbeat_seconds))
            now = time.monotonic()
            expired = [s for q in self.ghosts.values() for s in q if s.expires <= now]
            for sub in expired:
                self._drop_ghost(sub)
            self._expire_remote_presence()
            try:
                if expired:
                    await self.store.delete([s.id for s in expired])
                await self.store.heartbeat()
                if now - last_lag_check >= 5.0:
                    last_lag_check = now
                    await self._check_lag()
                    if self.fanout is not None:
                        await self.store.purge_detached(self.settings.grace_seconds,
                                                        self.settings.heartbeat_seconds)
                    if self.store.has_lock:
                        await self.store.purge_messages()
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("realtime_housekeeping_failed", project_ref=self.project.ref, error=str(exc))
                with contextlib.suppress(Exception):
                    if self.store.conn is None or self.store.conn.is_closed():
                        self.store.has_lock = False
                        await self.store.connect()

    async def _check_lag(self) -> None:
        lag, status = await self.store.lag_bytes()
        self.lag_bytes = lag
        behind = (lag or 0) > self.settings.max_lag_bytes or status == "lost"
        if behind and not self.lagging:
            log.error("realtime_wal_lag", project_ref=self.project.ref, lag_bytes=lag, wal_status=status)
            for channels in self.topics.values():
                for ch in channels:
                    if ch.subs:
                        ch.push(pr.system(ch.topic, "postgres_changes", "error",
                                          f"Replication is lagging: {lag} bytes of WAL behind", ch.join_ref))
        self.lagging = behind

    async def _consume_forever(self) -> None:
        while True:
            try:
                if not await self.store.try_lock():
                    await asyncio.sleep(2.0)
                    continue
                self.consumer = Consumer(self.store.dsn, self.store.slot, PUBLICATION, self._consumed,
                                         self._on_relation, self.confirmable)
                log.info("realtime_consumer_started", project_ref=self.project.ref, slot=self.store.slot)
                await self.consumer.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("realtime_consumer_failed", project_ref=self.project.ref, error=str(exc))
                await asyncio.sleep(1.0)

    def _on_relation(self, rel: Relation) -> None:
        self.visibility.invalidate(rel.relation_id)

    async def _consumed(self, txns: list[Transaction]) -> None:
        """The consumer's hand-off, before the LSN is confirmed: to the Redis log (every process, this one
        included, delivers from there) or, in a single process, straight to the local queues."""
        if self.fanout is not None:
            await self.fanout.append_transactions(self.project.ref, txns)
            return
        batch = await self._prepare_batch(txns)
        saved = False
        while self.ghosts and not saved:
            # Some subscription is held (the slot will not be confirmed past its buffered changes): record
            # how far the live ones are served, so a crash's replay skips it for them. Re-checked after the
            # await, and nothing awaits between the last check and the hand-off.
            await self.store.save_position(txns[-1].end_lsn)
            saved = True
        self._hand_off(batch)
        self.handed_lsn = txns[-1].end_lsn

    async def _log_loop(self) -> None:
        """Stream mode: read the project's transaction log from this process's cursor, in order."""
        assert self.fanout is not None
        fanout, ref = self.fanout, self.project.ref
        while True:
            try:
                entries = await fanout.read_log(ref, self.cursor, 2000)
                if not entries:
                    continue
                async with self.delivery_lock:
                    if entries[0].prev != self.cursor:
                        self._log_gap(self.cursor, entries[0].prev)
                    batch = await self._prepare_batch([e.txn for e in entries])
                    # Stored before any frame of the batch is queued: after a kill -9 this is how far this
                    # process's subscribers were served (a client re-joining elsewhere is replayed the rest).
                    await fanout.save_cursor(ref, entries[-1].lsn)
                    self._hand_off(batch)
                    self.cursor = entries[-1].lsn
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database is unreachable: retry from the same cursor
                log.warning("realtime_log_read_failed", project_ref=ref, error=str(exc))
                await asyncio.sleep(1.0)

    def _log_gap(self, cursor: int, prev: int) -> None:
        """Entries between our cursor and the next one were lost (trimmed, Redis restarted): say so."""
        self.log_gaps += 1
        log.error("realtime_log_gap", project_ref=self.project.ref, cursor=cursor, next_prev=prev)
        for channels in self.topics.values():
            for ch in channels:
                if ch.subs:
                    ch.push(pr.system(ch.topic, "postgres_changes", "error", _GAP_MESSAGE, ch.join_ref))

    def report_bus_gap(self) -> None:
        """Broadcast/presence messages from another process were lost: tell every channel of the project."""
        for channels in self.topics.values():
            for ch in channels:
                ch.push(pr.system(ch.topic, "system", "error",
                                  "Some broadcast or presence messages from another server were missed", ch.join_ref))

    # -- channels ----------------------------------------------------------------------------------------
    def add_channel(self, ch: Channel) -> list[pr.Message]:
        """Register a joined channel; returns the buffered changes of adopted ghosts (to send after the reply)."""
        self.topics.setdefault(ch.room, set()).add(ch)
        backlog: list[pr.Message] = []
        for sub in ch.subs:
            self._index(sub)
            ghost = self._take_ghost(sub.key)
            if ghost is not None:
                ghost.adopted_by = sub
                sub.skip_before = max(sub.skip_before, ghost.skip_before)
                log.info("realtime_ghost_resumed", project_ref=self.project.ref, topic=sub.topic,
                         backlog=len(ghost.buffer))
                for payload in ghost.buffer:
                    backlog.append(pr.push(ch.topic, "postgres_changes",
                                           {"ids": [sub.binding.id], "data": orjson.Fragment(payload)}, ch.join_ref))
                if ghost.overflowed:
                    backlog.append(pr.system(ch.topic, "postgres_changes", "error", _MISSED_MESSAGE, ch.join_ref))
                self._drop_ghost(ghost)
                self._spawn(self.store.delete([ghost.id]))
        return backlog

    def remove_channel(self, ch: Channel, *, keep: bool, position: int | None = None) -> None:
        """Unregister; with keep=True its subscriptions become ghosts for the grace window (stream mode:
        detached rows served up to `position`, default this process's cursor)."""
        members = self.topics.get(ch.room)
        if members is not None:
            members.discard(ch)
            if not members:
                del self.topics[ch.room]
        self.untrack(ch)
        if self.fanout is not None:
            self._detach(ch, keep=keep, position=self.cursor if position is None else position)
            return
        expires = time.monotonic() + self.settings.grace_seconds
        gone: list[str] = []
        kept: list[str] = []
        for sub in ch.subs:
            sub.channel = None
            if keep and self.settings.grace_seconds > 0:
                sub.expires = expires
                self.ghosts.setdefault(sub.key, deque()).append(sub)
                kept.append(sub.id)
            else:
                self._unindex(sub)
                gone.append(sub.id)
        ch.subs = [] if not keep else ch.subs
        if kept:  # after a crash, the replay skips what it had already been sent
            self._spawn(self.store.detach(kept, self.handed_lsn))
        if gone:
            self._spawn(self.store.delete(gone))

    def _detach(self, ch: Channel, *, keep: bool, position: int) -> None:
        """Stream mode: no ghost in memory. The row records how far it was served (this process's cursor, and
        nothing of a batch still being prepared has reached it), so a re-join on any process replays from there."""
        ids = []
        for sub in ch.subs:
            sub.channel = None
            self._unindex(sub)
            ids.append(sub.id)
        if not ids:
            return
        if keep and self.settings.grace_seconds > 0:
            self._spawn(self.store.detach(ids, position))
        else:
            ch.subs = []
            self._spawn(self.store.delete(ids))

    async def attach(self, ch: Channel) -> tuple[list[pr.Message], int | None]:
        """Stream mode join: claim the matching detached subscription (or one of a dead process) of the same
        identity, replay the log for it from its position up to this process's cursor, then go live — under
        the delivery lock, so the backlog ends exactly where live delivery starts. Returns the backlog and
        the oldest replayed position (where to detach again if the socket closes before the backlog is sent)."""
        assert self.fanout is not None
        if not ch.subs:  # broadcast / presence only: nothing to replay, no need to wait for a batch
            return self.add_channel(ch), None
        start: int | None = None
        async with self.delivery_lock:
            if ch.subs:
                sub0 = ch.subs[0]
                rows = await self.store.claim(ch.topic, sub0.role, sub0.sub_claim, [s.binding.id for s in ch.subs],
                                              [s.id for s in ch.subs])
                for stored, node, position in rows:
                    ghost = self._ghost(stored)
                    if ghost is None:
                        continue
                    if position is None:
                        position = await self.fanout.node_cursor(self.project.ref, node)
                    await self._replay(ghost, position)
                    if position is not None:
                        start = position if start is None else min(start, position)
                    self.ghosts.setdefault(ghost.key, deque()).append(ghost)
            return self.add_channel(ch), start

    async def _replay(self, ghost: Subscription, position: int | None) -> None:
        """Fill a claimed subscription's buffer with its changes of the log after `position`."""
        assert self.fanout is not None
        if position is None:  # its process's cursor is gone from Redis: we cannot know what it missed
            ghost.overflowed = True
            log.error("realtime_replay_unknown_position", project_ref=self.project.ref, topic=ghost.topic)
            return
        if position >= self.cursor:
            return
        entries = await self.fanout.log_range(self.project.ref, position, self.cursor)
        if not entries or entries[0].prev != position:
            ghost.overflowed = True  # trimmed from the log: reported to the client, never silent
            self.log_gaps += 1
            log.error("realtime_replay_gap", project_ref=self.project.ref, topic=ghost.topic, position=position)
        if entries:
            self._hand_off(await self._prepare_batch([e.txn for e in entries], only=[ghost]))
        log.info("realtime_subscription_replayed", project_ref=self.project.ref, topic=ghost.topic,
                 backlog=len(ghost.buffer), entries=len(entries))

    def _index(self, sub: Subscription) -> None:
        self.by_table.setdefault((sub.binding.schema, sub.binding.table), set()).add(sub)
        self._eq_cache.pop((sub.binding.schema, sub.binding.table), None)

    def _unindex(self, sub: Subscription) -> None:
        key = (sub.binding.schema, sub.binding.table)
        self._eq_cache.pop(key, None)
        members = self.by_table.get(key)
        if members is not None:
            members.discard(sub)
            if not members:
                del self.by_table[key]

    def _take_ghost(self, key: tuple[str, int, str, str]) -> Subscription | None:
        queue = self.ghosts.get(key)
        if not queue:
            return None
        ghost = queue.popleft()
        if not queue:
            del self.ghosts[key]
        return ghost

    def _drop_ghost(self, sub: Subscription) -> None:
        queue = self.ghosts.get(sub.key)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(sub)
            if not queue:
                del self.ghosts[sub.key]
        self._unindex(sub)
        if sub.adopted_by is None and sub.buffer:
            log.warning("realtime_ghost_expired", project_ref=self.project.ref, topic=sub.topic,
                        undelivered=len(sub.buffer))

    def _ghost(self, stored: StoredSubscription) -> Subscription | None:
        binding = pr.PgBinding(stored.event, stored.schema, stored.table, stored.filter, {}, stored.binding_id)
        filt = None
        if stored.filter:
            from madbase.realtime.filters import FilterError, parse_filter
            try:
                filt = parse_filter(stored.filter)
            except FilterError:
                return None
        sub_claim = str(stored.claims.get("sub", ""))
        return Subscription(stored.id, stored.topic, binding, filt, stored.role, jsonutil.dumps_str(stored.claims),
                            sub_claim, None)

    def _add_orphan(self, stored: StoredSubscription) -> None:
        sub = self._ghost(stored)
        if sub is None:
            return
        age = max(0.0, time.time() - stored.last_seen.timestamp())
        sub.expires = time.monotonic() + max(1.0, self.settings.grace_seconds + self.settings.heartbeat_seconds - age)
        sub.skip_before = stored.position or 0
        self._index(sub)
        self.ghosts.setdefault(sub.key, deque()).append(sub)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_log_failure)

    async def persist(self, subs: list[Subscription]) -> None:
        await self.store.insert([(s.id, s.topic, s.binding.id, s.binding.schema, s.binding.table, s.binding.event,
                                  s.binding.filter, s.claims_json, s.role) for s in subs])

    def reauthorize(self, ch: Channel, role: str, claims: dict[str, Any], claims_json: str) -> None:
        ch.role, ch.claims, ch.claims_json = role, claims, claims_json
        # sub_claim too: it is part of the ghost key, and a ghost checked with these claims must only be
        # adopted by a re-join of this identity.
        sub_claim = str(claims.get("sub", ""))
        for sub in ch.subs:
            sub.role, sub.claims_json, sub.sub_claim = role, claims_json, sub_claim
        self._spawn(self.store.update_claims([s.id for s in ch.subs], claims_json, role))

    def drop_subscriptions(self, ch: Channel) -> None:
        """The channel's postgres_changes subscriptions end (refused for a new identity); the channel stays."""
        for sub in ch.subs:
            sub.channel = None
            self._unindex(sub)
        if ch.subs:
            self._spawn(self.store.delete([s.id for s in ch.subs]))
        ch.subs = []

    # -- broadcast ---------------------------------------------------------------------------------------
    def broadcast(self, room: str, payload: dict[str, Any], sender: Channel | None = None,
                  message_id: int | None = None) -> int:
        """Deliver a broadcast to every channel of the room (`pr.room_of`; the sender only with `self`)."""
        msg = pr.push(pr.wire_topic(room), "broadcast", payload)
        count = 0
        for ch in list(self.topics.get(room, ())):
            if (ch is sender and not ch.config.broadcast_self) or not ch.rights.broadcast_read:
                continue
            if message_id is not None and message_id in ch.replayed:
                continue
            ch.push(msg)
            count += 1
        return count

    # -- postgres_changes ------------------------------------------------------------------------------
    async def deliver_transaction(self, txn: Transaction) -> None:
        await self.deliver_transactions([txn])

    async def deliver_transactions(self, txns: list[Transaction]) -> None:
        """Hand the changes of consecutive transactions to their subscribers, in commit order.

        Visibility of every (INSERT/UPDATE row, subscriber group) pair of the whole batch is decided by ONE
        database call; DELETEs and tables without RLS need none. Raises on database errors so that the
        consumer does not confirm (the batch is streamed again after reconnecting).
        """
        self._hand_off(await self._prepare_batch(txns))

    async def _prepare_batch(self, txns: list[Transaction], only: list[Subscription] | None = None) -> _Prepared:
        """Match, RLS-check and serialize a batch (awaits); `only`: replay for these subscriptions alone."""
        pool = await self.pool()
        work: list[_Work] = []
        groups: dict[tuple[str, str], int] = {}
        checks: list[dict[str, Any]] = []
        check_index: dict[tuple[int, int], int] = {}
        for txn in txns:
            commit_ts = commit_ts_text(txn.commit_time)
            for change in txn.changes:
                rel = change.relation
                if self._relations.get(rel.relation_id) != rel:
                    self._relations[rel.relation_id] = rel
                    self.visibility.invalidate(rel.relation_id)
                if rel.namespace == "realtime" and rel.name == "messages":
                    if change.kind == "INSERT" and only is None:
                        work.append((change, commit_ts, txn.commit_lsn, [], TableInfo(False, ()), {}))  # broadcast
                    continue
                subs = self._matching(change) if only is None else self._matching_only(change, only)
                if not subs:
                    continue
                info = await self.visibility.table(pool, rel.relation_id)
                subs = await self._authorized(pool, rel.relation_id, change.kind, info, subs)
                if not subs:
                    continue
                needs_check: dict[tuple[str, str], int] = {}
                if info.pk and info.rls_enabled and change.kind != "DELETE":
                    typed = typed_row(change)
                    pk_vals = [typed.get(c, (0, None))[1] for c in info.pk]
                    for sub in subs:
                        group = (sub.role, sub.claims_json)
                        if group in needs_check:
                            continue
                        g = groups.setdefault(group, len(groups) + 1)
                        key = (len(work), g)
                        check_index[key] = len(checks)
                        needs_check[group] = len(checks)
                        checks.append({"g": g, "e": rel.relation_id, "pk": list(info.pk), "v": pk_vals})
                work.append((change, commit_ts, txn.commit_lsn, subs, info, needs_check))
        flags: list[bool] = []
        if checks:
            roles = [""] * len(groups)
            claims = [""] * len(groups)
            for (role, claims_json), g in groups.items():
                roles[g - 1], claims[g - 1] = role, claims_json
            flags = await self.visibility.check_batch(checks, roles, claims, sorted({t.xid for t in txns}))
        return [(change, commit_lsn, subs,
                 await self._prepare(pool, change, commit_ts, subs, info, needs_check, flags) if subs else [])
                for change, commit_ts, commit_lsn, subs, info, needs_check in work]

    async def _authorized(self, pool: asyncpg.Pool, relation_id: int, kind: str, info: TableInfo,
                          subs: list[Subscription]) -> list[Subscription]:
        """The matched subscriptions whose role may learn of this change at all (authz.deliverable): checked
        with the role's current privileges before any RLS check, so neither an event nor its absence depends
        on what the role cannot read."""
        allowed: dict[str, frozenset[str]] = {}
        out: list[Subscription] = []
        for sub in subs:
            cols = allowed.get(sub.role)
            if cols is None:
                cols = allowed[sub.role] = await self.visibility.columns(pool, relation_id, sub.role)
            if deliverable(sub.filter, cols, info, kind):
                out.append(sub)
        return out

    def _hand_off(self, prepared: _Prepared) -> None:
        """Nothing awaits here: every change of the batch reaches the queues (and ghost buffers) before any
        frame is written, and the consumer confirms right after — a crash cannot deliver twice."""
        for change, commit_lsn, subs, items in prepared:
            if subs:
                self._push(items, commit_lsn)
            else:
                self._database_broadcast(change)

    def _database_broadcast(self, change: Change) -> None:
        """A row inserted into realtime.messages by realtime.send(): a broadcast on its topic."""
        row = {c.name: v for c, v in zip(change.relation.columns, change.new or (), strict=False)}
        topic, event, raw = row.get("topic"), row.get("event"), row.get("payload")
        if row.get("extension") != "broadcast" or not isinstance(topic, str) or not isinstance(event, str):
            return
        try:
            payload = orjson.loads(raw) if isinstance(raw, str) else {}
        except orjson.JSONDecodeError:
            return
        msg_id = row.get("id")
        private = row.get("private") in ("t", "true")  # only to private channels, whose members the policy let in
        ident = int(msg_id) if isinstance(msg_id, str) and msg_id.isdigit() else None
        self.broadcast(pr.room_of("realtime:" + topic, private),
                       {"type": "broadcast", "event": event, "payload": payload}, message_id=ident)

    def _eq_index(self, rel: Relation) -> tuple[dict[str, dict[Any, list[Subscription]]], list[Subscription]]:
        key = (rel.namespace, rel.name)
        cached = self._eq_cache.get(key)
        if cached is not None and cached[0] == rel:
            return cached[1], cached[2]
        oids = {c.name: c.type_oid for c in rel.columns}
        eq: dict[str, dict[Any, list[Subscription]]] = {}
        others: list[Subscription] = []
        for sub in self.by_table.get(key, ()):
            conds = sub.filter.conditions if sub.filter is not None else ()
            if len(conds) == 1 and conds[0].op == "eq" and not conds[0].negate and conds[0].column in oids:
                cond = conds[0]
                typed = filter_value(oids[cond.column], cond.values[0])
                eq.setdefault(cond.column, {}).setdefault(typed, []).append(sub)
            else:
                others.append(sub)
        self._eq_cache[key] = (rel, eq, others)
        return eq, others

    def _matching(self, change: Change) -> list[Subscription]:
        rel = change.relation
        eq, others = self._eq_index(rel)
        wildcard = self.by_table.get((rel.namespace, None), ())
        if not eq and not others and not wildcard:
            return []
        typed = typed_row(change)
        subs: list[Subscription] = []
        for column, by_value in eq.items():
            entry = typed.get(column)
            if entry is not None and entry[1] is not None:
                subs.extend(s for s in by_value.get(comparable(entry[0], entry[1]), ()) if s.wants(change.kind))
        for sub in (*others, *wildcard):
            if sub.wants(change.kind) and (sub.filter is None or sub.filter.matches(typed)):
                subs.append(sub)
        return subs

    @staticmethod
    def _matching_only(change: Change, only: list[Subscription]) -> list[Subscription]:
        rel = change.relation
        subs = [s for s in only if s.binding.schema == rel.namespace and s.binding.table in (None, rel.name)
                and s.wants(change.kind)]
        if subs and any(s.filter is not None for s in subs):
            typed = typed_row(change)
            subs = [s for s in subs if s.filter is None or s.filter.matches(typed)]
        return subs

    async def _prepare(self, pool: asyncpg.Pool, change: Change, commit_ts: str, subs: list[Subscription],
                       info: TableInfo, needs_check: dict[tuple[str, str], int], flags: list[bool]
                       ) -> list[_Item]:
        """The serialized payload for every subscription that may see this change (one per role + select)."""
        rel = change.relation
        errors = None if info.pk else ["Error 400: Bad Request, no primary key"]
        checked = info.pk and info.rls_enabled and change.kind != "DELETE"
        payload_by_role: dict[tuple[str, tuple[str, ...] | None], bytes] = {}
        out: list[_Item] = []
        for sub in subs:
            if checked:
                idx = needs_check.get((sub.role, sub.claims_json))
                if idx is None or not flags[idx]:
                    continue
            shape = (sub.role, sub.binding.select)
            if shape in payload_by_role:
                payload = payload_by_role[shape]
            else:
                data = await self._payload(pool, change, rel, info.pk, info.rls_enabled, sub.role, commit_ts,
                                           errors, sub.binding.select)
                payload = orjson.dumps(data)
                payload_by_role[shape] = payload
            out.append((sub, payload, sub.claims_json))
        return out

    def _push(self, prepared: list[_Item], commit_lsn: int) -> None:
        """Hand one change to its subscribers' queues (synchronously: no frame leaves before the batch is done)."""
        by_channel: dict[int, tuple[Channel, list[int], bytes]] = {}
        for sub, payload, checked_claims in prepared:
            if sub.claims_json != checked_claims:
                continue  # its access token changed while the batch was checked: decided for someone else
            target = sub
            while target.adopted_by is not None:
                target = target.adopted_by
            if commit_lsn < target.skip_before:
                continue  # replayed after a crash, but this subscriber had it already
            ch = target.channel
            if ch is None:
                self._buffer(target, payload, commit_lsn)
                continue
            entry = by_channel.get(id(ch))
            if entry is None:
                by_channel[id(ch)] = (ch, [target.binding.id], payload)
            elif target.binding.id not in entry[1]:
                entry[1].append(target.binding.id)
        for ch, ids, payload in by_channel.values():
            ch.push(pr.push(ch.topic, "postgres_changes", {"ids": ids, "data": orjson.Fragment(payload)},
                            ch.join_ref))
            self.delivered += 1

    def confirmable(self, lsn: int) -> int:
        """The highest LSN that may be confirmed: not past a change still held only in a ghost's memory, so a
        crash during a client's grace window replays it (the ghost is re-created from realtime.subscription)."""
        floors = [s.floor_lsn for q in self.ghosts.values() for s in q if s.buffer and s.floor_lsn]
        return min(lsn, min(floors)) if floors else lsn

    def _buffer(self, sub: Subscription, payload: bytes, commit_lsn: int) -> None:
        if len(sub.buffer) >= self.settings.ghost_buffer_max:
            sub.overflowed = True
            return
        if not sub.buffer:
            sub.floor_lsn = commit_lsn
        sub.buffer.append(payload)

    async def _type_name(self, pool: asyncpg.Pool, oid: int) -> str:
        name = self._type_names.get(oid)
        if name is None:
            async with pool.acquire() as conn:
                name = await conn.fetchval("select typname from pg_type where oid = $1::oid", oid) or "unknown"
            self._type_names[oid] = name
        return name

    async def _payload(self, pool: asyncpg.Pool, change: Change, rel: Relation, pk: tuple[str, ...],
                       rls: bool, role: str, commit_ts: str, errors: list[str] | None,
                       select: tuple[str, ...] | None = None) -> dict[str, Any]:
        allowed = await self.visibility.columns(pool, rel.relation_id, role)  # covers the key (_authorized)
        if select is not None:
            allowed = allowed & (set(select) | set(pk))
        columns = [{"name": c.name, "type": await self._type_name(pool, c.type_oid)}
                   for c in rel.columns if c.name in allowed]
        data: dict[str, Any] = {"schema": rel.namespace, "table": rel.name, "commit_timestamp": commit_ts,
                                "type": change.kind, "columns": columns, "errors": errors}
        if change.kind in ("INSERT", "UPDATE"):
            data["record"] = record_json(rel, change.new, allowed)
        keys = {c.name for c in rel.columns if c.is_key}
        if change.kind == "UPDATE":
            if change.old is not None:
                data["old_record"] = record_json(rel, change.old, allowed & keys if change.old_key_only else allowed)
            else:
                data["old_record"] = record_json(rel, change.new, allowed & set(pk))
        elif change.kind == "DELETE":
            keep = allowed & set(pk) if rls else allowed
            if change.old_key_only:
                keep = keep & keys
            data["old_record"] = record_json(rel, change.old, keep)
        return data


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("realtime_background_failed", error=str(task.exception()))


def _replication_problem(exc: asyncpg.PostgresError) -> str:
    """Why the replication slot could not be made, in words for the client (no server text)."""
    base = "Logical replication is not available on the project database"
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return f"{base}: its role lacks the REPLICATION privilege"
    if isinstance(exc, asyncpg.ConfigurationLimitExceededError):
        return f"{base}: no free replication slot (max_replication_slots)"
    if isinstance(exc, asyncpg.ObjectNotInPrerequisiteStateError):
        return f"{base}: wal_level must be logical"
    return f"{base} (wal_level=logical?)"
