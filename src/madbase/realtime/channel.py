"""The records a hub keeps per joined channel and per postgres_changes subscription (no I/O, no logic).

Thousands of idle sockets each hold a `Channel` and its `Subscription`s, so both are slotted dataclasses
(no per-instance `__dict__`), and a ghost's buffer is a list rather than a deque (an empty deque costs one
64-slot block, ~600 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from madbase.realtime import protocol as pr
from madbase.realtime.filters import Filter
from madbase.realtime.rls import PUBLIC_RIGHTS, TopicRights


class Outlet(Protocol):
    """The socket side of a channel: queue one message (may disconnect a slow socket)."""

    def send(self, msg: pr.Message) -> None: ...


class SubKey(NamedTuple):
    """What a re-join must match to adopt a ghost: the same topic, binding and identity."""

    topic: str
    binding_id: int
    role: str
    sub_claim: str


class TableKey(NamedTuple):
    """Where a subscription listens: a table, or every table of a schema (`table` None)."""

    schema: str
    table: str | None


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
    """One postgres_changes binding of one joined channel (`channel` None while it is a ghost)."""

    id: str
    topic: str
    binding: pr.PgBinding
    filter: Filter | None
    role: str
    claims_json: str
    sub_claim: str
    channel: Channel | None
    # Filled only while the subscription is a ghost (serialized payloads, in commit order).
    buffer: list[bytes] = field(default_factory=list)
    floor_lsn: int = 0  # commit LSN of the oldest buffered change (the slot is not confirmed past it)
    expires: float = 0.0
    overflowed: bool = False
    adopted_by: Subscription | None = None
    skip_before: int = 0  # adopted after a crash: changes committed before this LSN were already delivered

    @property
    def key(self) -> SubKey:
        return SubKey(self.topic, self.binding.id, self.role, self.sub_claim)

    @property
    def table_key(self) -> TableKey:
        return TableKey(self.binding.schema, self.binding.table)

    def wants(self, kind: str) -> bool:
        return self.binding.event in ("*", kind)

    def live(self) -> Subscription:
        """The subscription that now stands for this one (a ghost adopted by a re-join forwards to it)."""
        target = self
        while target.adopted_by is not None:
            target = target.adopted_by
        return target
