"""Ghost subscriptions held in this process's memory (single-process mode), and how a re-join adopts one.

When a socket goes away without `phx_leave`, each of its subscriptions stays indexed for the grace window
and buffers (bounded) the serialized changes meant for it; a re-join with the same `SubKey` adopts it and
gets the buffer first. The slot is never confirmed past a change held only here (`confirmable`), so a
crash during a grace window replays it. With Redis the ghosts a re-join claims from the log live here only
while their backlog is being handed over.
"""

from __future__ import annotations

import contextlib
from collections import deque

import orjson
import structlog

from madbase.realtime import protocol as pr
from madbase.realtime.channel import Channel, SubKey, Subscription
from madbase.realtime.matching import SubscriptionIndex

log = structlog.get_logger("madbase.realtime")

MISSED_MESSAGE = "Some changes were dropped while disconnected"


class Ghosts:
    def __init__(self, index: SubscriptionIndex, buffer_max: int, project_ref: str) -> None:
        self.index = index
        self.buffer_max = buffer_max
        self.project_ref = project_ref
        self.held: dict[SubKey, deque[Subscription]] = {}

    def __bool__(self) -> bool:
        return bool(self.held)

    def __len__(self) -> int:
        return sum(len(q) for q in self.held.values())

    def hold(self, sub: Subscription) -> None:
        self.held.setdefault(sub.key, deque()).append(sub)

    def expired(self, now: float) -> list[Subscription]:
        return [s for q in self.held.values() for s in q if s.expires <= now]

    def take(self, key: SubKey) -> Subscription | None:
        queue = self.held.get(key)
        if not queue:
            return None
        ghost = queue.popleft()
        if not queue:
            del self.held[key]
        return ghost

    def drop(self, sub: Subscription) -> None:
        queue = self.held.get(sub.key)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(sub)
            if not queue:
                del self.held[sub.key]
        self.index.remove(sub)
        if sub.adopted_by is None and sub.buffer:
            log.warning("realtime_ghost_expired", project_ref=self.project_ref, topic=sub.topic,
                        undelivered=len(sub.buffer))

    def buffer(self, sub: Subscription, payload: bytes, commit_lsn: int) -> None:
        if len(sub.buffer) >= self.buffer_max:
            sub.overflowed = True
            return
        if not sub.buffer:
            sub.floor_lsn = commit_lsn
        sub.buffer.append(payload)

    def confirmable(self, lsn: int) -> int:
        """The highest LSN that may be confirmed: not past a change still held only in a ghost's memory, so a
        crash during a client's grace window replays it (the ghost is re-created from realtime.subscription)."""
        floors = [s.floor_lsn for q in self.held.values() for s in q if s.buffer and s.floor_lsn]
        return min(lsn, min(floors)) if floors else lsn

    def adopt(self, sub: Subscription, ch: Channel) -> tuple[Subscription | None, list[pr.Message]]:
        """A new live subscription takes over the ghost of its key, if any: (the ghost, its backlog)."""
        ghost = self.take(sub.key)
        if ghost is None:
            return None, []
        ghost.adopted_by = sub
        sub.skip_before = max(sub.skip_before, ghost.skip_before)
        log.info("realtime_ghost_resumed", project_ref=self.project_ref, topic=sub.topic, backlog=len(ghost.buffer))
        backlog = [pr.push(ch.topic, "postgres_changes", {"ids": [sub.binding.id], "data": orjson.Fragment(payload)},
                           ch.join_ref) for payload in ghost.buffer]
        if ghost.overflowed:
            backlog.append(pr.system(ch.topic, "postgres_changes", "error", MISSED_MESSAGE, ch.join_ref))
        self.drop(ghost)
        return ghost, backlog
