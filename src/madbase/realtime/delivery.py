"""Delivery of postgres_changes: match, authorise, RLS-check in batches, serialize, then hand off.

`prepare` (awaits) turns a batch of consecutive transactions into `PreparedChange`s: each change's matching
subscriptions, gated by `authz.deliverable` with the role's current privileges, then — on tables with RLS,
for INSERT/UPDATE — ONE database call for every (row, distinct role+claims group) pair of the whole batch
(`rls.Visibility.check_batch`), never one per subscriber; payloads are serialized once per (role, select).
`hand_off` (never awaits) then puts every change of the batch into its subscribers' queues or ghost
buffers, so nothing of a batch reaches a socket before all of it is queued and its LSN can be confirmed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import asyncpg
import orjson

from madbase.realtime import protocol as pr
from madbase.realtime.authz import deliverable
from madbase.realtime.channel import Channel, Subscription
from madbase.realtime.ghosts import Ghosts
from madbase.realtime.matching import SubscriptionIndex, matching_among
from madbase.realtime.payload import commit_ts_text, record_json, typed_row
from madbase.realtime.pgoutput import Relation
from madbase.realtime.replication import Change, Transaction
from madbase.realtime.rls import RowCheck, TableInfo, Visibility
from madbase.realtime.values import BUILTIN_TYPE_NAMES

_NO_PK_ERROR = "Error 400: Bad Request, no primary key"


class Group(NamedTuple):
    """Subscribers that see the same rows: one RLS answer per (row, group)."""

    role: str
    claims_json: str


class Pending(NamedTuple):
    """A matched change waiting for the batch's RLS answers."""

    change: Change
    commit_ts: str
    commit_lsn: int
    subs: list[Subscription]  # empty: a realtime.messages row (a database broadcast)
    info: TableInfo
    checks: dict[Group, int]  # group → index of its RowCheck (RLS-checked changes only)


class Ready(NamedTuple):
    """One subscriber's serialized change, with the claims it was checked with."""

    sub: Subscription
    payload: bytes
    claims_json: str


class PreparedChange(NamedTuple):
    change: Change
    commit_lsn: int
    subs: list[Subscription]
    items: list[Ready]


