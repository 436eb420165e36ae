"""Cross-process fan-out over Redis Streams (used when MADBASE_REALTIME_REDIS_URL is set).

Why Redis rather than NATS: redis-py (with its asyncio client) is already a dependency of the stack, a
Redis server is the usual companion of a self-hosted deployment, and Streams give an ordered log that a
reader resumes from its own cursor after a disconnect — nothing is silently lost on a network blip.

Two kinds of stream:
- the **transaction log** of each project (`madbase:rt:<ref>:log`): the one replication consumer appends
  every decoded transaction with the stream ID `<commit end LSN>-0` *before* confirming the slot, so the log
  holds each committed change once, in commit order (a transaction replayed by the slot after a consumer
  fail-over has an ID not above the top and is skipped). Every process — the consumer's too — reads the log
  from its own cursor and delivers to its own subscribers (RLS checked locally). Each entry carries the ID of
  the entry before it (`p`), so a reader that finds `p` ≠ its cursor knows entries were lost (trimmed, or
  Redis restarted) and reports it. Before handing a batch to its sockets a process stores its cursor
  (`madbase:rt:<ref>:node:<node>`): after a kill -9 that is how far its subscribers were served, and a
  client re-joining on another process is replayed the log from there.
- the **bus** (`madbase:rt:bus`) for broadcasts, presence diffs/sync requests and node heartbeats. Messages
  are queued locally and written in order by one task (kept and retried while Redis is unreachable); each
  carries a per-node sequence number `q`, so a reader that misses messages (trimmed while it was away)
  detects the gap and reports it instead of staying silent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
import structlog

from madbase.core import jsonutil
from madbase.realtime.pgoutput import UNCHANGED, Column, Relation, Value
from madbase.realtime.replication import Change, Transaction

log = structlog.get_logger("madbase.realtime")
BUS = "madbase:rt:bus"
_BUS_MAXLEN = 10_000
_OUTBOX_MAX = 100_000  # messages kept while Redis is unreachable; beyond, the oldest go (readers see a gap)
_CURSOR_TTL = 86_400
# KEYS[1] = log; ARGV = maxlen, then (lsn, data) pairs. The top survives trimming (last-generated-id), so
# `p` is the true predecessor; LSNs stay below 2^53, exact as Lua numbers, and are written as given (strings).
_APPEND = """
local top = '0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then top = string.match(info[i + 1], '^(%d+)') end
  end
end
local added = 0
for i = 2, #ARGV, 2 do
  if tonumber(ARGV[i]) > tonumber(top) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0', 'p', top, 'd', ARGV[i + 1])
    top = ARGV[i]
    added = added + 1
  end
