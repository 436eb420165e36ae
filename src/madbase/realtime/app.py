"""The realtime ASGI app: the WebSocket path, per-project hubs, broadcast fan-out, lifecycle.

Routes (below `/realtime/v1`):
  WS   /websocket                                  Phoenix channels (vsn 1.0.0 and 2.0.0)
  HTTP /api/...                                    the broadcast API and status, on the request kit: httpapi.py
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from madbase.core.context import RequestContext, get_context
from madbase.core.kit import Dispatcher
from madbase.core.types import Receive, Scope, Send
from madbase.realtime import protocol as pr
from madbase.realtime.channel import Channel
from madbase.realtime.config import RealtimeSettings
from madbase.realtime.httpapi import KIT, PREFIX, ROUTES, Call
from madbase.realtime.hub import ProjectHub
from madbase.realtime.socket import Connection
from madbase.realtime.store import slot_name

if TYPE_CHECKING:
    from madbase.core.runtime import Runtime
    from madbase.realtime.fanout import Fanout

log = structlog.get_logger("madbase.realtime")


class _Collector(Collector):
    def __init__(self, app: RealtimeApp) -> None:
        self.app = app

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        lag = GaugeMetricFamily("madbase_realtime_slot_lag_bytes", "WAL retained by the realtime slot",
                                labels=["project"])
        subs = GaugeMetricFamily("madbase_realtime_subscriptions", "postgres_changes subscriptions (live+ghost)",
                                 labels=["project"])
        sockets = GaugeMetricFamily("madbase_realtime_sockets", "Open realtime sockets in this process")
        sockets.add_metric([], self.app.sockets)
        # Cross-process messages found missing (log entries trimmed or lost with Redis, bus sequence gaps).
        gaps = CounterMetricFamily("madbase_realtime_fanout_gaps", "Cross-process fan-out gaps detected",
                                   labels=["stream"])
        gaps.add_metric(["bus"], self.app.fanout.bus_gaps if self.app.fanout is not None else 0)
        gaps.add_metric(["log"], sum(h.log_gaps for h in self.app.hubs.values()))
        for ref, hub in self.app.hubs.items():
            if hub.lag_bytes is not None:
                lag.add_metric([ref], hub.lag_bytes)
            subs.add_metric([ref], len(hub.index))
        yield from (lag, subs, sockets, gaps)


class RealtimeApp:
    def __init__(self, runtime: Runtime, settings: RealtimeSettings | None = None) -> None:
        self.runtime = runtime
        self.settings = settings or RealtimeSettings.from_settings(runtime.settings)
        self.node = uuid.uuid4().hex[:16]
        self.hubs: dict[str, ProjectHub] = {}
        self.sockets = 0
        self.fanout: Fanout | None = None
        self._resume_task: asyncio.Task[None] | None = None
        self._http: Dispatcher[Call] = Dispatcher(KIT, ROUTES, functools.partial(Call, self))
        with contextlib.suppress(Exception):
            runtime.metrics.registry.register(_Collector(self))

    async def startup(self) -> None:
        if self.settings.redis_url:
            from madbase.realtime.fanout import Fanout
            self.fanout = Fanout(self.settings.redis_url, self.node, self._on_remote,
                                 log_maxlen=self.settings.log_maxlen)
            await self.fanout.start()
            log.info("realtime_fanout_started", node=self.node)
        self._resume_task = asyncio.create_task(self._resume_projects(), name="rt-resume")

    async def _resume_projects(self) -> None:
        """Projects whose realtime slot exists resume consuming at start, without waiting for a socket: the
        slot keeps WAL while nobody reads it, and orphaned subscriptions should start collecting at once."""
        try:
            refs = self.runtime.projects.active_refs
        except AssertionError:
            return
        for ref in refs:
            try:
                project = self.runtime.projects.resolve(ref)
                pool = await self.runtime.pools.get(project)
                async with pool.acquire() as conn:
                    database = await conn.fetchval("select current_database()")
                    used = await conn.fetchval("select exists(select 1 from pg_replication_slots where slot_name = $1)",
                                               slot_name(str(database)))
                if used and ref not in self.hubs:
                    hub = ProjectHub(self.runtime, project, self.settings, self.node, self.fanout)
                    self.hubs[ref] = hub
                    await hub.ready()
                    log.info("realtime_project_resumed", project_ref=ref)
            except Exception as exc:
                log.warning("realtime_resume_failed", project_ref=ref, error=str(exc))

    async def shutdown(self) -> None:
        if self._resume_task is not None:
            self._resume_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._resume_task
        if self.fanout is not None:
            await self.fanout.close()
        for hub in list(self.hubs.values()):
            await hub.close()
        self.hubs.clear()

    def hub_for(self, ctx: RequestContext) -> ProjectHub:
        hub = self.hubs.get(ctx.project.ref)
        if hub is None or hub.project.record.db_url != ctx.project.record.db_url:
            hub = ProjectHub(self.runtime, ctx.project, self.settings, self.node, self.fanout)
            self.hubs[ctx.project.ref] = hub
        else:
            hub.project = ctx.project
        return hub

    # -- broadcast fan-out -----------------------------------------------------------------------------
    def broadcast(self, hub: ProjectHub, room: str, payload: dict[str, Any], sender: Channel | None = None) -> None:
        """`room`: the topic with its privacy (`protocol.room_of`)."""
        hub.broadcast(room, payload, sender)
        if self.fanout is not None:
            self.fanout.publish_broadcast(hub.project.ref, room, payload)

    def _on_remote(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "gap":  # bus messages of another process were lost: tell the clients, never silent
            for each in self.hubs.values():
                each.report_bus_gap()
            return
        hub = self.hubs.get(str(data.get("r")))
        if hub is None or not hub.started:
            return
        if kind == "b":
            hub.broadcast(str(data["t"]), data["p"])
        elif kind == "p":
            hub.presence.apply_remote(str(data["n"]), str(data["t"]), data.get("j") or {}, data.get("l") or {})
        elif kind == "s":
            hub.presence.share()

    # -- ASGI ------------------------------------------------------------------------------------------
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Plain functions down to Connection.run: the ASGI task of an idle socket holds only that coroutine
        # (not this router's frames, nor the scope with its query string).
        path: str = scope["path"][len(PREFIX):] or "/"
        if scope["type"] == "websocket":
            if path.rstrip("/").endswith("/websocket"):
                return self._websocket(scope, receive, send)
            return _refuse(receive, send)
        return self._http(scope, receive, send)

    def _websocket(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        ctx = get_context(scope)
        conn = Connection(self, self.hub_for(ctx), ctx, _vsn(scope), send)
        return conn.run(receive)


async def _refuse(receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.close", "code": 1008})


def _vsn(scope: Scope) -> str:
    """The Phoenix serializer version asked for in the query string."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    vsn = str((query.get("vsn") or [pr.VSN1])[0])
    if vsn not in (pr.VSN1, pr.VSN2):
        vsn = pr.VSN2 if vsn.startswith("2") else pr.VSN1
    return vsn


def build(runtime: Runtime) -> RealtimeApp:
    return RealtimeApp(runtime)


