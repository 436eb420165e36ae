"""Which subscriptions a change matches: the per-table subscription index (pure, no I/O).

Subscriptions are indexed by (schema, table) — `table` None for schema-wide ones. Those whose filter is a
single `col=eq.value` are also indexed by the value typed like the column, so a change on a table with
thousands of per-user subscriptions looks its row's value up instead of testing every filter.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from madbase.realtime.channel import Subscription, TableKey
from madbase.realtime.payload import filter_value, typed_row
from madbase.realtime.pgoutput import Relation
from madbase.realtime.replication import Change
from madbase.realtime.values import comparable


class EqIndex(NamedTuple):
    """The subscriptions of one table split for matching, valid while the table's relation is unchanged."""

    relation: Relation
    by_value: dict[str, dict[Any, list[Subscription]]]  # column → typed value → `column=eq.value` subscriptions
    others: list[Subscription]  # every other filter (tested one by one)


class SubscriptionIndex:
    def __init__(self) -> None:
        self.by_table: dict[TableKey, set[Subscription]] = {}
        self._eq: dict[TableKey, EqIndex] = {}

    def __len__(self) -> int:
        return sum(len(s) for s in self.by_table.values())

    def add(self, sub: Subscription) -> None:
        key = sub.table_key
        self.by_table.setdefault(key, set()).add(sub)
        self._eq.pop(key, None)

    def remove(self, sub: Subscription) -> None:
        key = sub.table_key
        self._eq.pop(key, None)
        members = self.by_table.get(key)
        if members is not None:
            members.discard(sub)
            if not members:
                del self.by_table[key]

    def _eq_index(self, rel: Relation) -> EqIndex:
        key = TableKey(rel.namespace, rel.name)
        cached = self._eq.get(key)
        if cached is not None and cached.relation == rel:
            return cached
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
        index = self._eq[key] = EqIndex(rel, eq, others)
        return index

    def matching(self, change: Change) -> list[Subscription]:
        """Every indexed subscription whose event, table and filter match the change."""
        rel = change.relation
        eq, others = self._eq_index(rel)[1:]
        wildcard = self.by_table.get(TableKey(rel.namespace, None), ())
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


def matching_among(change: Change, only: list[Subscription]) -> list[Subscription]:
    """The subscriptions of `only` (not indexed: replayed for a re-join) that match the change."""
    rel = change.relation
    subs = [s for s in only if s.binding.schema == rel.namespace and s.binding.table in (None, rel.name)
            and s.wants(change.kind)]
    if subs and any(s.filter is not None for s in subs):
        typed = typed_row(change)
        subs = [s for s in subs if s.filter is None or s.filter.matches(typed)]
    return subs