end
return added
"""
Handler = Callable[[str, dict[str, Any]], Awaitable[None] | None]


def log_key(ref: str) -> str:
    return f"madbase:rt:{ref}:log"


def cursor_key(ref: str, node: str) -> str:
    return f"madbase:rt:{ref}:node:{node}"


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


@dataclass(frozen=True, slots=True)
class LogEntry:
    lsn: int  # the entry's ID (commit end LSN)
    prev: int  # the ID of the entry appended before it (0: none)
    txn: Transaction


def _entry_lsn(entry_id: bytes | str) -> int:
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.split("-", 1)[0])


def _entries(raw: list[Any]) -> list[LogEntry]:
    out: list[LogEntry] = []
    for entry_id, fields in raw:
        out.append(LogEntry(_entry_lsn(entry_id), int(fields[b"p"]), decode_transaction(jsonutil.loads(fields[b"d"]))))
    return out


class Fanout:
    def __init__(self, url: str, node: str, handler: Handler, *, log_maxlen: int = 100_000) -> None:
        self.url = url
        self.node = node
        self.handler = handler
        self.log_maxlen = log_maxlen
        self.client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()
        self.node_seen: dict[str, float] = {}
        self._seq = 0
        self._node_seq: dict[str, int] = {}
        self._outbox: deque[bytes] = deque()
        self._outbox_wake = asyncio.Event()
        self.bus_gaps = 0

    @property
    def c(self) -> aioredis.Redis:
        assert self.client is not None
        return self.client

    async def start(self) -> None:
        self.client = aioredis.from_url(self.url)
        self._tasks.append(asyncio.create_task(self._listen(), name="rt-fanout"))
        self._tasks.append(asyncio.create_task(self._writer(), name="rt-fanout-out"))
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

    # -- bus -------------------------------------------------------------------------------------------
    def publish_soon(self, kind: str, ref: str, body: dict[str, Any]) -> None:
        """Queue a bus message; one writer task sends them in order (so sequence numbers arrive in order)."""
        self._seq += 1
        if len(self._outbox) >= _OUTBOX_MAX:
            self._outbox.popleft()
            log.error("realtime_fanout_outbox_overflow", dropped=1)
        self._outbox.append(jsonutil.dumps({"k": kind, "n": self.node, "r": ref, "q": self._seq, **body}))
        self._outbox_wake.set()

    def publish_broadcast(self, ref: str, topic: str, payload: dict[str, Any]) -> None:
        body = dict(payload)
        binary = isinstance(body.get("payload"), bytes | bytearray)
        if binary:
            body["payload"] = base64.b64encode(bytes(body["payload"])).decode()
        self.publish_soon("b", ref, {"t": topic, "p": body, "bin": binary})

    async def _writer(self) -> None:
        while True:
            await self._outbox_wake.wait()
            self._outbox_wake.clear()
            while self._outbox:
                batch = list(self._outbox)[:500]
                try:
                    pipe = self.c.pipeline(transaction=False)
                    for data in batch:
                        pipe.xadd(BUS, {"d": data}, maxlen=_BUS_MAXLEN, approximate=True)
                    await pipe.execute()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # keep the messages and retry: a Redis blip must not lose them
                    log.warning("realtime_fanout_publish_failed", error=str(exc), pending=len(self._outbox))
                    await asyncio.sleep(1.0)
                    continue
                for _ in batch:
                    self._outbox.popleft()

    async def _heartbeat(self) -> None:
        while True:
            self.publish_soon("h", "", {})
            await asyncio.sleep(5.0)

    async def _top_id(self, key: str) -> bytes:
        last: Any = await self.c.xrevrange(key, count=1)
        return bytes(last[0][0]) if last else b"0-0"

    async def _listen(self) -> None:
        cursor: bytes | None = None
        while True:
            try:
                if cursor is None:
                    cursor = await self._top_id(BUS)
                self.connected.set()
                resp: Any = await self.c.xread({BUS: cursor}, block=2000, count=1000)
                for _key, entries in resp or ():
                    for entry_id, fields in entries:
                        cursor = bytes(entry_id)
                        await self._on_bus(jsonutil.loads(fields[b"d"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect and resume from the cursor: nothing published meanwhile is lost
                log.warning("realtime_fanout_failed", error=str(exc))
                await asyncio.sleep(1.0)

    async def _on_bus(self, data: dict[str, Any]) -> None:
        node = str(data.get("n"))
        if node == self.node:
            return
        self.node_seen[node] = time.monotonic()
        seq = int(data.get("q") or 0)
        last = self._node_seq.get(node)
        if last is not None and seq <= last:
            return  # sent again after a publish that failed half-way (at-least-once): already handled
        if last is not None and seq != last + 1:
            self.bus_gaps += 1
            log.error("realtime_fanout_gap", node=node, expected=last + 1, got=seq)
            result = self.handler("gap", {"n": node, "missed": max(0, seq - last - 1)})
            if result is not None:
                await result
        self._node_seq[node] = seq
        if data.get("k") == "b" and data.get("bin"):
            data["p"]["payload"] = base64.b64decode(data["p"]["payload"])
        result = self.handler(str(data.get("k")), data)
        if result is not None:
            await result

    # -- transaction log -------------------------------------------------------------------------------
    async def log_top(self, ref: str) -> int:
        return _entry_lsn(await self._top_id(log_key(ref)))

    async def append_transactions(self, ref: str, txns: list[Transaction]) -> None:
        """Append to the project's log (IDs = commit end LSNs); called before the slot is confirmed. One
        script call, atomic in Redis: skips transactions already in the log (replayed by the slot after a
        consumer fail-over) and links each entry to the previous one (`p`)."""
        args: list[str | bytes | int] = [self.log_maxlen]
        for txn in txns:
            args += [str(txn.end_lsn), jsonutil.dumps(encode_transaction(txn))]
        if len(args) > 1:
            await self.c.eval(_APPEND, 1, log_key(ref), *args)

    async def read_log(self, ref: str, after: int, block_ms: int, count: int = 500) -> list[LogEntry]:
        resp: Any = await self.c.xread({log_key(ref): f"{after}-0"}, block=block_ms, count=count)
        return [e for _key, raw in resp or () for e in _entries(raw)]

    async def log_range(self, ref: str, after: int, upto: int) -> list[LogEntry]:
        """Entries with after < LSN ≤ upto, in order."""
        out: list[LogEntry] = []
        while after < upto:
            raw: Any = await self.c.xrange(log_key(ref), min=f"({after}-0", max=f"{upto}-0", count=1000)
            if not raw:
                break
            page = _entries(raw)
            out.extend(page)
            after = page[-1].lsn
        return out

    async def save_cursor(self, ref: str, lsn: int) -> None:
        await self.c.set(cursor_key(ref, self.node), str(lsn), ex=_CURSOR_TTL)

    async def node_cursor(self, ref: str, node: str) -> int | None:
        raw = await self.c.get(cursor_key(ref, node))
        return int(raw) if raw is not None else None
