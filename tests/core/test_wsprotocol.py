"""The lean WebSocket protocol (madbase.wsprotocol) on a real uvicorn server with real sockets: ping/pong,
fragmented and large messages, close codes both ways, protocol errors, rejection, keepalive, shutdown.

The app under test is a tiny ASGI echo app; the realtime service's own use is covered in tests/realtime."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from madbase.core.types import Receive, Scope, Send
from madbase.wsprotocol import LeanWebSocket


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/reject":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "websocket.http.response.body", "body": b'{"message":"no"}'})
        return
    if path == "/deny":
        await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/crash":
        raise RuntimeError("boom")
    await send({"type": "websocket.accept", "subprotocol": "phoenix" if "phoenix" in scope["subprotocols"] else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None and text.startswith("close:"):
            await send({"type": "websocket.close", "code": int(text[6:]), "reason": "asked"})
            return
        if text == "info":
            await send({"type": "websocket.send",
                        "text": f"{scope['path']}|{scope['query_string'].decode()}|{scope['client'][0]}"})
            continue
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


@pytest.fixture
async def ws_server() -> AsyncIterator[tuple[str, uvicorn.Server]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(echo_app, ws=LeanWebSocket, http="httptools", lifespan="off", log_level="critical",
                            ws_ping_interval=0.6, ws_ping_timeout=0.6, ws_max_size=4 * 1024 * 1024,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


class RawSocket:
    """A hand-written client, for frames a correct client library refuses to send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str, path: str = "/echo") -> RawSocket:
        host, port = url.removeprefix("ws://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> None:
        first = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            head = bytes([first, (0x80 if mask else 0) | n])
        elif n < 65536:
            head = bytes([first, (0x80 if mask else 0) | 126]) + struct.pack("!H", n)
        else:
            head = bytes([first, (0x80 if mask else 0) | 127]) + struct.pack("!Q", n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.writer.write(head + payload)

    async def recv(self) -> tuple[int, bytes]:
        first, second = await self.reader.readexactly(2)
        n = second & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first & 0x0F, await self.reader.readexactly(n)

    async def close_code(self) -> int:
        """Read until the server's close frame; its status code."""
        while True:
            opcode, data = await asyncio.wait_for(self.recv(), 5)
            if opcode == 8:
                return int(struct.unpack("!H", data[:2])[0]) if data else 1005

    async def at_eof(self) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(1), 5) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.writer.close()


async def test_echo_scope_and_subprotocol(ws_server: tuple[str, Any]) -> None:
    url, _ = ws_server
    async with connect(url + "/echo?vsn=2.0.0&x=%20", subprotocols=["phoenix"],  # type: ignore[list-item]
                       compression=None) as ws:
        assert ws.subprotocol == "phoenix"
        await ws.send("info")
        assert await ws.recv() == "/echo|vsn=2.0.0&x=%20|127.0.0.1"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
        await ws.send("héllo ✓")
        assert await ws.recv() == "héllo ✓"


async def test_ping_pong(ws_server: tuple[str, Any]) -> None:
    url, _ = ws_server
    async with connect(url + "/echo", compression=None) as ws:
        waiter = await ws.ping(b"abc")
        await asyncio.wait_for(waiter, 5)
        await ws.send("still open")
        assert await ws.recv() == "still open"


async def test_fragmented_and_large_messages(ws_server: tuple[str, Any]) -> None:
    url, _ = ws_server
    async with connect(url + "/echo", compression=None, max_size=None) as ws:
        await ws.send(iter(["frag", "mented ", "tëxt"]))
        assert await ws.recv() == "fragmented tëxt"
        await ws.send(iter([b"\x01" * 70000, b"\x02" * 5]))
        assert await ws.recv() == b"\x01" * 70000 + b"\x02" * 5
        big = "x" * (3 * 1024 * 1024)
        await ws.send(big)
        assert await ws.recv() == big
    raw = await RawSocket.open(url)
    try:  # a ping between the fragments of a message is answered, and the message still arrives whole
        raw.send(0x1, b"ab", fin=False)
        raw.send(0x9, b"p1")
        raw.send(0x0, b"cd", fin=True)
        assert await raw.recv() == (0xA, b"p1")
        assert await raw.recv() == (0x1, b"abcd")
    finally:
        raw.close()


async def test_too_large_message_closes_1009(ws_server: tuple[str, Any]) -> None:
    url, _ = ws_server
    async with connect(url + "/echo", compression=None, max_size=None) as ws:
        with pytest.raises(ConnectionClosed):  # the close may already interrupt the send
            await ws.send(b"\x00" * (4 * 1024 * 1024 + 1))
            await ws.recv()
        assert ws.close_code == 1009
    async with connect(url + "/echo", compression=None, max_size=None) as ws:  # the limit spans fragments
        with pytest.raises(ConnectionClosed):
            await ws.send(iter([b"\x00" * (3 * 1024 * 1024), b"\x00" * (2 * 1024 * 1024)]))
            await ws.recv()
        assert ws.close_code == 1009


async def test_close_codes(ws_server: tuple[str, Any]) -> None:
    url, _ = ws_server
    async with connect(url + "/echo", compression=None) as ws:  # the app closes: code and reason reach the peer
        await ws.send("close:4001")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4001, "asked")
    ws = await connect(url + "/echo", compression=None)  # the peer closes: the server echoes its code
    await ws.close(4002, "bye")
    assert ws.close_code == 4002
    raw = await RawSocket.open(url)
    try:
        raw.send(0x8, struct.pack("!H", 1000) + b"done")
        assert await raw.close_code() == 1000
        assert await raw.at_eof()
    finally:
        raw.close()


