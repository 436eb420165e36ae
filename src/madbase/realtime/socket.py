"""The WebSocket adapter: one `Connection` per socket, speaking the Phoenix protocol of `protocol.py`.

A reader loop decodes frames and dispatches them (heartbeat, phx_join, phx_leave, broadcast, presence,
access_token); a drain task, alive only while frames are pending, empties a bounded queue to the socket.
A socket whose queue overflows is told why (system message) and disconnected; its postgres_changes
subscriptions survive as ghosts for the grace window, so the client's automatic re-join gets the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog

from madbase.core.context import RequestContext
from madbase.core.types import Message, Receive, Send
from madbase.realtime import join
from madbase.realtime import protocol as pr
from madbase.realtime.authz import check_bindings
from madbase.realtime.channel import Channel, Subscription
from madbase.realtime.limits import payload_size
from madbase.realtime.rls import PUBLIC_RIGHTS, topic_rights
from madbase.realtime.store import PUBLICATION, StoredMessage, new_id

if TYPE_CHECKING:
    from madbase.realtime.app import RealtimeApp
    from madbase.realtime.hub import ProjectHub

log = structlog.get_logger("madbase.realtime")


class Connection:
    # Thousands of idle sockets each hold one of these: no per-instance __dict__.
    __slots__ = ("_drainer", "_max", "_send", "app", "broken", "channels", "closing", "ctx", "hub", "queue",
                 "timers", "tokens", "vsn")

    def __init__(self, app: RealtimeApp, hub: ProjectHub, ctx: RequestContext, vsn: str, send: Send) -> None:
        self.app = app
        self.hub = hub
        self.ctx = ctx
        self.vsn = vsn
        self._send = send
        # Encoded frames waiting for the socket; the deque and a drain task exist only while there is something
        # to send, so an idle socket costs neither (an empty deque is ~600 bytes).
        self.queue: deque[str | bytes | None] | None = None
        self._max = app.settings.socket_queue_max
        self._drainer: asyncio.Task[None] | None = None
        self.broken = False
        self.channels: dict[str, Channel] = {}
        self.tokens: dict[str, str | None] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.closing = False

    # -- outlet ------------------------------------------------------------------------------------------
    def send(self, msg: pr.Message) -> None:
        if self.closing:
            return
        frame = pr.encode(self.vsn, msg)
        if frame is None:
            return
        if self.queue is not None and len(self.queue) >= self._max:
            self._too_slow()
            return
        self._enqueue(frame)

    def _enqueue(self, frame: str | bytes | None) -> None:
        if self.queue is None:
            self.queue = deque()
        self.queue.append(frame)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def _too_slow(self) -> None:
        log.warning("realtime_slow_consumer_disconnected", project_ref=self.hub.project.ref,
                    queued=len(self.queue or ()))
        self.queue = None
        for ch in self.channels.values():
            frame = pr.encode(self.vsn, pr.system(ch.topic, "system", "error",
                                                   "Too many messages queued for this client; disconnecting",
                                                   ch.join_ref))
            if frame is not None:
                self._enqueue(frame)
        self.closing = True
        self._enqueue(None)

    async def _drain(self) -> None:
        try:
            while self.queue:
                frame = self.queue.popleft()
                if not self.queue:
                    self.queue = None
                if frame is None:
                    self.broken = True
                    await self._send({"type": "websocket.close", "code": 1013})
                    return
                if isinstance(frame, bytes):
                    await self._send({"type": "websocket.send", "bytes": frame})
                else:
                    await self._send({"type": "websocket.send", "text": frame})
        except Exception as exc:  # the peer went away mid-send
            log.debug("realtime_socket_send_failed", error=str(exc))
            self.broken = self.closing = True
        finally:
            self._drainer = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def run(self, receive: Receive) -> None:
        """The socket's whole life: the handshake, then one message at a time until it closes."""
        if (await receive())["type"] != "websocket.connect":
            return
        await self._send({"type": "websocket.accept"})
        self.app.sockets += 1
        try:
            # The loop keeps no local between messages: this frame lives as long as the idle socket, and the
            # last decoded message (e.g. the phx_join) would otherwise stay alive with it.
            while not self.broken and await self._handle(await receive()):
                pass
        finally:
            self.closing = True
            for timer in self.timers.values():
                timer.cancel()
            for ch in list(self.channels.values()):
                self.hub.remove_channel(ch, keep=True)
            self.channels.clear()
            self.app.sockets -= 1
            drainer = self._drainer
            if drainer is not None and not drainer.done():
                drainer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await drainer

    async def _handle(self, message: Message) -> bool:
        """Decode and dispatch one ASGI message; False when the socket is gone."""
        kind = message["type"]
        if kind == "websocket.disconnect":
            return False
        if kind != "websocket.receive" or self.closing:
            return True
        try:
            if message.get("bytes") is not None:
                msg = pr.decode_binary(message["bytes"])
            else:
                msg = pr.decode_text(message.get("text") or "")
        except pr.ProtocolError as exc:
            log.info("realtime_bad_frame", error=str(exc))
            return True
        try:
            await self.dispatch(msg)
        except Exception as exc:  # one bad request must not take the socket down
            log.error("realtime_dispatch_failed", event=msg.event, error=str(exc))
            if msg.ref is not None:
                self.send(pr.error_reply(msg, "Internal error: unable to process the request"))
        return True

    async def dispatch(self, msg: pr.Message) -> None:
        if msg.topic == "phoenix":
            if msg.event == "heartbeat":
                self.send(pr.reply(msg))
            return
        event = msg.event
        if event == "phx_join":
            await self._join(msg)
            return
        ch = self.channels.get(msg.topic)
        if ch is None:
            if msg.ref is not None and event != "phx_leave":
                self.send(pr.error_reply(msg, "unmatched topic"))
            elif event == "phx_leave":
                self.send(pr.reply(msg))
            return
        if event == "phx_leave":
            self.send(pr.reply(msg))
            self.send(pr.close(ch.topic, ch.join_ref))
            self._drop(ch, keep=False)
        elif event == "broadcast":
            self._broadcast(ch, msg)
        elif event == "presence":
            self._presence(ch, msg)
        elif event == "access_token":
            await self._access_token(ch, msg)
        elif msg.ref is not None:
            self.send(pr.reply(msg))

    def _drop(self, ch: Channel, *, keep: bool) -> None:
        self.channels.pop(ch.topic, None)
        self.tokens.pop(ch.topic, None)
        timer = self.timers.pop(ch.topic, None)
        if timer is not None:
            timer.cancel()
        self.hub.remove_channel(ch, keep=keep)

    # -- token expiry ------------------------------------------------------------------------------------
    def _schedule_expiry(self, ch: Channel, exp: float | None) -> None:
        old = self.timers.pop(ch.topic, None)
        if old is not None:
            old.cancel()
        if exp is None:
            return
        delay = max(0.0, exp - time.time())
        if delay > 86400 * 30:
            return
        self.timers[ch.topic] = asyncio.get_running_loop().call_later(delay, self._expire, ch)

    def _expire(self, ch: Channel) -> None:
        if self.channels.get(ch.topic) is not ch:
            return
        self.timers.pop(ch.topic, None)
        self.send(pr.system(ch.topic, "system", "error", "Token has expired 0 seconds ago", ch.join_ref))
        self.send(pr.close(ch.topic, ch.join_ref))
        self._drop(ch, keep=False)

    # -- join (the decisions are join.py's; here only the I/O between them) ------------------------------
    def _refuse(self, msg: pr.Message, refusal: join.Refusal) -> None:
        self.send(pr.error_reply(msg, refusal.reason))
        if refusal.close_socket:
            log.warning("realtime_join_refused_closing", project_ref=self.hub.project.ref, reason=refusal.reason)
            self.closing = True
            self._enqueue(None)

    async def _join(self, msg: pr.Message) -> None:
        cfg = join.parse(msg)
        if isinstance(cfg, join.Refusal):
            self._refuse(msg, cfg)
            return
        old = self.channels.get(msg.topic)
        if old is not None:
            self._drop(old, keep=False)
        hub = self.hub
        req = join.admit(cfg, channels_open=len(self.channels), limits=hub.limits, joins_rate=hub.joins_rate,
                         project=self.ctx.project, auth=self.ctx.auth, now=time.time())
        if isinstance(req, join.Refusal):
            self._refuse(msg, req)
            return
        await hub.ready()
        refusal = join.replication_refusal(req, hub.pg_error)
        if refusal is not None:
            self._refuse(msg, refusal)
            return
        who = req.identity
        rights = PUBLIC_RIGHTS
        if cfg.private:
            rights = await topic_rights(await hub.pool(), cfg.name, who.role, who.claims_json)
        refusal = join.rights_refusal(req, rights)
        if refusal is not None:
            self._refuse(msg, refusal)
            return
        replayed: list[StoredMessage] = []
        if cfg.replay is not None:  # private, and the caller may read the topic (checked above)
            try:
                replayed = await hub.store.replay(cfg.name, *cfg.replay)
            except Exception as exc:
                log.error("realtime_replay_failed", error=str(exc))
                self._refuse(msg, join.REPLAY_FAILED)
                return
        ch = Channel(self, msg.topic, msg.join_ref or msg.ref, cfg, who.role, who.claims, who.claims_json,
                     cfg.presence_key or str(uuid.uuid4()), rights=rights,
                     replayed=frozenset(r.id for r in replayed))
        refused = None  # as Supabase: the join succeeds, the subscription is refused by a system message
        if cfg.bindings and hub.pg_error is None:
            try:
                refused = await check_bindings(await hub.pool(), cfg.bindings, req.filters, who.role, PUBLICATION)
            except Exception as exc:
                log.error("realtime_subscription_check_failed", error=str(exc))
                self._refuse(msg, join.DB_UNAVAILABLE)
                return
        if join.subscribes(req, hub.pg_error, refused):
            ch.subs = [Subscription(new_id(), msg.topic, b, f, who.role, who.claims_json, who.sub, ch)
                       for b, f in zip(cfg.bindings, req.filters, strict=True)]
            try:
                await hub.durability.persist(ch.subs)
            except Exception as exc:
                log.error("realtime_persist_failed", error=str(exc))
                self._refuse(msg, join.DB_UNAVAILABLE)
                return
            if self.closing:
                await hub.store.delete([s.id for s in ch.subs])
                return
        if hub.fanout is not None:
            try:
                backlog, replayed_from = await hub.attach(ch)
            except Exception as exc:
                log.error("realtime_attach_failed", error=str(exc))
                hub.remove_channel(ch, keep=False)
                self._refuse(msg, join.LOG_UNAVAILABLE)
                return
            if self.closing:  # gone during the join: keep the claimed backlog for the next re-join
                hub.remove_channel(ch, keep=True, position=replayed_from)
                return
        else:
            backlog = hub.add_channel(ch)
        self.channels[msg.topic] = ch
        self.tokens[msg.topic] = cfg.access_token
        state = hub.presence.state(ch.room) if join.shows_presence(req, rights) else None
        for item in join.accepted(msg, req, join_ref=ch.join_ref, rights=rights, refused=refused,
                                  pg_error=hub.pg_error, presence_state=state, replayed=replayed, backlog=backlog):
            self.send(item)
        self._schedule_expiry(ch, who.exp)

    # -- events on a joined channel --------------------------------------------------------------------
    def _broadcast(self, ch: Channel, msg: pr.Message) -> None:
        body = msg.payload if isinstance(msg.payload, dict) else {}
        event = body.get("event")
        if not isinstance(event, str):
            if msg.ref is not None:
                self.send(pr.error_reply(msg, "broadcast needs an event name"))
            return
        limits = self.hub.limits
        if not self.hub.events_rate.take(limits.events_per_second):
            self._shutdown(ch, "Too many messages per second")
            return
        if payload_size(body.get("payload")) > limits.max_payload_bytes:
            # As Supabase: not sent; only a sender that asked for an ack hears about it.
            log.info("realtime_payload_too_large", project_ref=self.hub.project.ref, topic=ch.topic)
            if ch.config.broadcast_ack and msg.ref is not None:
                self.send(pr.error_reply(msg, "payload_size_exceeded"))
            return
        if not ch.rights.broadcast_write:
            if ch.config.broadcast_ack and msg.ref is not None:
                self.send(pr.error_reply(msg, "Unauthorized: You do not have permissions to write to this "
                                              f"Channel topic: {ch.config.name}"))
            return
        payload: dict[str, Any] = {"type": "broadcast", "event": event, "payload": body.get("payload", {})}
        self.app.broadcast(self.hub, ch.room, payload, sender=ch)
        if ch.config.broadcast_ack and msg.ref is not None:
            self.send(pr.reply(msg))

    def _presence(self, ch: Channel, msg: pr.Message) -> None:
        body = msg.payload if isinstance(msg.payload, dict) else {}
        event = body.get("event")
        limits = self.hub.limits
        if event in ("track", "untrack") and not self.hub.events_rate.take(limits.events_per_second):
            self._shutdown(ch, "Too many presence messages per second")
            return
        if event == "track" and payload_size(body.get("payload")) > limits.max_payload_bytes:
            self._shutdown(ch, "Track message size exceeded")
            return
        if event == "track" and not ch.rights.presence_write:
            self.send(pr.error_reply(msg, "Unauthorized: You do not have permissions to track presence on this "
                                          f"Channel topic: {ch.config.name}"))
            return
        if event == "track":
            state = body.get("payload")
            self.hub.presence.track(ch, state if isinstance(state, dict) else {})
            self.send(pr.reply(msg))
        elif event == "untrack":
            self.hub.presence.untrack(ch)
            self.send(pr.reply(msg))
        else:
            self.send(pr.error_reply(msg, "presence event must be track or untrack"))

    def _shutdown(self, ch: Channel, message: str) -> None:
        """Supabase's channel shutdown: a `system` error saying why, then `phx_close`."""
        log.warning("realtime_channel_shutdown", project_ref=self.hub.project.ref, topic=ch.topic, reason=message)
        self.send(pr.system(ch.topic, "system", "error", message, ch.join_ref))
        self.send(pr.close(ch.topic, ch.join_ref))
        self._drop(ch, keep=False)

    async def _access_token(self, ch: Channel, msg: pr.Message) -> None:
        """A new token for a joined channel: re-authorize everything the channel delivers, as Supabase does —
        private topic (RLS on realtime.messages), postgres_changes identity and filter columns, expiry."""
        token = join.new_token(msg.payload, self.tokens.get(ch.topic))
        if token is None:
            return
        try:
            who = join.identity(self.ctx.project, self.ctx.auth, token, time.time())
        except join.AuthFailure as exc:
            self._shutdown(ch, str(exc))
            return
        self.tokens[ch.topic] = token
        # Another identity: nothing reaches the channel until it is re-authorized (a refreshed token of the
        # same identity keeps delivering meanwhile).
        if not who.same_person(ch.role, ch.claims):
            ch.paused = True
        try:
            answer = await self._recheck(ch, who)
        finally:
            ch.paused = False
        if self.channels.get(ch.topic) is not ch:
            return  # left, expired or closed meanwhile
        if answer.close is not None:
            self._shutdown(ch, answer.close)
            return
        ch.rights = answer.rights
        if not answer.rights.presence_write and ch.presence_ref is not None:
            self.hub.presence.untrack(ch)  # may no longer be present here
        if answer.refused is not None:
            self.hub.drop_subscriptions(ch)
            self.send(pr.system(ch.topic, "postgres_changes", "error", answer.refused, ch.join_ref))
        self.hub.reauthorize(ch, who.role, who.claims, who.claims_json)
        self._schedule_expiry(ch, who.exp)

    async def _recheck(self, ch: Channel, who: join.Identity) -> join.Recheck:
        """Ask the database what the new identity may do here (join.recheck decides)."""
        try:
            pool = await self.hub.pool()
            rights = PUBLIC_RIGHTS
            if ch.config.private:
                rights = await topic_rights(pool, ch.config.name, who.role, who.claims_json)
            refused = None
            if ch.subs and rights.may_join:
                refused = await check_bindings(pool, [s.binding for s in ch.subs], [s.filter for s in ch.subs],
                                               who.role, PUBLICATION)
        except Exception as exc:
            log.error("realtime_reauthorize_failed", error=str(exc))
            return join.recheck(ch.config, None, None)
        return join.recheck(ch.config, rights, refused)
