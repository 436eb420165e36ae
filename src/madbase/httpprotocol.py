"""uvicorn's httptools HTTP/1.1 protocol with the limits it lacks, and the disconnect watch.

uvicorn bounds an h11 request head (`h11_max_incomplete_event_size`) but not an httptools one, and times out
neither a slow head nor a slow body: one client could make the server buffer headers of any size (the parser
binding accumulates them in Python before the app sees anything), send 10,000 headers, or trickle a request a byte
at a time and hold its connection and buffers forever. This subclass, set per server (`protocol_class(limits)`):

- counts the bytes of each request head as they arrive, before they are fed to the parser: a head over
  `max_head_bytes` gets 431; a request target over `max_url_bytes` gets 414; a header line over `max_line_bytes`
  or more than `max_headers` header lines get 431 (as nginx and Kong answer);
- closes a connection whose request head is not complete within `header_timeout` seconds of its first byte (or
  of connecting), and one whose body pauses longer than `body_idle_timeout` or, after its first
  `body_idle_timeout` seconds, averages less than `body_min_rate` bytes/s: 408 when no response has started,
  then the connection is closed (the app sees `http.disconnect`). Time spent while the server itself stopped
  reading (the app is behind) does not count;
- gives every request a `DisconnectWatch` (`scope["madbase.watch"]`, core/requestscope.py) that fires when the
  connection is lost before the response is complete, so the request's database work is cancelled.

Refusals are written straight to the transport as `{"message": ...}` JSON with `connection: close`, the shape
Supabase's gateway uses for its own refusals.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from madbase.core import jsonutil
from madbase.core.requestscope import DisconnectWatch


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_head_bytes: int = 64 * 1024
    max_line_bytes: int = 16 * 1024
    max_url_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_idle_timeout: float = 15.0
    body_min_rate: int = 1024


_MESSAGES = {
    408: "Request timeout",
    414: "Request-URI too long",
    431: "Request header fields too large",
}


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """See the module docstring; `limits` is set on the subclass `protocol_class` makes."""

    limits = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the next bytes belong to a request head
        self._head_bytes = 0
        self._header_count = 0
        self._url_bytes = 0
        self._refused = False
        self._timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_last = 0.0
        self._body_bytes = 0
        self._body_paused = 0.0  # seconds the server itself was not reading

    # -- connection ----------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # a connection that never sends a complete head is closed too (uvicorn arms no timer before a request)
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            watch = cycle.scope.get("madbase.watch")
            if isinstance(watch, DisconnectWatch):
                watch.fire()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._in_head:
            self._feed(data)
            return
        if self._timer is None:  # the first bytes of a request on a kept-alive connection
            self._arm(self.limits.header_timeout, self._head_timed_out)
        room = self.limits.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            self._feed(data)
            return
        # Feed only what the head may still take; if the head is not complete by then, refuse it.
        self._head_bytes += room
        self._feed(data[:room])
        if self._refused or self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # refused, closed, or handed over to the WebSocket protocol
        if self._in_head:
            self._refuse(431)
            return
        self.data_received(data[room:])

    def _feed(self, data: bytes) -> None:
        """uvicorn's data_received, without its warning for a head a limit refused (one log line per refused
        request would let a client flood the log)."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if not self._refused:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")

    # -- parser callbacks ----------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._url_bytes = 0
        self.scope["madbase.watch"] = DisconnectWatch()  # type: ignore[typeddict-unknown-key]

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_url_bytes:
            self._refuse(414)
            raise httptools.HttpParserCallbackError("request target too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers or len(name) + len(value) > self.limits.max_line_bytes:
            self._refuse(431)
            raise httptools.HttpParserCallbackError("request head too large")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._disarm()
        super().on_headers_complete()
        if self.parser.should_upgrade():
            return  # a WebSocket handshake: its protocol takes over the transport
        # a body follows unless the request says none (no content-length / chunked encoding)
        length = None
        chunked = False
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if chunked or (length is not None and length.strip() not in (b"", b"0")):
            now = self.loop.time()
            self._body_started = self._body_last = now
            self._body_bytes = 0
            self._body_paused = 0.0
            self._arm(self._tick(), self._check_body)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        self._body_last = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    # -- timers --------------------------------------------------------------------------------------------
    def _tick(self) -> float:
        return max(0.2, min(1.0, self.limits.body_idle_timeout / 4))

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._in_head and not self.transport.is_closing():
            if self._head_bytes == 0:
                self.transport.close()  # nothing sent at all: just close, as keep-alive expiry does
                return
            self._refuse(408)

    def _check_body(self) -> None:
        self._timer = None
        if self._in_head or self.transport.is_closing():
            return
        now = self.loop.time()
        tick = self._tick()
        cycle = self.cycle
        if (self.flow is not None and self.flow.read_paused) or (cycle is not None and cycle.waiting_for_100_continue):
            # the app is behind and the server stopped reading, or the client rightly waits for "100 Continue"
            # until the app reads: not the client's fault
            self._body_paused += tick
            self._body_last = now
            self._arm(tick, self._check_body)
            return
        limits = self.limits
        elapsed = now - self._body_started - self._body_paused
        too_slow = (limits.body_min_rate > 0 and elapsed > limits.body_idle_timeout
                    and self._body_bytes < limits.body_min_rate * elapsed)
        if now - self._body_last > limits.body_idle_timeout or too_slow:
            self._refuse(408)
            return
        self._arm(tick, self._check_body)

    # -- refusals ------------------------------------------------------------------------------------------
    def _refuse(self, status: int) -> None:
        """Answer `status` if no response has started, then close the connection."""
        if self._refused:
            return
        self._refused = True
        self._disarm()
        cycle = self.cycle
        answered = cycle is not None and cycle.response_started
        if not answered and not self.transport.is_closing():
            body = jsonutil.dumps({"message": _MESSAGES[status]})
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head.extend([name, b": ", value, b"\r\n"])
            head.extend([b"content-type: application/json\r\n",
                         b"content-length: " + str(len(body)).encode() + b"\r\n",
                         b"connection: close\r\n\r\n", body])
            self.transport.write(b"".join(head))
            if cycle is not None and not cycle.response_complete:
                # the app must not write a second response on this connection
                cycle.response_started = cycle.response_complete = True
                cycle.disconnected = True
                cycle.message_event.set()
                watch = cycle.scope.get("madbase.watch")
                if isinstance(watch, DisconnectWatch):
                    watch.fire()
        self.transport.close()


def protocol_class(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with these limits."""
    return type("MadbaseHttpProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
