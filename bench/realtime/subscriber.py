"""Subscriber worker process for the realtime benchmark: opens its share of the WebSocket clients, joins them,
and records `time.time()` at the receipt of every frame; frames are decoded only after the run, so JSON work
in the client does not queue behind the socket reads. Started with the `spawn` context by `__main__.py`.

Protocol with the parent (one `multiprocessing.Queue` each way is overkill; a Pipe is enough):
  parent → worker: (url, [(topic, table, token, filter)], stop_event) as arguments;
  worker → parent: "ready" once all joins are acknowledged, then, after `stop` is set, the list of latency
  samples in ms (receipt time - the row's `t` column, written by PostgreSQL's clock_timestamp());
  `counts[index]` (shared memory) is the number of postgres_changes frames received so far.
"""

from __future__ import annotations

import asyncio
import json
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


async def join(ws: ClientConnection, topic: str, table: str, tok: str | None, filt: str | None = None) -> None:
    """Join `topic` with one postgres_changes binding on `table` and wait for the ok reply."""
    binding: dict[str, Any] = {"event": "*", "schema": "public", "table": table}
    if filt:
        binding["filter"] = filt
    payload: dict[str, Any] = {"config": {"postgres_changes": [binding]}}
    if tok:
        payload["access_token"] = tok
    await ws.send(json.dumps(["1", "1", topic, "phx_join", payload]))
    while True:
        msg = json.loads(await ws.recv())
        if msg[3] == "phx_reply":
            assert msg[4]["status"] == "ok", msg
            return


Subs = list[tuple[str, str, str | None, str | None]]


async def _run(url: str, subs: Subs, pipe: Connection, stop: Event, counts: Any, index: int) -> None:
    socks = await asyncio.gather(*(connect(url, compression=None, max_size=None, ping_interval=None,
                                           open_timeout=60) for _ in subs))
    for ws, (topic, table, tok, filt) in zip(socks, subs, strict=True):
        await join(ws, topic, table, tok, filt)
    got: list[tuple[float, str | bytes]] = []

    async def reader(ws: ClientConnection) -> None:
        async for frame in ws:
            got.append((time.time(), frame))
            if isinstance(frame, str) and ',"postgres_changes",' in frame:
                counts[index] += 1

    tasks = [asyncio.create_task(reader(ws)) for ws in socks]
    pipe.send("ready")
    await asyncio.to_thread(stop.wait)
    for task in tasks:
        task.cancel()
    for ws in socks:
        await ws.close()
    samples: list[float] = []
    for now, frame in got:
        msg = json.loads(frame)
        if msg[3] == "postgres_changes":
            samples.append((now - msg[4]["data"]["record"]["t"]) * 1000)
    pipe.send(samples)


def main(url: str, subs: Subs, pipe: Connection, stop: Event, counts: Any, index: int) -> None:
    asyncio.run(_run(url, subs, pipe, stop, counts, index))
