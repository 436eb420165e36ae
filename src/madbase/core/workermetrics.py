"""`/metrics` of a multi-process server (`--workers N`): every worker's series, whichever worker answers.

The workers share one listening socket, so a scrape reaches one of them at random; alone, each would serve
only its own counters and the scraped series would jump between workers' values. Instead each worker serves
its own rendering on a Linux abstract Unix socket named after the data folder and its index, and the worker
answering `/metrics` collects its siblings' renderings, labels every sample with `worker="<index>"` and
merges them family by family (a family's lines stay together, with one HELP and TYPE, as the text format
requires). Sums over `worker` are then exact, and a restarted worker's counters reset only its own series,
which `rate()` handles as any process restart. A sibling that does not answer within a second is left out
of that scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger("madbase.workermetrics")

_SAMPLE = re.compile(rb"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*?\})?( .*)$")


def socket_name(data_dir: Path, index: int) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:20]
    return f"\0madbase-metrics-{digest}-{index}"


def _label(line: bytes, worker: bytes) -> bytes:
    match = _SAMPLE.match(line)
    if match is None:
        return line
    name, labels, rest = match.groups()
    if labels is None or labels == b"{}":
        return name + b'{worker="' + worker + b'"}' + rest
    return name + b'{worker="' + worker + b'",' + labels[1:] + rest


def merge(renderings: list[tuple[str, bytes]]) -> bytes:
    """Prometheus text renderings of several workers → one, each sample labelled with its worker."""
    families: dict[bytes, tuple[list[bytes], list[bytes]]] = {}  # name → (HELP/TYPE lines, samples)
    for worker, text in renderings:
        tag = worker.encode()
        current: tuple[list[bytes], list[bytes]] | None = None
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith(b"# "):
                parts = line.split(b" ", 3)
                if len(parts) >= 3 and parts[1] in (b"HELP", b"TYPE"):
                    current = families.get(parts[2])
                    if current is None:
                        current = families[parts[2]] = ([], [])
                    if len(current[0]) < 2 and line not in current[0]:
                        current[0].append(line)
                continue
            if current is None:
                current = families.setdefault(b"", ([], []))
            current[1].append(_label(line, tag))
    out: list[bytes] = []
    for head, samples in families.values():
        out += head
        out += samples
    return b"\n".join(out) + b"\n"


class WorkerMetrics:
    """One worker's side: serve its own rendering to siblings; gather all of them for a scrape."""

    def __init__(self, data_dir: Path, index: int, workers: int, render: Callable[[], bytes]) -> None:
        self._data_dir = data_dir
        self.index = index
        self._workers = workers
        self._render = render
        self._server: asyncio.AbstractServer | None = None

    @staticmethod
    def supported() -> bool:
        return sys.platform.startswith("linux")  # abstract socket names are a Linux feature

    async def start(self) -> None:
        name = socket_name(self._data_dir, self.index)
        for _ in range(50):  # a crashed predecessor's socket disappears with its process
            try:
                self._server = await asyncio.start_unix_server(self._answer, path=name)
                return
            except OSError:
                await asyncio.sleep(0.1)
        log.warning("worker_metrics_unavailable", worker=self.index)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self._render())
            await writer.drain()
        finally:
            writer.close()

    async def gather(self) -> bytes:
        own = (str(self.index), self._render())
        others = [i for i in range(self._workers) if i != self.index]
        fetched = await asyncio.gather(*(self._fetch(i) for i in others))
        return merge([own, *((str(i), text) for i, text in zip(others, fetched, strict=True) if text is not None)])

    async def _fetch(self, index: int) -> bytes | None:
        # uvloop refuses abstract names in open_unix_connection(path=...): connect the socket here (a local,
        # immediate operation) and hand it over
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(1.0)
            sock.connect(socket_name(self._data_dir, index))
            sock.setblocking(False)
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(sock=sock), 1.0)
        except (OSError, TimeoutError):
            sock.close()
            return None
        try:
            return await asyncio.wait_for(reader.read(), 1.0)
        except (OSError, TimeoutError):
            return None
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
