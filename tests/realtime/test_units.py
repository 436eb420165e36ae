"""Unit tests without sockets: transaction wire format for fan-out, slow-consumer cut-off, payload building."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from madbase.realtime import protocol as pr
from madbase.realtime.config import RealtimeSettings
from madbase.realtime.fanout import decode_transaction, encode_transaction
from madbase.realtime.payload import commit_ts_text, record_json
from madbase.realtime.pgoutput import UNCHANGED, Column, Relation
from madbase.realtime.replication import Change, Transaction
from madbase.realtime.socket import Connection

REL = Relation(7, "public", "t", "d", (Column("id", 20, -1, True), Column("body", 25, -1, False)))


def test_transaction_roundtrip() -> None:
    txn = Transaction(5, datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), 99,
                      [Change("INSERT", REL, ("1", None)), Change("UPDATE", REL, ("1", UNCHANGED), ("1", None), True),
                       Change("DELETE", REL, None, ("2", None), True)])
    back = decode_transaction(encode_transaction(txn))
    assert back == txn
    assert back.changes[1].new == ("1", UNCHANGED)


def test_commit_ts_andrecord_json() -> None:
    assert commit_ts_text(datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"
    assert record_json(REL, ("1", UNCHANGED), frozenset({"id", "body"})) == {"id": 1}
    assert record_json(REL, ("1", "x"), frozenset({"body"})) == {"body": "x"}


async def test_slow_consumer_is_cut_off() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    app = SimpleNamespace(settings=RealtimeSettings(socket_queue_max=3), sockets=1)
    hub = SimpleNamespace(project=SimpleNamespace(ref="p"))
    conn = Connection(app, hub, None, pr.VSN2, send)  # type: ignore[arg-type]
    conn.channels["realtime:a"] = SimpleNamespace(topic="realtime:a", join_ref="1")  # type: ignore[assignment]
    for i in range(5):
        conn.send(pr.push("realtime:a", "broadcast", {"i": i}))
    assert conn.closing
    frames = list(conn.queue)
    assert frames[-1] is None and "Too many messages queued" in str(frames[0]) and len(frames) == 2
    conn.send(pr.push("realtime:a", "broadcast", {"late": True}))
    assert len(conn.queue) == 2
    drainer = conn._drainer
    assert drainer is not None
    await asyncio.wait_for(drainer, 1)
    assert [m["type"] for m in sent] == ["websocket.send", "websocket.close"] and sent[1]["code"] == 1013
    assert conn.broken and conn._drainer is None


def test_matching_uses_eq_index_and_filters() -> None:
    from madbase.realtime.channel import Subscription
    from madbase.realtime.filters import parse_filter
    from madbase.realtime.matching import SubscriptionIndex

    index = SubscriptionIndex()

    def sub(event: str, table: str | None, filt: str | None) -> Subscription:
        binding = pr.PgBinding(event, "public", table, filt, {}, pr.binding_id(event, "public", table, filt))
        s = Subscription(str(id(binding)), "realtime:x", binding, parse_filter(filt) if filt else None,
                         "anon", "{}", "", None)
        index.add(s)
        return s

    by_id = sub("*", "t", "id=eq.1")
    by_id_padded = sub("INSERT", "t", "id=eq.01")
    by_body = sub("*", "t", "body=eq.x")
    ranged = sub("*", "t", "id=gt.0")
    everything = sub("*", "t", None)
    deletes = sub("DELETE", "t", None)
    schema_wide = sub("INSERT", None, None)
    other_table = sub("*", "u", None)
    got = index.matching(Change("INSERT", REL, ("1", "x")))
    assert set(map(id, got)) == set(map(id, [by_id, by_id_padded, by_body, ranged, everything, schema_wide]))
    got = index.matching(Change("DELETE", REL, None, ("2", None), True))
    assert set(map(id, got)) == set(map(id, [ranged, everything, deletes]))
    index.remove(by_id)
    got = index.matching(Change("UPDATE", REL, ("1", "y")))
    assert set(map(id, got)) == set(map(id, [ranged, everything]))
    assert other_table not in got


async def test_lag_is_reported_once_to_subscribed_channels() -> None:
    from madbase.realtime.channel import Channel
    from madbase.realtime.hub import ProjectHub

    project = SimpleNamespace(ref="p", record=SimpleNamespace(db_url="postgresql://x/y"))
    hub = ProjectHub(SimpleNamespace(), project, RealtimeSettings(max_lag_bytes=100), "node")  # type: ignore[arg-type]
    lag = [5000]

    async def lag_bytes() -> tuple[int, str]:
        return lag[0], "reserved"

    hub.store.lag_bytes = lag_bytes  # type: ignore[method-assign]
    pushed: list[pr.Message] = []
    outlet = SimpleNamespace(send=pushed.append)
    cfg = pr.JoinConfig(name="x")
    with_subs = Channel(outlet, "realtime:x", "1", cfg, "anon", {}, "{}", "k")  # type: ignore[arg-type]
    with_subs.subs = [object()]  # type: ignore[list-item]
    without = Channel(SimpleNamespace(send=lambda m: pushed.append(m) or None), "realtime:y", "2", cfg, "anon",
                      {}, "{}", "k")  # type: ignore[arg-type]
    hub.topics.update({"realtime:x": {with_subs}, "realtime:y": {without}})
    await hub.check_lag()
    await hub.check_lag()
    assert hub.lagging and hub.lag_bytes == 5000
    assert [(m.topic, m.event, m.payload["status"]) for m in pushed] == [("realtime:x", "system", "error")]
    assert "lagging" in pushed[0].payload["message"]
    lag[0] = 10
    await hub.check_lag()
    assert not hub.lagging
