"""The realtime ASGI app: route table, per-project hubs, HTTP broadcast endpoints, lifecycle.

Routes (below `/realtime/v1`):
  WS   /websocket                                  Phoenix channels (vsn 1.0.0 and 2.0.0)
  POST /api/broadcast                              {"messages":[{topic,event,payload,private}]} → 202
  POST /api/broadcast/{name}/events/{event}        JSON or binary body → 202
  GET  /api/status                                 service_role only: sockets, subscriptions, WAL lag
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from madbase.core import jsonutil
from madbase.core.context import RequestContext, get_context
from madbase.core.types import Receive, Scope, Send
from madbase.realtime import protocol as pr
from madbase.realtime.channel import Channel
from madbase.realtime.config import RealtimeSettings
from madbase.realtime.hub import ProjectHub
from madbase.realtime.limits import PAYLOAD_TOO_LARGE, payload_size
from madbase.realtime.rls import may_access_topic
from madbase.realtime.socket import Connection
from madbase.realtime.store import slot_name

if TYPE_CHECKING:
    from madbase.core.runtime import Runtime
    from madbase.realtime.fanout import Fanout

log = structlog.get_logger("madbase.realtime")
PREFIX = "/realtime/v1"
# Whole request body (Plug's default parser limit); each message's payload is limited per project.
_MAX_BODY = 8_000_000


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
        return self._http(scope, receive, send, path)

    async def _http(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method = scope["method"]
        parts = [unquote(x) for x in path.strip("/").split("/")]
        if method == "POST" and parts == ["api", "broadcast"]:
            await self._broadcast_api(scope, receive, send)
        elif method == "POST" and len(parts) == 5 and parts[:2] == ["api", "broadcast"] and parts[3] == "events":
            await self._broadcast_one(scope, receive, send, parts[2], parts[4])
        elif method == "GET" and parts == ["api", "status"]:
            await self._status(scope, send)
        else:
            await _json(send, 404, {"message": "Not found"})

    def _websocket(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        ctx = get_context(scope)
        conn = Connection(self, self.hub_for(ctx), ctx, _vsn(scope), send)
        return conn.run(receive)

    async def _body(self, receive: Receive, send: Send) -> bytes | None:
        """The request body, or None once a too-large body has been answered with 413."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > _MAX_BODY:
                await _json(send, 413, {"message": "Payload too large"})
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    async def _may_send_private(self, ctx: RequestContext, hub: ProjectHub, name: str) -> bool:
        if ctx.auth.role == "service_role":
            return True
        await hub.ready()
        pool = await hub.pool()
        return await may_access_topic(pool, name, "broadcast", ctx.auth.role, ctx.auth.claims_json, write=True)

    async def _broadcast_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        raw = await self._body(receive, send)
        if raw is None:
            return
        try:
            body = jsonutil.loads(raw)
        except (ValueError, jsonutil.JSONDecodeError):
            await _json(send, 400, {"message": "Invalid JSON body"})
            return
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            await _json(send, 422, {"message": "messages must be a list"})
            return
        hub = self.hub_for(ctx)
        for item in messages:
            if not isinstance(item, dict) or not isinstance(item.get("topic"), str) \
                    or not isinstance(item.get("event"), str):
                await _json(send, 422, {"message": "each message needs a topic and an event"})
                return
        limits = hub.limits
        sizes = [payload_size(item.get("payload", {})) for item in messages]
        if any(size > limits.max_payload_bytes for size in sizes):
            # Supabase's changeset errors, one entry per message; the status is 413 (Payload Too Large).
            errors = [{"payload": [PAYLOAD_TOO_LARGE]} if size > limits.max_payload_bytes else {} for size in sizes]
            await _json(send, 413, {"message": PAYLOAD_TOO_LARGE, "errors": {"messages": errors}})
            return
        if not await _rate_ok(send, hub, len(messages)):
            return
        for item in messages:
            name = item["topic"].removeprefix("realtime:")
            if item.get("private") and not await self._may_send_private(ctx, hub, name):
                continue
            payload = {"type": "broadcast", "event": item["event"], "payload": item.get("payload", {})}
            self.broadcast(hub, pr.room_of("realtime:" + name, bool(item.get("private"))), payload)
        await _empty(send, 202)

    async def _broadcast_one(self, scope: Scope, receive: Receive, send: Send, name: str, event: str) -> None:
        ctx = get_context(scope)
        raw = await self._body(receive, send)
        if raw is None:
            return
        headers = dict(scope["headers"])
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        payload: Any
        if ctype.startswith("application/json"):
            try:
                payload = jsonutil.loads(raw) if raw else {}
            except jsonutil.JSONDecodeError:
                await _json(send, 400, {"message": "Invalid JSON body"})
                return
        else:
            payload = raw
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        hub = self.hub_for(ctx)
        if payload_size(payload) > hub.limits.max_payload_bytes:
            await _json(send, 413, {"message": PAYLOAD_TOO_LARGE, "errors": {"payload": [PAYLOAD_TOO_LARGE]}})
            return
        if not await _rate_ok(send, hub, 1):
            return
        private = (query.get("private") or ["false"])[0] == "true"
        if private and not await self._may_send_private(ctx, hub, name):
            await _json(send, 403, {"message": "You do not have permissions to write to this Channel topic"})
            return
        self.broadcast(hub, pr.room_of("realtime:" + name, private),
                       {"type": "broadcast", "event": event, "payload": payload})
        await _empty(send, 202)

    async def _status(self, scope: Scope, send: Send) -> None:
        ctx = get_context(scope)
        if ctx.auth.role != "service_role":
            await _json(send, 403, {"message": "service_role required"})
            return
        hub = self.hubs.get(ctx.project.ref)
        body: dict[str, Any] = {"node": self.node, "sockets": self.sockets}
        if hub is not None:
            body.update({
                "topics": len(hub.topics),
                "subscriptions": len(hub.index),
                "ghosts": len(hub.ghosts),
                "consumer": hub.consumer_running,
                "slot": hub.store.slot, "lag_bytes": hub.lag_bytes, "lagging": hub.lagging,
                "delivered": hub.delivery.delivered, "replication_error": hub.pg_error, "log_gaps": hub.log_gaps,
            })
        await _json(send, 200, body)


async def _rate_ok(send: Send, hub: ProjectHub, count: int) -> bool:
    """The project's messages-per-second limit for HTTP broadcasts (Supabase's 429 messages)."""
    limit = hub.limits.events_per_second
    if hub.events_rate.take(limit, count):
        return True
    message = ("Too many messages to broadcast, please reduce the batch size" if count > 1
               and hub.events_rate.count < limit else "You have exceeded your rate limit")
    await _json(send, 429, {"message": message})
    return False


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


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = jsonutil.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


async def _empty(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def build(runtime: Runtime) -> RealtimeApp:
    return RealtimeApp(runtime)


