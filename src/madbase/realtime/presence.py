"""Presence of one project in this process: tracked metas per room and key, diffs to the local channels with
presence enabled, and the cross-process part (diffs published through the fan-out, remote entries tagged
with their node and dropped when that node falls silent, full state shared with a node that starts).

A room is a topic with its privacy (`protocol.room_of`): private and public channels of one name do not
see each other's presence.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple

from madbase.realtime import protocol as pr

if TYPE_CHECKING:
    from madbase.realtime.channel import Channel
    from madbase.realtime.fanout import Fanout

# A process whose bus heartbeats stopped this long ago is gone: its presence entries leave.
_REMOTE_SILENCE = 15.0

Diff = dict[str, Any]  # {key: {"metas": [meta, ...]}}, the wire shape of presence joins/leaves


class Tracked(NamedTuple):
    channel: Channel | None  # None: tracked on another process
    meta: dict[str, Any]  # the client's state plus its `phx_ref`


class Presence:
    def __init__(self, rooms: dict[str, set[Channel]], fanout: Fanout | None, project_ref: str) -> None:
        self.rooms = rooms  # the hub's channels by room (shared, never replaced)
        self.fanout = fanout
        self.project_ref = project_ref
        self.entries: dict[str, dict[str, dict[str, Tracked]]] = {}  # room → key → phx_ref → entry
        self.remote: dict[str, str] = {}  # phx_ref → node, for entries tracked on other processes

    def state(self, room: str) -> dict[str, Any]:
        return {key: {"metas": [t.meta for t in metas.values()]} for key, metas in self.entries.get(room, {}).items()}

    def track(self, ch: Channel, state: dict[str, Any]) -> None:
        leaves = self._remove(ch)
        ref = uuid.uuid4().hex[:20]
        meta = {**state, "phx_ref": ref}
        self.entries.setdefault(ch.room, {}).setdefault(ch.presence_key, {})[ref] = Tracked(ch, meta)
        ch.presence_ref = ref
        joins = {ch.presence_key: {"metas": [meta]}}
        self._diff(ch.room, joins, leaves)
        self._publish(ch.room, joins, leaves)

    def untrack(self, ch: Channel) -> None:
        leaves = self._remove(ch)
        if leaves:
            self._diff(ch.room, {}, leaves)
            self._publish(ch.room, {}, leaves)

    def _publish(self, room: str, joins: Diff, leaves: Diff) -> None:
        if self.fanout is not None:
            self.fanout.publish_soon("p", self.project_ref, {"t": room, "j": joins, "l": leaves})

    def apply_remote(self, node: str, room: str, joins: Diff, leaves: Diff) -> None:
        by_key = self.entries.setdefault(room, {})
        new_joins: Diff = {}
        for key, entry in joins.items():
            for meta in entry.get("metas", []):
                ref = str(meta.get("phx_ref"))
                if ref in by_key.get(key, {}):
                    continue
                by_key.setdefault(key, {})[ref] = Tracked(None, meta)
                self.remote[ref] = node
                new_joins.setdefault(key, {"metas": []})["metas"].append(meta)
        gone: Diff = {}
        for key, entry in leaves.items():
            for meta in entry.get("metas", []):
                ref = str(meta.get("phx_ref"))
                if by_key.get(key, {}).pop(ref, None) is not None:
                    self.remote.pop(ref, None)
                    gone.setdefault(key, {"metas": []})["metas"].append(meta)
            if key in by_key and not by_key[key]:
                del by_key[key]
        if not by_key:
            self.entries.pop(room, None)
        if new_joins or gone:
            self._diff(room, new_joins, gone)

    def share(self) -> None:
        """Answer a new node's sync request with everything tracked on this node."""
        for room, by_key in self.entries.items():
            joins: Diff = {}
            for key, metas in by_key.items():
                for tracked in metas.values():
                    if tracked.channel is not None:
                        joins.setdefault(key, {"metas": []})["metas"].append(tracked.meta)
            if joins:
                self._publish(room, joins, {})

    def expire_remote(self) -> None:
        if self.fanout is None or not self.remote:
            return
        now = time.monotonic()
        dead = {n for n in set(self.remote.values()) if now - self.fanout.node_seen.get(n, 0) > _REMOTE_SILENCE}
        if not dead:
            return
        for room, by_key in list(self.entries.items()):
            leaves: Diff = {}
            for key, metas in by_key.items():
                for ref, tracked in list(metas.items()):
                    if self.remote.get(ref) in dead:
                        leaves.setdefault(key, {"metas": []})["metas"].append(tracked.meta)
            if leaves:
                self.apply_remote("", room, {}, leaves)

    def _remove(self, ch: Channel) -> Diff:
        if ch.presence_ref is None:
            return {}
        by_key = self.entries.get(ch.room, {})
        metas = by_key.get(ch.presence_key, {})
        entry = metas.pop(ch.presence_ref, None)
        ch.presence_ref = None
        if not metas:
            by_key.pop(ch.presence_key, None)
        if not by_key:
            self.entries.pop(ch.room, None)
        if entry is None:
            return {}
        return {ch.presence_key: {"metas": [entry.meta]}}

    def _diff(self, room: str, joins: Diff, leaves: Diff) -> None:
        msg = pr.push(pr.wire_topic(room), "presence_diff", {"joins": joins, "leaves": leaves})
        for ch in list(self.rooms.get(room, ())):
            if ch.config.presence_enabled and ch.rights.presence_read:
                ch.push(msg)