class Delivery:
    def __init__(self, index: SubscriptionIndex, ghosts: Ghosts, visibility: Visibility,
                 pool: Callable[[], Awaitable[asyncpg.Pool]], on_message_row: Callable[[Change], None]) -> None:
        self.index = index
        self.ghosts = ghosts
        self.visibility = visibility
        self._pool = pool
        self._on_message_row = on_message_row  # a realtime.messages insert: a database broadcast
        self._relations: dict[int, Relation] = {}
        self._type_names: dict[int, str] = dict(BUILTIN_TYPE_NAMES)
        self.delivered = 0

    async def prepare(self, txns: list[Transaction], only: list[Subscription] | None = None
                      ) -> list[PreparedChange]:
        """Match, authorise, RLS-check and serialize a batch; `only`: replay for these subscriptions alone."""
        work: list[Pending] = []
        groups: dict[Group, int] = {}
        checks: list[RowCheck] = []
        for txn in txns:
            commit_ts = commit_ts_text(txn.commit_time)
            for change in txn.changes:
                rel = change.relation
                if self._relations.get(rel.relation_id) != rel:
                    self._relations[rel.relation_id] = rel
                    self.visibility.invalidate(rel.relation_id)
                if rel.namespace == "realtime" and rel.name == "messages":
                    if change.kind == "INSERT" and only is None:
                        work.append(Pending(change, commit_ts, txn.commit_lsn, [], TableInfo(False, ()), {}))
                    continue
                subs = self.index.matching(change) if only is None else matching_among(change, only)
                if not subs:
                    continue
                info = await self.visibility.table(rel.relation_id)
                subs = await self._authorized(rel.relation_id, change.kind, info, subs)
                if not subs:
                    continue
                needs_check: dict[Group, int] = {}
                if info.pk and info.rls_enabled and change.kind != "DELETE":
                    typed = typed_row(change)
                    pk_vals = [typed.get(c, (0, None))[1] for c in info.pk]
                    for sub in subs:
                        group = Group(sub.role, sub.claims_json)
                        if group not in needs_check:
                            needs_check[group] = len(checks)
                            checks.append(RowCheck(groups.setdefault(group, len(groups) + 1), rel.relation_id,
                                                   pk_vals))
                work.append(Pending(change, commit_ts, txn.commit_lsn, subs, info, needs_check))
        flags: list[bool] = []
        if checks:
            ordered = sorted(groups, key=groups.__getitem__)
            flags = await self.visibility.check_batch(checks, [g.role for g in ordered],
                                                      [g.claims_json for g in ordered], sorted({t.xid for t in txns}))
        return [PreparedChange(p.change, p.commit_lsn, p.subs, await self._serialize(p, flags) if p.subs else [])
                for p in work]

    async def _authorized(self, relation_id: int, kind: str, info: TableInfo, subs: list[Subscription]
                          ) -> list[Subscription]:
        """The matched subscriptions whose role may learn of this change at all (authz.deliverable): checked
        with the role's current privileges before any RLS check, so neither an event nor its absence depends
        on what the role cannot read."""
        allowed: dict[str, frozenset[str]] = {}
        out: list[Subscription] = []
        for sub in subs:
            cols = allowed.get(sub.role)
            if cols is None:
                cols = allowed[sub.role] = await self.visibility.columns(relation_id, sub.role)
            if deliverable(sub.filter, cols, info, kind):
                out.append(sub)
        return out

    async def _serialize(self, pending: Pending, flags: list[bool]) -> list[Ready]:
        """The serialized payload for every subscription that may see this change (one per role + select)."""
        change, info = pending.change, pending.info
        checked = info.pk and info.rls_enabled and change.kind != "DELETE"
        by_shape: dict[tuple[str, tuple[str, ...] | None], bytes] = {}
        out: list[Ready] = []
        for sub in pending.subs:
            if checked:
                idx = pending.checks.get(Group(sub.role, sub.claims_json))
                if idx is None or not flags[idx]:
                    continue
            shape = (sub.role, sub.binding.select)
            payload = by_shape.get(shape)
            if payload is None:
                payload = by_shape[shape] = orjson.dumps(
                    await self._payload(change, info, sub.role, pending.commit_ts, sub.binding.select))
            out.append(Ready(sub, payload, sub.claims_json))
        return out

    def hand_off(self, prepared: list[PreparedChange]) -> None:
        """Nothing awaits here: every change of the batch reaches the queues (and ghost buffers) before any
        frame is written, and the consumer confirms right after — a crash cannot deliver twice."""
        for change, commit_lsn, subs, items in prepared:
            if subs:
                self._push(items, commit_lsn)
            else:
                self._on_message_row(change)

    def _push(self, items: list[Ready], commit_lsn: int) -> None:
        """Hand one change to its subscribers' queues, one frame per channel listing the matched binding ids."""
        by_channel: dict[int, tuple[Channel, list[int], bytes]] = {}
        for sub, payload, checked_claims in items:
            if sub.claims_json != checked_claims:
                continue  # its access token changed while the batch was checked: decided for someone else
            target = sub.live()
            if commit_lsn < target.skip_before:
                continue  # replayed after a crash, but this subscriber had it already
            ch = target.channel
            if ch is None:
                self.ghosts.buffer(target, payload, commit_lsn)
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

    async def _type_name(self, oid: int) -> str:
        name = self._type_names.get(oid)
        if name is None:
            async with (await self._pool()).acquire() as conn:
                name = await conn.fetchval("select typname from pg_type where oid = $1::oid", oid) or "unknown"
            self._type_names[oid] = name
        return name

    async def _payload(self, change: Change, info: TableInfo, role: str, commit_ts: str,
                       select: tuple[str, ...] | None) -> dict[str, Any]:
        rel, pk = change.relation, info.pk
        allowed = await self.visibility.columns(rel.relation_id, role)  # covers the key (_authorized)
        if select is not None:
            allowed = allowed & (set(select) | set(pk))
        columns = [{"name": c.name, "type": await self._type_name(c.type_oid)}
                   for c in rel.columns if c.name in allowed]
        data: dict[str, Any] = {"schema": rel.namespace, "table": rel.name, "commit_timestamp": commit_ts,
                                "type": change.kind, "columns": columns,
                                "errors": None if pk else [_NO_PK_ERROR]}
        if change.kind in ("INSERT", "UPDATE"):
            data["record"] = record_json(rel, change.new, allowed)
        keys = {c.name for c in rel.columns if c.is_key}
        if change.kind == "UPDATE":
            if change.old is not None:
                data["old_record"] = record_json(rel, change.old, allowed & keys if change.old_key_only else allowed)
            else:
                data["old_record"] = record_json(rel, change.new, allowed & set(pk))
        elif change.kind == "DELETE":
            keep = allowed & set(pk) if info.rls_enabled else allowed
            if change.old_key_only:
                keep = keep & keys
            data["old_record"] = record_json(rel, change.old, keep)
        return data
