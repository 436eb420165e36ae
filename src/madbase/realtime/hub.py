"""One project's realtime state in this process, and its lifecycle: the parts, by concern, wired together.

- channels by room and broadcast delivery (here);
- subscriptions and matching (`matching.SubscriptionIndex`);
- delivery of postgres_changes with batched RLS checks (`delivery.Delivery`);
- durability — the slot's consumer, the Redis transaction log, ghost subscriptions (`durability.Durability`,
  `ghosts.Ghosts`);
- presence (`presence.Presence`).

The hub starts lazily on the first join (or at process start when the project's slot exists), retries a
failed start at most every 5 s, and runs a housekeeping task: ghost expiry, node heartbeat, WAL lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import structlog

from madbase.realtime import protocol as pr
from madbase.realtime.channel import Channel
from madbase.realtime.config import RealtimeSettings
from madbase.realtime.delivery import Delivery
from madbase.realtime.durability import Durability, spawn
from madbase.realtime.ghosts import Ghosts
from madbase.realtime.limits import Limits, RateWindow, limits_for
from madbase.realtime.matching import SubscriptionIndex
from madbase.realtime.presence import Presence
from madbase.realtime.replication import Change
from madbase.realtime.rls import Visibility
from madbase.realtime.store import Store

if TYPE_CHECKING:
    from madbase.core.projects import Project
    from madbase.core.runtime import Runtime
    from madbase.realtime.fanout import Fanout

log = structlog.get_logger("madbase.realtime")

_UNREACHABLE = "Unable to connect to the project database"
_BUS_GAP_MESSAGE = "Some broadcast or presence messages from another server were missed"


class ProjectHub:
    def __init__(self, runtime: Runtime, project: Project, settings: RealtimeSettings, node: str,
                 fanout: Fanout | None = None) -> None:
        self.runtime = runtime
        self.project = project
        self.settings = settings
        self.fanout = fanout
        self.topics: dict[str, set[Channel]] = {}  # room (`pr.room_of`) → joined channels; never replaced
        self.store = Store(project.record.db_url, node)
        self.index = SubscriptionIndex()
        self.ghosts = Ghosts(self.index, settings.ghost_buffer_max, project.ref)
        self.delivery = Delivery(self.index, self.ghosts, Visibility(project.record.db_url), self.pool,
                                 self._database_broadcast)
        self.durability = Durability(project.ref, settings, self.store, fanout, self.index, self.ghosts,
                                     self.delivery, self._tell_subscribed)
        self.presence = Presence(self.topics, fanout, project.ref)
        # Why postgres_changes cannot work on this project (no wal_level=logical, no REPLICATION, database
        # unreachable); joins with postgres_changes are refused while it is set.
        self.pg_error: str | None = None
        self.lag_bytes: int | None = None
        self.lagging = False
        self.started = False
        # Per-second counters of this project's client messages and joins (limits.py).
        self.events_rate = RateWindow()
        self.joins_rate = RateWindow()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: asyncio.Future[None] | None = None
        self._start_failed = 0.0
        self._pool: asyncpg.Pool | None = None

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
                self.pg_error = _UNREACHABLE
                self._start_failed = time.monotonic()
                for task in self._tasks:
                    task.cancel()
                self._tasks.clear()
                with contextlib.suppress(Exception):
                    await self.store.close()
            else:
                if self.pg_error == _UNREACHABLE:
                    self.pg_error = None
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
            await self.durability.adopt_orphans()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name=f"rt-house-{self.project.ref}"))
        if self.pg_error is None:
            self._tasks.append(asyncio.create_task(self.durability.consume_forever(),
                                                   name=f"rt-consumer-{self.project.ref}"))
        if self.fanout is not None:
            cursor = await self.fanout.log_top(self.project.ref)
            self.durability.cursor = cursor
            await self.fanout.save_cursor(self.project.ref, cursor)
            self._tasks.append(asyncio.create_task(self.durability.log_loop(), name=f"rt-log-{self.project.ref}"))
            self.fanout.publish_soon("s", self.project.ref, {})
        self.started = True

    async def close(self) -> None:
        await self.delivery.visibility.close()
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
            expired = self.durability.expire_ghosts()
            self.presence.expire_remote()
            try:
                if expired:
                    await self.store.delete(expired)
                await self.store.heartbeat()
                if now - last_lag_check >= 5.0:
                    last_lag_check = now
                    await self.check_lag()
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

    async def check_lag(self) -> None:
        """Read the slot's lag; on crossing the limit (or a `lost` slot) tell subscribed channels once."""
        lag, status = await self.store.lag_bytes()
        self.lag_bytes = lag
        behind = (lag or 0) > self.settings.max_lag_bytes or status == "lost"
        if behind and not self.lagging:
            log.error("realtime_wal_lag", project_ref=self.project.ref, lag_bytes=lag, wal_status=status)
            self._tell_subscribed(f"Replication is lagging: {lag} bytes of WAL behind")
        self.lagging = behind

    def _tell_subscribed(self, message: str) -> None:
        """A postgres_changes `system` error to every channel that has subscriptions."""
        for channels in self.topics.values():
            for ch in channels:
                if ch.subs:
                    ch.push(pr.system(ch.topic, "postgres_changes", "error", message, ch.join_ref))

    def report_bus_gap(self) -> None:
        """Broadcast/presence messages from another process were lost: tell every channel of the project."""
        for channels in self.topics.values():
            for ch in channels:
                ch.push(pr.system(ch.topic, "system", "error", _BUS_GAP_MESSAGE, ch.join_ref))

    # -- status ----------------------------------------------------------------------------------------
    @property
    def consumer_running(self) -> bool:
        return self.durability.consumer is not None and self.store.has_lock

    @property
    def log_gaps(self) -> int:
        return self.durability.log_gaps

    # -- channels ----------------------------------------------------------------------------------------
    def add_channel(self, ch: Channel) -> list[pr.Message]:
        """Register a joined channel; returns the buffered changes of adopted ghosts (to send after the reply)."""
        self.topics.setdefault(ch.room, set()).add(ch)
        return self.durability.adopt(ch)

    async def attach(self, ch: Channel) -> tuple[list[pr.Message], int | None]:
        """Stream mode join: claim and replay the channel's detached subscriptions, then go live — under the
        delivery lock, so the backlog ends exactly where live delivery starts. Returns the backlog and the
        oldest replayed position (where to detach again if the socket closes before the backlog is sent)."""
        if not ch.subs:  # broadcast / presence only: nothing to replay, no need to wait for a batch
            return self.add_channel(ch), None
        async with self.durability.delivery_lock:
            start = await self.durability.claim(ch)
            return self.add_channel(ch), start

    def remove_channel(self, ch: Channel, *, keep: bool, position: int | None = None) -> None:
        """Unregister; with keep=True its subscriptions become ghosts for the grace window."""
        members = self.topics.get(ch.room)
        if members is not None:
            members.discard(ch)
            if not members:
                del self.topics[ch.room]
        self.presence.untrack(ch)
        self.durability.release(ch, keep=keep, position=position)

    def reauthorize(self, ch: Channel, role: str, claims: dict[str, Any], claims_json: str) -> None:
        ch.role, ch.claims, ch.claims_json = role, claims, claims_json
        # sub_claim too: it is part of the ghost key, and a ghost checked with these claims must only be
        # adopted by a re-join of this identity.
        sub_claim = str(claims.get("sub", ""))
        for sub in ch.subs:
            sub.role, sub.claims_json, sub.sub_claim = role, claims_json, sub_claim
        spawn(self.store.update_claims([s.id for s in ch.subs], claims_json, role))

    def drop_subscriptions(self, ch: Channel) -> None:
        """The channel's postgres_changes subscriptions end (refused for a new identity); the channel stays."""
        for sub in ch.subs:
            sub.channel = None
            self.index.remove(sub)
        if ch.subs:
            spawn(self.store.delete([s.id for s in ch.subs]))
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
