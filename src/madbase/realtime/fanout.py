"""Cross-process fan-out over Redis pub/sub (used when MADBASE_REALTIME_REDIS_URL is set).

Why Redis rather than NATS: redis-py (with its asyncio client) is already a dependency of the stack, a
Redis server is the usual companion of a self-hosted deployment, and pub/sub's fire-and-forget, ordered
per-publisher delivery matches what Phoenix PubSub gives Supabase Realtime between nodes. NATS core would
do the same job but adds a client library and a server operators rarely run already.

What travels (one Redis channel, every node ignores its own messages):
- `b` broadcasts (binary payloads base64-encoded);
- `t` decoded transactions from the one replication consumer; each node checks RLS for its own
  subscribers, so the consumer's work does not grow with the number of nodes;
- `p` presence diffs, `s` presence sync requests (a node that starts asks the others for their state),
  `h` node heartbeats (presence of a node silent for 15 s is dropped).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
import structlog

from madbase.core import jsonutil
from madbase.realtime.pgoutput import UNCHANGED, Column, Relation, Value
from madbase.realtime.replication import Change, Transaction

log = structlog.get_logger("madbase.realtime")
CHANNEL = "madbase:realtime"
Handler = Callable[[str, dict[str, Any]], Awaitable[None] | None]


def _tuple_out(values: tuple[Value, ...] | None) -> list[str | bool | None] | None:
    if values is None:
        return None
    return [False if v is UNCHANGED else v for v in values]  # type: ignore[misc]


def _tuple_in(values: list[Any] | None) -> tuple[Value, ...] | None:
    if values is None:
        return None
    return tuple(UNCHANGED if v is False else v for v in values)


def encode_transaction(txn: Transaction) -> dict[str, Any]:
    rels: dict[int, Any] = {}
    changes = []
    for c in txn.changes:
        r = c.relation
        rels[r.relation_id] = [r.namespace, r.name, r.replica_identity,
                               [[col.name, col.type_oid, col.type_modifier, col.is_key] for col in r.columns]]
        changes.append([c.kind, r.relation_id, _tuple_out(c.new), _tuple_out(c.old), c.old_key_only])
    return {"x": txn.xid, "ts": txn.commit_time.isoformat(), "lsn": txn.end_lsn, "cl": txn.commit_lsn,
            "rels": {str(k): v for k, v in rels.items()}, "c": changes}


def decode_transaction(data: dict[str, Any]) -> Transaction:
    rels = {int(k): Relation(int(k), v[0], v[1], v[2], tuple(Column(c[0], c[1], c[2], c[3]) for c in v[3]))
            for k, v in data["rels"].items()}
    txn = Transaction(int(data["x"]), datetime.fromisoformat(data["ts"]), int(data["lsn"]),
                      commit_lsn=int(data.get("cl", 0)))
    for kind, rid, new, old, key_only in data["c"]:
        txn.changes.append(Change(kind, rels[rid], _tuple_in(new), _tuple_in(old), bool(key_only)))
    return txn


class Fanout:
    def __init__(self, url: str, node: str, handler: Handler) -> None:
        self.url = url
        self.node = node
        self.handler = handler
        self.client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()
        self.node_seen: dict[str, float] = {}

    async def start(self) -> None:
        self.client = aioredis.from_url(self.url)
        self._tasks.append(asyncio.create_task(self._listen(), name="rt-fanout"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="rt-fanout-hb"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 5)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.client is not None:
            await self.client.aclose()

    async def publish(self, kind: str, ref: str, body: dict[str, Any]) -> None:
        assert self.client is not None
        await self.client.publish(CHANNEL, jsonutil.dumps({"k": kind, "n": self.node, "r": ref, **body}))

    def publish_soon(self, kind: str, ref: str, body: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self.publish(kind, ref, body))
        task.add_done_callback(_log_failure)

    def publish_broadcast(self, ref: str, topic: str, payload: dict[str, Any]) -> None:
        body = dict(payload)
        binary = isinstance(body.get("payload"), bytes | bytearray)
        if binary:
            body["payload"] = base64.b64encode(bytes(body["payload"])).decode()
        self.publish_soon("b", ref, {"t": topic, "p": body, "bin": binary})

    async def publish_transaction(self, ref: str, txn: Transaction) -> None:
        await self.publish("t", ref, {"txn": encode_transaction(txn)})

    async def _heartbeat(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.publish("h", "", {})
            await asyncio.sleep(5.0)

    async def _listen(self) -> None:
        while True:
            try:
                assert self.client is not None
                pubsub = self.client.pubsub()
                await pubsub.subscribe(CHANNEL)
                self.connected.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = jsonutil.loads(message["data"])
                    if data.get("n") == self.node:
                        continue
                    self.node_seen[str(data.get("n"))] = time.monotonic()
                    if data.get("k") == "b" and data.get("bin"):
                        data["p"]["payload"] = base64.b64decode(data["p"]["payload"])
                    result = self.handler(str(data.get("k")), data)
                    if result is not None:
                        await result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("realtime_fanout_failed", error=str(exc))
                await asyncio.sleep(1.0)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("realtime_fanout_publish_failed", error=str(task.exception()))
