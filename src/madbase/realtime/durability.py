"""Nothing lost, nothing repeated: the replication slot's consumer, the Redis transaction log, and what
happens to the subscriptions of a socket that went away (ghosts), in both modes.

Single process: the consumer hands each batch to the local queues (`Delivery.hand_off`) before its end LSN
is confirmed; a vanished subscription becomes an in-memory ghost (`ghosts.py`) and its row in
`realtime.subscription` records how far it was served, so after a crash the next server adopts the row and
the slot's replay skips what the client already had.

With Redis (several processes) the consumer appends to the project's transaction log instead; every
process reads the log from its cursor (`log_loop`), a vanished subscription is only a row with a position,
and a re-join on any process claims the row and replays the log for it (`claim`), under `delivery_lock` so
the backlog ends exactly where live delivery resumes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import structlog

from madbase.core import jsonutil
from madbase.realtime import protocol as pr
from madbase.realtime.channel import Channel, Subscription
from madbase.realtime.config import RealtimeSettings
from madbase.realtime.delivery import Delivery
from madbase.realtime.filters import FilterError, parse_filter
from madbase.realtime.ghosts import Ghosts
from madbase.realtime.matching import SubscriptionIndex
from madbase.realtime.pgoutput import Relation
from madbase.realtime.replication import Consumer, Transaction
from madbase.realtime.store import PUBLICATION, NewSubscription, Store, StoredSubscription

if TYPE_CHECKING:
    from madbase.realtime.fanout import Fanout

log = structlog.get_logger("madbase.realtime")

GAP_MESSAGE = "Some changes may have been missed: the cross-server change log has a gap"


class Durability:
    def __init__(self, project_ref: str, settings: RealtimeSettings, store: Store, fanout: Fanout | None,
                 index: SubscriptionIndex, ghosts: Ghosts, delivery: Delivery,
                 tell_subscribed: Callable[[str], None]) -> None:
        self.ref = project_ref
        self.settings = settings
        self.store = store
        self.fanout = fanout
        self.index = index
        self.ghosts = ghosts
        self.delivery = delivery
        self._tell_subscribed = tell_subscribed  # a `system` error to every channel with subscriptions
        self.consumer: Consumer | None = None
        # Stream mode: LSN of the last log entry handed to this process's subscribers.
        self.cursor = 0
        # Single process: end LSN of the last batch handed to the queues (a detached subscription's position).
        self.handed_lsn = 0
        self.delivery_lock = asyncio.Lock()
        self.log_gaps = 0

    # -- the slot --------------------------------------------------------------------------------------
    async def consume_forever(self) -> None:
        """Hold the project's consumer lock (one consumer cluster-wide) and run the consumer; retry."""
        while True:
            try:
                if not await self.store.try_lock():
                    await asyncio.sleep(2.0)
                    continue
                self.consumer = Consumer(self.store.dsn, self.store.slot, PUBLICATION, self._consumed,
                                         self._on_relation, self.ghosts.confirmable)
                log.info("realtime_consumer_started", project_ref=self.ref, slot=self.store.slot)
                await self.consumer.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("realtime_consumer_failed", project_ref=self.ref, error=str(exc))
                await asyncio.sleep(1.0)

    def _on_relation(self, rel: Relation) -> None:
        # Sent after GRANT/REVOKE/ENABLE RLS: the cached table facts and privileges are stale now.
        self.delivery.visibility.invalidate(rel.relation_id)

    async def _consumed(self, txns: list[Transaction]) -> None:
        """The consumer's hand-off, before the LSN is confirmed: to the Redis log (every process, this one
        included, delivers from there) or, in a single process, straight to the local queues."""
        if self.fanout is not None:
            await self.fanout.append_transactions(self.ref, txns)
            return
        batch = await self.delivery.prepare(txns)
        saved = False
        while self.ghosts and not saved:
            # Some subscription is held (the slot will not be confirmed past its buffered changes): record
            # how far the live ones are served, so a crash's replay skips it for them. Re-checked after the
            # await, and nothing awaits between the last check and the hand-off.
            await self.store.save_position(txns[-1].end_lsn)
            saved = True
        self.delivery.hand_off(batch)
        self.handed_lsn = txns[-1].end_lsn

    # -- the Redis log ---------------------------------------------------------------------------------
    async def log_loop(self) -> None:
        """Stream mode: read the project's transaction log from this process's cursor, in order."""
        assert self.fanout is not None
        fanout, ref = self.fanout, self.ref
        while True:
            try:
                entries = await fanout.read_log(ref, self.cursor, 2000)
                if not entries:
                    continue
                async with self.delivery_lock:
                    if entries[0].prev != self.cursor:
                        self._log_gap(self.cursor, entries[0].prev)
                    batch = await self.delivery.prepare([e.txn for e in entries])
                    # Stored before any frame of the batch is queued: after a kill -9 this is how far this
                    # process's subscribers were served (a client re-joining elsewhere is replayed the rest).
                    await fanout.save_cursor(ref, entries[-1].lsn)
                    self.delivery.hand_off(batch)
                    self.cursor = entries[-1].lsn
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database is unreachable: retry from the same cursor
                log.warning("realtime_log_read_failed", project_ref=ref, error=str(exc))
                await asyncio.sleep(1.0)

    def _log_gap(self, cursor: int, prev: int) -> None:
        """Entries between our cursor and the next one were lost (trimmed, Redis restarted): say so."""
        self.log_gaps += 1
        log.error("realtime_log_gap", project_ref=self.ref, cursor=cursor, next_prev=prev)
        self._tell_subscribed(GAP_MESSAGE)

    # -- subscriptions of a socket that goes or comes back ----------------------------------------------
    async def persist(self, subs: list[Subscription]) -> None:
        await self.store.insert([NewSubscription(s.id, s.topic, s.binding.id, s.binding.schema, s.binding.table,
                                                 s.binding.event, s.binding.filter, s.claims_json, s.role)
                                 for s in subs])

    def release(self, ch: Channel, *, keep: bool, position: int | None = None) -> None:
        """The channel's subscriptions stop being live; with keep=True they become ghosts for the grace window
        (stream mode: detached rows served up to `position`, default this process's cursor)."""
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
                self.ghosts.hold(sub)
                kept.append(sub.id)
            else:
                self.index.remove(sub)
                gone.append(sub.id)
        ch.subs = [] if not keep else ch.subs
        if kept:  # after a crash, the replay skips what it had already been sent
            spawn(self.store.detach(kept, self.handed_lsn))
        if gone:
            spawn(self.store.delete(gone))

    def _detach(self, ch: Channel, *, keep: bool, position: int) -> None:
        """Stream mode: no ghost in memory. The row records how far it was served (this process's cursor, and
        nothing of a batch still being prepared has reached it), so a re-join on any process replays from there."""
        ids = []
        for sub in ch.subs:
            sub.channel = None
            self.index.remove(sub)
            ids.append(sub.id)
        if not ids:
            return
        if keep and self.settings.grace_seconds > 0:
            spawn(self.store.detach(ids, position))
        else:
            ch.subs = []
            spawn(self.store.delete(ids))

    def adopt(self, ch: Channel) -> list[pr.Message]:
        """A joined channel's subscriptions take over their ghosts: the buffered changes, to send after the
        join reply."""
        backlog: list[pr.Message] = []
        for sub in ch.subs:
            self.index.add(sub)
            ghost, messages = self.ghosts.adopt(sub, ch)
            if ghost is not None:
                backlog.extend(messages)
                spawn(self.store.delete([ghost.id]))
        return backlog

    async def claim(self, ch: Channel) -> int | None:
        """Stream mode join (the caller holds `delivery_lock`): claim the matching detached subscription (or one
        of a dead process) of the same identity and replay the log for it from its position up to this
        process's cursor into a ghost; returns the oldest replayed position (where to detach again if the
        socket closes before the backlog is sent)."""
        assert self.fanout is not None
        start: int | None = None
        sub0 = ch.subs[0]
        rows = await self.store.claim(ch.topic, sub0.role, sub0.sub_claim, [s.binding.id for s in ch.subs],
                                      [s.id for s in ch.subs])
        for stored, node, position in rows:
            ghost = self.ghost_of(stored)
            if ghost is None:
                continue
            if position is None:
                position = await self.fanout.node_cursor(self.ref, node)
            await self._replay(ghost, position)
            if position is not None:
                start = position if start is None else min(start, position)
            self.ghosts.hold(ghost)
        return start

    async def _replay(self, ghost: Subscription, position: int | None) -> None:
        """Fill a claimed subscription's buffer with its changes of the log after `position`."""
        assert self.fanout is not None
        if position is None:  # its process's cursor is gone from Redis: we cannot know what it missed
            ghost.overflowed = True
            log.error("realtime_replay_unknown_position", project_ref=self.ref, topic=ghost.topic)
            return
        if position >= self.cursor:
            return
        entries = await self.fanout.log_range(self.ref, position, self.cursor)
        if not entries or entries[0].prev != position:
            ghost.overflowed = True  # trimmed from the log: reported to the client, never silent
            self.log_gaps += 1
            log.error("realtime_replay_gap", project_ref=self.ref, topic=ghost.topic, position=position)
        if entries:
            self.delivery.hand_off(await self.delivery.prepare([e.txn for e in entries], only=[ghost]))
        log.info("realtime_subscription_replayed", project_ref=self.ref, topic=ghost.topic,
                 backlog=len(ghost.buffer), entries=len(entries))

    @staticmethod
    def ghost_of(stored: StoredSubscription) -> Subscription | None:
        """A persisted subscription as a (not yet indexed) ghost; None if its filter no longer parses."""
        binding = pr.PgBinding(stored.event, stored.schema, stored.table, stored.filter, {}, stored.binding_id)
        try:
            filt = parse_filter(stored.filter) if stored.filter else None
        except FilterError:
            return None
        return Subscription(stored.id, stored.topic, binding, filt, stored.role, jsonutil.dumps_str(stored.claims),
                            str(stored.claims.get("sub", "")), None)

    async def adopt_orphans(self) -> None:
        """Single process, at start: the subscriptions of a crashed predecessor become ghosts here at once.
        (With Redis, any process claims them when their client re-joins and replays the log for them.)"""
        window = self.settings.grace_seconds + self.settings.heartbeat_seconds
        orphans = await self.store.adopt_orphans(window)
        for stored in orphans:
            sub = self.ghost_of(stored)
            if sub is None:
                continue
            age = max(0.0, time.time() - stored.last_seen.timestamp())
            sub.expires = time.monotonic() + max(1.0, window - age)
            sub.skip_before = stored.position or 0
            self.index.add(sub)
            self.ghosts.hold(sub)
        if orphans:
            log.info("realtime_subscriptions_adopted", project_ref=self.ref, count=len(orphans))

    def expire_ghosts(self) -> list[str]:
        """Ghosts whose grace window ended leave (their rows are deleted by the caller): their ids."""
        expired = self.ghosts.expired(time.monotonic())
        for sub in expired:
            self.ghosts.drop(sub)
        return [s.id for s in expired]


def spawn(coro: Coroutine[Any, Any, None]) -> None:
    """Run a bookkeeping write in the background; a failure is logged (the next heartbeat or purge fixes it)."""
    asyncio.ensure_future(coro).add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("realtime_background_failed", error=str(task.exception()))
