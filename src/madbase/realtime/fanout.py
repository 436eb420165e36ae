"""Cross-process fan-out over Redis pub/sub (used when MADBASE_REALTIME_REDIS_URL is set).

Why Redis: MadBase already speaks to Redis-shaped infrastructure in typical self-hosted stacks, redis-py's
asyncio client is mature and already installed, and pub/sub's fire-and-forget semantics match Phoenix
PubSub's (what Supabase Realtime uses between nodes). Each node publishes on one channel per project and
ignores its own messages. Binary payloads travel base64-encoded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
import structlog

from madbase.core import jsonutil

log = structlog.get_logger("madbase.realtime")
CHANNEL = "madbase:realtime"
OnBroadcast = Callable[[str, str, dict[str, Any]], None]


class Fanout:
    def __init__(self, url: str, node: str, on_broadcast: OnBroadcast) -> None:
        self.url = url
        self.node = node
        self.on_broadcast = on_broadcast
        self.client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.client = aioredis.from_url(self.url)
        self._task = asyncio.create_task(self._listen(), name="rt-fanout")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.client is not None:
            await self.client.aclose()

    def publish_broadcast(self, ref: str, topic: str, payload: dict[str, Any]) -> None:
        body = dict(payload)
        binary = isinstance(body.get("payload"), bytes | bytearray)
        if binary:
            body["payload"] = base64.b64encode(bytes(body["payload"])).decode()
        data = jsonutil.dumps({"n": self.node, "r": ref, "t": topic, "p": body, "b": binary})
        if self.client is not None:
            task = asyncio.ensure_future(self.client.publish(CHANNEL, data))
            task.add_done_callback(_log_failure)

    async def _listen(self) -> None:
        while True:
            try:
                assert self.client is not None
                pubsub = self.client.pubsub()
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = jsonutil.loads(message["data"])
                    if data.get("n") == self.node:
                        continue
                    body = data["p"]
                    if data.get("b"):
                        body["payload"] = base64.b64decode(body["payload"])
                    self.on_broadcast(data["r"], data["t"], body)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("realtime_fanout_failed", error=str(exc))
                await asyncio.sleep(1.0)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("realtime_fanout_publish_failed", error=str(task.exception()))