@pytest.mark.parametrize(("frames", "code"), [
    ([(0x1, b"\xff\xfe", True, True)], 1007),  # invalid UTF-8 in a text message
    ([(0x1, b"\xe2\x82", False, True), (0x0, b"\x28", True, True)], 1007),  # invalid across fragments
    ([(0x1, b"hi", True, False)], 1002),  # a client frame must be masked
    ([(0x0, b"cont", True, True)], 1002),  # continuation without a start
    ([(0x1, b"a", False, True), (0x1, b"b", True, True)], 1002),  # new message inside a fragmented one
    ([(0x3, b"?", True, True)], 1002),  # reserved opcode
    ([(0x9, b"p" * 126, True, True)], 1002),  # control frame over 125 bytes
])
async def test_protocol_errors_close_with_code(ws_server: tuple[str, Any], frames: list[tuple[int, bytes, bool, bool]],
                                               code: int) -> None:
    url, _ = ws_server
    raw = await RawSocket.open(url)
    try:
        for opcode, payload, fin, mask in frames:
            raw.send(opcode, payload, fin=fin, mask=mask)
        assert await raw.close_code() == code
        assert await raw.at_eof()
    finally:
        raw.close()


async def test_rejections(ws_server: tuple[str, Any]) -> None:
    url, _ = ws_server
    with pytest.raises(InvalidStatus) as info:
        await connect(url + "/reject")
    assert info.value.response.status_code == 401
    assert info.value.response.body == b'{"message":"no"}'
    with pytest.raises(InvalidStatus) as info:
        await connect(url + "/deny")
    assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as info:
        await connect(url + "/crash")
    assert info.value.response.status_code == 500
    host, port = url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))  # not a valid handshake: no key
    writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    head = await asyncio.wait_for(reader.read(4096), 5)
    assert head.startswith(b"HTTP/1.1 400")
    writer.close()


async def test_keepalive_pings_and_drops_silent_peers(ws_server: tuple[str, Any]) -> None:
    url, _ = ws_server
    async with connect(url + "/echo", compression=None, ping_interval=None) as ws:  # answers pings itself
        await asyncio.sleep(2.0)
        await ws.send("alive")
        assert await ws.recv() == "alive"
    raw = await RawSocket.open(url)  # never answers
    try:
        opcode, _ = await asyncio.wait_for(raw.recv(), 5)
        assert opcode == 0x9
        assert await raw.close_code() == 1011
    finally:
        raw.close()


async def test_graceful_shutdown_closes_1012(ws_server: tuple[str, Any]) -> None:
    url, server = ws_server
    async with connect(url + "/echo", compression=None) as ws:
        server.should_exit = True
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1012
