"""A lean uvicorn WebSocket protocol class on `websockets`' sans-I/O core (`ServerProtocol`).

uvicorn's own classes (`wsproto`, `websockets-sansio`) cost ≈ 16 KB per idle socket: an `asyncio.Queue`
(three deques of 64 slots each), an `asyncio.Event`, a per-socket ping timer, the retained h11 handshake
state, an instance `__dict__` and the scope with every request header. Realtime keeps thousands of mostly
idle sockets, so this class keeps only what an open socket needs:

- `__slots__`, and everything that is the same for all sockets of a server in one shared `_Shared`;
- received messages go straight to the waiting `receive()` future; a list exists only while the app is
  behind (reading is then paused, as uvicorn does);
- no `Event` for write flow control: a future exists only while the transport is paused;
- keepalive pings come from one sweep per server over all sockets instead of one timer per socket: a socket
  silent for `ws_ping_interval` is pinged, and closed with 1011 if nothing arrives within `ws_ping_timeout`;
- the handshake request and response are dropped once the socket is open; the scope is handed to the app
  and not kept here.

Frame parsing, masking, control frames, the closing handshake, fragment size limits (1009) and protocol
errors (1002) are `websockets`' code; this class adds UTF-8 validation of text messages (1007) and the
ASGI message mapping. See docs/decisions.md.
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import logging
import os
import weakref
from typing import Any, cast
from urllib.parse import unquote

from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Protocol
from websockets.server import ServerProtocol

Message = dict[str, Any]
Data = bytes | bytearray | memoryview

log = logging.getLogger("uvicorn.error")
_EXTENSIONS: dict[str, dict[str, Any]] = {"websocket.http.response": {}}  # read-only, shared by all scopes
_CLOSE_TIMEOUT = 10.0


class _Shared:
    """Per-server state every socket needs; one instance per uvicorn `ServerState`."""

    __slots__ = (
        "__weakref__",
        "app",
        "asgi",
        "connections",
        "default_headers",
        "loop",
        "max_size",
        "ping_interval",
        "ping_timeout",
        "root_path",
        "sweeper",
        "tasks",
    )

    def __init__(self, config: Config, state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        self.app = config.loaded_app
        self.asgi = {"version": config.asgi_version, "spec_version": "2.4"}
        self.connections: set[Any] = cast("set[Any]", state.connections)  # uvicorn types it by its own classes
        self.tasks = state.tasks
        self.default_headers = state.default_headers
        self.loop = loop
        self.max_size = config.ws_max_size
        self.ping_interval = config.ws_ping_interval or 0.0
        self.ping_timeout = config.ws_ping_timeout
        self.root_path = config.root_path
        self.sweeper: asyncio.TimerHandle | None = None

    def start_sweeper(self) -> None:
        if self.ping_interval > 0 and self.sweeper is None:
            self.sweeper = self.loop.call_later(self._tick(), self.sweep)

    def _tick(self) -> float:
        shortest = min(self.ping_interval, self.ping_timeout or self.ping_interval)
        return max(0.5, shortest / 4)

    def sweep(self) -> None:
        """Ping sockets that have been silent for a ping interval; close those that missed their pong."""
        self.sweeper = None
        now = self.loop.time()
        alive = False
        for proto in list(self.connections):
            if isinstance(proto, LeanWebSocket) and proto.is_open():
                alive = True
                proto.keepalive(now, self.ping_interval, self.ping_timeout)
        if alive:
            self.start_sweeper()


_SHARED: weakref.WeakKeyDictionary[ServerState, _Shared] = weakref.WeakKeyDictionary()


class LeanWebSocket(asyncio.Protocol):
    """An ASGI WebSocket connection for uvicorn (`uvicorn.Config(ws=LeanWebSocket)`)."""

    __slots__ = ("_closed", "_frags", "_inbox", "_ping_at", "_response", "_seen", "_shared", "_state", "_waiter",
                 "_write_waiter", "close_sent", "close_timer", "conn", "opened", "read_paused", "transport")

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()  # pragma: no cover - uvicorn loads the config before serving
        shared = _SHARED.get(server_state)
        if shared is None:
            shared = _SHARED[server_state] = _Shared(config, server_state, _loop or asyncio.get_event_loop())
        self._shared = shared
        self._state: dict[str, Any] | None = app_state  # uvicorn's lifespan state, copied into the scope
        self.conn = ServerProtocol(max_size=shared.max_size, logger=log)
        self.transport: asyncio.Transport = cast(asyncio.Transport, None)
        self._inbox: list[Message] | None = None  # messages the app has not asked for yet
        self._waiter: asyncio.Future[Message] | None = None  # the app's pending receive()
        self._write_waiter: asyncio.Future[None] | None = None  # a send() waiting for the paused transport
        self._closed: Message | None = None  # the disconnect message, repeated to every later receive()
        self._frags: list[Data] | None = None  # data of an unfinished fragmented message
        self._response: Response | None = None  # the 101 response until the app accepts
        self._seen = 0.0  # loop time of the last received data (keepalive)
        self._ping_at = 0.0  # loop time of the unanswered keepalive ping, 0 if none
        self.opened = False  # the app accepted and the 101 response was sent
        self.close_sent = False
        self.read_paused = False
        self.close_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._shared.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._shared.connections.discard(self)
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        rcvd = self.conn.close_rcvd
        self._disconnect(rcvd.code if rcvd is not None else 1006, rcvd.reason if rcvd is not None else "")
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool | None:
        return None  # let the transport close itself

    def pause_writing(self) -> None:
        if self._write_waiter is None:
            self._write_waiter = self._shared.loop.create_future()

    def resume_writing(self) -> None:
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._shared.ping_interval:
            self._seen = self._shared.loop.time()
            self._ping_at = 0.0
        conn = self.conn
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Request):
                self._handshake(event)
        if conn.parser_exc is not None and self._closed is None:
            sent = conn.close_sent
            self._disconnect(sent.code if sent is not None else 1002, sent.reason if sent is not None else "")
        self._flush()

    # -- incoming ----------------------------------------------------------------------------------------
    def _frame(self, frame: Frame) -> None:
        op = frame.opcode
        if op is Opcode.TEXT or op is Opcode.BINARY:
            if frame.fin:
                self._message(op is Opcode.TEXT, frame.data)
            else:
                self._frags = [b"T" if op is Opcode.TEXT else b"B", frame.data]
        elif op is Opcode.CONT:
            frags = self._frags
            if frags is None:  # pragma: no cover - websockets rejects an unexpected continuation frame
                return
            frags.append(frame.data)
            if frame.fin:
                self._frags = None
                self._message(frags[0] == b"T", b"".join(frags[1:]))
        elif op is Opcode.CLOSE:
            rcvd = self.conn.close_rcvd
            self._disconnect(rcvd.code if rcvd is not None else 1005, rcvd.reason if rcvd is not None else "")
        # PING: websockets queued the pong; PONG: data_received already cleared the keepalive deadline

    def _message(self, text: bool, data: Data) -> None:
        if self.close_sent or self._closed is not None:
            return  # the app is past websocket.close: discard until the peer's close arrives
        if text:
            try:
                value = str(data, "utf-8")
            except UnicodeDecodeError:
                self.conn.fail(1007, "invalid UTF-8 in a text message")
                self._disconnect(1007, "invalid UTF-8 in a text message")
                return
            self._deliver({"type": "websocket.receive", "text": value})
        else:
            self._deliver({"type": "websocket.receive", "bytes": data if isinstance(data, bytes) else bytes(data)})

    def _deliver(self, message: Message) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_result(message)
            return
        if self._inbox is None:
            self._inbox = [message]
        else:
            self._inbox.append(message)
        if not self.read_paused and self.transport is not None and not self.transport.is_closing():
            self.read_paused = True
            self.transport.pause_reading()

    def _disconnect(self, code: int, reason: str) -> None:
        if self._closed is None:
            self._closed = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self._deliver(self._closed)

    def receive(self) -> asyncio.Future[Message]:
        """ASGI receive: a plain future rather than a coroutine, so an idle socket holds no extra frame."""
        loop = self._shared.loop
        future: asyncio.Future[Message] = loop.create_future()
        inbox = self._inbox
        if inbox:
            future.set_result(inbox.pop(0))
            if not inbox:
                self._inbox = None
                if self.read_paused:
                    self.read_paused = False
                    if not self.transport.is_closing():
                        self.transport.resume_reading()
        elif self._closed is not None:
            future.set_result(self._closed)
        else:
            self._waiter = future
        return future

    # -- handshake ---------------------------------------------------------------------------------------
    def _handshake(self, request: Request) -> None:
        shared = self._shared
        response = self.conn.accept(request)
        state, self._state = self._state or {}, None
        if response.status_code != 101:
            self.conn.send_response(response)
            self.close_sent = True
            return
        response.headers.pop("Date", None)
        self._response = response
        # websockets' server parser generator keeps the parsed request (all headers, ≈ 2 KB) as a local for
        # the life of the connection; continue with the frame parser of the base class, which reads the same
        # buffer (empty here: uvicorn hands over exactly the request).
        self.conn.parser = Protocol.parse(self.conn)
        next(self.conn.parser)
        raw_path, _, query = request.path.partition("?")
        subprotocols = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        transport = self.transport
        scope: dict[str, Any] = {
            "type": "websocket", "asgi": shared.asgi, "http_version": "1.1",
            "scheme": "wss" if is_ssl(transport) else "ws",
            "server": get_local_addr(transport), "client": get_remote_addr(transport),
            "root_path": shared.root_path, "path": shared.root_path + unquote(raw_path),
            "raw_path": (shared.root_path + raw_path).encode("ascii"), "query_string": query.encode("ascii"),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1", "surrogateescape"))
                        for k, v in request.headers.raw_items()],
            "subprotocols": [p for p in subprotocols if p],
            "state": state.copy(), "extensions": _EXTENSIONS,
        }
        self._inbox = [{"type": "websocket.connect"}]
        # The app's own awaitable becomes the task (no wrapper coroutine kept per socket); outcomes are handled
        # in _finished. With an app that hands back its inner coroutine, nothing here keeps the scope alive.
        try:
            task = asyncio.ensure_future(shared.app(scope, self.receive, self.send), loop=shared.loop)
        except Exception:
            log.exception("Exception in ASGI application\n")
            self._reject(500, b"Internal Server Error")
            self.transport.close()
            return
        shared.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[None]) -> None:
        self._shared.tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None and not isinstance(exc, ClientDisconnected):
            log.error("Exception in ASGI application\n", exc_info=exc)
            self._reject(500, b"Internal Server Error")
        elif exc is None and not self.opened and not self.close_sent:
            log.error("ASGI callable returned without completing handshake.")
            self._reject(500, b"Internal Server Error")
        if self.close_timer is None and not self.transport.is_closing():
            if self.opened and not self.close_sent and self._closed is None:
                self.conn.send_close(1000)
                self._flush()
            self.transport.close()

    def _reject(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        if self.opened or self.close_sent:
            return
        self.close_sent = True
        self._response = None
        response_headers = Headers(headers or [])
        response_headers.setdefault("Date", email.utils.formatdate(usegmt=True))
        response_headers.setdefault("Connection", "close")
        response_headers.setdefault("Content-Length", str(len(body)))
        response_headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else ""
        self.conn.send_response(Response(status, phrase, response_headers, body))
        self._disconnect(1006, "")
        self._flush()

    # -- outgoing ----------------------------------------------------------------------------------------
    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if not out:
            return
        transport = self.transport
        eof = out[-1] == b""  # websockets' marker: the server closes the TCP connection now
        if not transport.is_closing():
            transport.write(b"".join(out))
            if eof:
                transport.close()

    async def send(self, message: Message) -> None:
        if self._write_waiter is not None:
            await self._write_waiter
        if self.transport.is_closing() and self._closed is not None:
            raise ClientDisconnected()
        kind = message["type"]
        if not self.opened and not self.close_sent:
            self._send_before_open(kind, message)
        elif self.opened and not self.close_sent:
            try:
                if kind == "websocket.send":
                    data = message.get("bytes")
                    if data is not None:
                        self.conn.send_binary(data)
                    else:
                        self.conn.send_text(message.get("text", "").encode())
                elif kind == "websocket.close":
                    self.close_sent = True
                    self.conn.send_close(message.get("code", 1000), message.get("reason") or "")
                    self._disconnect(message.get("code", 1000), message.get("reason") or "")
                    if self.read_paused:  # the peer's close reply must be read
                        self.read_paused = False
                        self.transport.resume_reading()
                    self.close_timer = self._shared.loop.call_later(_CLOSE_TIMEOUT, self.transport.close)
                else:
                    raise RuntimeError(f"Expected 'websocket.send' or 'websocket.close', got {kind!r}")
            except InvalidState:
                raise ClientDisconnected() from None
            self._flush()
        else:
            raise ClientDisconnected()

    def _send_before_open(self, kind: str, message: Message) -> None:
        if kind == "websocket.accept":
            response = self._response
            assert response is not None
            self._response = None
            headers = response.headers
            for name, value in [*self._shared.default_headers, *message.get("headers", ())]:
                headers[name.decode("latin-1")] = value.decode("latin-1")
            if message.get("subprotocol"):
                headers["Sec-WebSocket-Protocol"] = message["subprotocol"]
            if self.transport.is_closing():
                return
            self.opened = True
            self._seen = self._shared.loop.time()
            self.conn.send_response(response)
            self._flush()
            self._shared.start_sweeper()
        elif kind == "websocket.close":
            self._reject(403, b"")
        elif kind == "websocket.http.response.start":
            status = message["status"]
            if not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code {status} in response.")
            pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())]
            self._response = Response(status, "", Headers(pairs), b"")
        elif kind == "websocket.http.response.body":
            start = self._response
            if start is None:
                raise RuntimeError("websocket.http.response.body before websocket.http.response.start")
            body = start.body + message.get("body", b"")
            if message.get("more_body"):
                self._response = Response(start.status_code, "", start.headers, body)
                return
            self._reject(start.status_code, body, list(start.headers.raw_items()))
        else:
            raise RuntimeError(f"Expected 'websocket.accept' or 'websocket.close', got {kind!r}")

    # -- keepalive and shutdown --------------------------------------------------------------------------
    def is_open(self) -> bool:
        return self.opened and not self.close_sent and self._closed is None

    def keepalive(self, now: float, interval: float, timeout: float | None) -> None:
        if self._ping_at:
            if timeout is not None and now - self._ping_at >= timeout:
                self.conn.fail(1011, "keepalive ping timeout")
                self.close_sent = True
                self._disconnect(1011, "keepalive ping timeout")
                self._flush()
                self.transport.close()
        elif now - self._seen >= interval:
            self._ping_at = now
            self.conn.send_ping(os.urandom(4))
            self._flush()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: tell the peer the server is restarting (1012)."""
        if self.close_sent or self._closed is not None:
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.transport.close()
            return
        if self.opened:
            self.conn.send_close(1012)
            self._disconnect(1012, "")
            self._flush()
        else:
            self._reject(500, b"Internal Server Error")
        self.close_sent = True
        self.transport.close()
