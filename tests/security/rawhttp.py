"""Raw-socket HTTP for the adversarial tests: requests no well-behaved client library would send."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, bytes]:
    """(status, whole raw response) read until the server closes or a complete head + body arrived."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError, TimeoutError, socket.timeout):
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(body) >= length:
                    break
    if not data:
        return 0, b""
    return int(data.split(b" ", 2)[1]), data


def send_all(sock: socket.socket, data: bytes) -> bool:
    """Send what the server accepts; False when it closed the connection on us."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes the connection within `timeout` seconds (reading and dropping what it sends)."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
