"""A minimal raw Phoenix client for precise protocol assertions (the real clients are tested elsewhere)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class RawClient:
    def __init__(self, ws: ClientConnection, vsn: str) -> None:
        self.ws = ws
        self.vsn = vsn
        self.refs = itertools.count(1)
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base_url: str, apikey: str, vsn: str = "2.0.0") -> RawClient:
        url = base_url.replace("http", "ws", 1) + f"/realtime/v1/websocket?apikey={apikey}&vsn={vsn}"
        ws = await connect(url, compression=None, max_size=None)
        return cls(ws, vsn)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    await self.inbox.put(("binary", frame))
                    continue
                data = json.loads(frame)
                if isinstance(data, list):
                    data = dict(zip(("join_ref", "ref", "topic", "event", "payload"), data, strict=True))
                await self.inbox.put(data)
        except Exception:
            pass
        await self.inbox.put(("closed", None))

    async def push(self, topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
        ref = str(next(self.refs))
        if event == "phx_join":
            join_ref = ref
        if self.vsn == "2.0.0":
            await self.ws.send(json.dumps([join_ref, ref, topic, event, payload]))
        else:
            await self.ws.send(json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref,
                                           "join_ref": join_ref}))
        return ref

    async def next(self, seconds: float = 5.0, *, skip_events: tuple[str, ...] = ()) -> Any:
        while True:
            item = await asyncio.wait_for(self.inbox.get(), seconds)
            if isinstance(item, dict) and item.get("event") in skip_events:
                continue
            return item

    async def until(self, pred: Any, seconds: float = 10.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            item = await asyncio.wait_for(self.inbox.get(), max(0.01, deadline - loop.time()))
            if pred(item):
                return item

    async def join(self, topic: str, config: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"config": {"broadcast": {"self": False, "ack": False},
                                              "presence": {"key": "", "enabled": False},
                                              "postgres_changes": [], "private": False, **config}}
        if token:
            payload["access_token"] = token
        ref = await self.push(topic, "phx_join", payload, join_ref=None)
        self.join_ref = ref
        reply = await self.until(lambda m: isinstance(m, dict) and m.get("event") == "phx_reply"
                                 and m.get("ref") == ref)
        return dict(reply)

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
