"""Presence for one project's hub: tracked metas per topic and key, diffs to local channels with presence
enabled, and the cross-process part (diffs published through the fan-out, remote entries tagged with their
node and dropped when that node falls silent, full state shared with a node that starts)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from madbase.realtime import protocol as pr

if TYPE_CHECKING:
    from madbase.core.projects import Project
    from madbase.realtime.fanout import Fanout
    from madbase.realtime.hub import Channel


class PresenceMixin:
    """State lives on the hub: `presence[room][key][phx_ref] = (local channel or None, meta)`; a room is a topic
    with its privacy (`pr.room_of`): private and public channels of one name do not see each other."""

    presence: dict[str, dict[str, dict[str, tuple[Channel | None, dict[str, Any]]]]]
    remote_presence: dict[str, str]  # phx_ref → node, for entries tracked on other processes
    topics: dict[str, set[Channel]]
    fanout: Fanout | None
    project: Project

    def presence_state(self, topic: str) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for key, metas in self.presence.get(topic, {}).items():
            state[key] = {"metas": [meta for _, meta in metas.values()]}
        return state

    def track(self, ch: Channel, state: dict[str, Any]) -> None:
        leaves = self._untrack_meta(ch)
        ref = uuid.uuid4().hex[:20]
        meta = {**state, "phx_ref": ref}
        self.presence.setdefault(ch.room, {}).setdefault(ch.presence_key, {})[ref] = (ch, meta)
        ch.presence_ref = ref
        joins = {ch.presence_key: {"metas": [meta]}}
        self._presence_diff(ch.room, joins, leaves)
        self._publish_presence(ch.room, joins, leaves)

    def untrack(self, ch: Channel) -> None:
        leaves = self._untrack_meta(ch)
        if leaves:
            self._presence_diff(ch.room, {}, leaves)
            self._publish_presence(ch.room, {}, leaves)

    def _publish_presence(self, topic: str, joins: dict[str, Any], leaves: dict[str, Any]) -> None:
        if self.fanout is not None:
            self.fanout.publish_soon("p", self.project.ref, {"t": topic, "j": joins, "l": leaves})

    def apply_remote_presence(self, node: str, topic: str, joins: dict[str, Any], leaves: dict[str, Any]) -> None:
        by_key = self.presence.setdefault(topic, {})
        new_joins: dict[str, Any] = {}
        for key, entry in joins.items():
            for meta in entry.get("metas", []):
                ref = str(meta.get("phx_ref"))
                if ref in by_key.get(key, {}):
                    continue
                by_key.setdefault(key, {})[ref] = (None, meta)
                self.remote_presence[ref] = node
                new_joins.setdefault(key, {"metas": []})["metas"].append(meta)
        gone: dict[str, Any] = {}
        for key, entry in leaves.items():
            for meta in entry.get("metas", []):
                ref = str(meta.get("phx_ref"))
                if by_key.get(key, {}).pop(ref, None) is not None:
                    self.remote_presence.pop(ref, None)
                    gone.setdefault(key, {"metas": []})["metas"].append(meta)
            if key in by_key and not by_key[key]:
                del by_key[key]
        if not by_key:
            self.presence.pop(topic, None)
        if new_joins or gone:
            self._presence_diff(topic, new_joins, gone)

    def share_presence(self) -> None:
        """Answer a new node's sync request with everything tracked on this node."""
        for topic, by_key in self.presence.items():
            joins: dict[str, Any] = {}
            for key, metas in by_key.items():
                for ch, meta in metas.values():
                    if ch is not None:
                        joins.setdefault(key, {"metas": []})["metas"].append(meta)
            if joins:
                self._publish_presence(topic, joins, {})

    def _expire_remote_presence(self) -> None:
        if self.fanout is None or not self.remote_presence:
            return
        now = time.monotonic()
        dead = {n for n in set(self.remote_presence.values()) if now - self.fanout.node_seen.get(n, 0) > 15.0}
        if not dead:
            return
        for topic, by_key in list(self.presence.items()):
            leaves: dict[str, Any] = {}
            for key, metas in by_key.items():
                for ref, (_, meta) in list(metas.items()):
                    if self.remote_presence.get(ref) in dead:
                        leaves.setdefault(key, {"metas": []})["metas"].append(meta)
            if leaves:
                self.apply_remote_presence("", topic, {}, leaves)

    def _untrack_meta(self, ch: Channel) -> dict[str, Any]:
        if ch.presence_ref is None:
            return {}
        by_key = self.presence.get(ch.room, {})
        metas = by_key.get(ch.presence_key, {})
        entry = metas.pop(ch.presence_ref, None)
        ch.presence_ref = None
        if not metas:
            by_key.pop(ch.presence_key, None)
        if not by_key:
            self.presence.pop(ch.room, None)
        if entry is None:
            return {}
        return {ch.presence_key: {"metas": [entry[1]]}}

    def _presence_diff(self, topic: str, joins: dict[str, Any], leaves: dict[str, Any]) -> None:
        msg = pr.push(pr.wire_topic(topic), "presence_diff", {"joins": joins, "leaves": leaves})
        for ch in list(self.topics.get(topic, ())):
            if ch.config.presence_enabled and ch.rights.presence_read:
                ch.push(msg)
