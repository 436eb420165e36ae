"""Recent requests per project, in memory: a bounded ring per project, filled by the gateway, read by the
control plane (`GET /admin/v1/projects/{ref}/logs`, admin/opsroutes.py).

This is the dashboard's "what just happened" view, not an archive: each server process keeps the last
`PER_PROJECT` requests of every project it served (JSON access logs on stdout are the durable record). One
entry is a small tuple — time, method, service, path (without the query string, which may carry tokens:
signed URLs, `?apikey=`), status, duration, request id, client address — so a full ring costs ~150 KB and a
project that gets no traffic costs nothing. Appending is one `deque.append` on the request path.

The log of a runtime is found through `for_runtime(runtime)` (a weak registry: the log goes with its runtime,
and the core needs no attribute on `Runtime` for it).
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

PER_PROJECT = 500
PATH_MAX = 512  # characters of a path kept (a hostile 30 KB path must not make the ring 30 MB)


class Entry(NamedTuple):
    """One request as a listing shows it (the ring keeps plain tuples of the same fields: built on every
    request, a plain tuple costs a tenth of a named one)."""

    seq: int  # increasing per process: the cursor of the listing
    ts: float  # unix seconds at the end of the request
    request_id: str
    method: str
    service: str
    path: str
    status: int
    duration_ms: float
    client_ip: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.seq, "timestamp": round(self.ts, 3), "request_id": self.request_id, "method": self.method,
                "service": self.service, "path": self.path, "status": self.status,
                "duration_ms": round(self.duration_ms, 3), "client_ip": self.client_ip}


@dataclass(frozen=True, slots=True)
class Query:
    """A listing's filters: `service` exact; `status` an exact code, a class (`4xx`) or `error` (>= 400);
    `path` a substring; `since`/`until` unix seconds (inclusive); `before` a cursor (entries older than it)."""

    service: str | None = None
    status: str | None = None
    path: str | None = None
    since: float | None = None
    until: float | None = None
    before: int | None = None
    limit: int = 100

    def status_test(self) -> Any:
        """A predicate on a status code (None: any)."""
        wanted = self.status
        if wanted is None:
            return None
        if wanted == "error":
            return lambda status: status >= 400
        if len(wanted) == 3 and wanted.endswith("xx"):
            low = int(wanted[0]) * 100
            return lambda status: low <= status < low + 100
        return lambda status: str(status) == wanted


class RequestLog:
    """The rings of one server process, one per project ref."""

    __slots__ = ("__weakref__", "_rings", "_seq", "size")

    def __init__(self, size: int = PER_PROJECT) -> None:
        self.size = size
        self._rings: dict[str, deque[tuple[Any, ...]]] = {}
        self._seq = itertools.count(1)

    def add(self, ref: str, request_id: str, method: str, service: str, path: str, status: int,
            duration_s: float, client_ip: str) -> None:
        ring = self._rings.get(ref)
        if ring is None:
            ring = self._rings[ref] = deque(maxlen=self.size)
        ring.append((next(self._seq), time.time(), request_id, method, service, path[:PATH_MAX], status,
                     duration_s * 1000.0, client_ip))

    def forget(self, ref: str) -> None:
        self._rings.pop(ref, None)

    def entries(self, ref: str) -> Iterator[Entry]:
        """The project's entries, newest first."""
        return map(Entry._make, reversed(tuple(self._rings.get(ref, ()))))

    def query(self, ref: str, q: Query) -> tuple[list[Entry], int | None]:
        """Up to `q.limit` matching entries, newest first, and the cursor of the next page (None: no more).
        Filters run on the ring's plain tuples (no copy: nothing appends while this synchronous loop runs);
        only the entries answered become `Entry`s."""
        out: list[Entry] = []
        more = False
        before, service, since, until, path = q.before, q.service, q.since, q.until, q.path
        status_ok = q.status_test()
        for e in reversed(self._rings.get(ref, ())):
            if ((before is not None and e[0] >= before) or (service is not None and e[4] != service)
                    or (since is not None and e[1] < since) or (until is not None and e[1] > until)
                    or (path is not None and path not in e[5]) or (status_ok is not None and not status_ok(e[6]))):
                continue
            if len(out) == q.limit:
                more = True
                break
            out.append(Entry._make(e))
        return out, (out[-1].seq if more and out else None)


_LOGS: weakref.WeakKeyDictionary[Any, RequestLog] = weakref.WeakKeyDictionary()


def for_runtime(runtime: Any) -> RequestLog:
    """The request log of `runtime` (created on first use)."""
    log = _LOGS.get(runtime)
    if log is None:
        log = _LOGS[runtime] = RequestLog()
    return log
