"""A small load generator for the rotation tests: threads sending requests with whatever credentials a shared
holder names at that moment, recording every answer (a rotation must fail none that carried a valid key)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.support.servers import MadbaseProcess


@dataclass
class Load:
    servers: tuple[MadbaseProcess, ...]
    #: (server index, request number) → (apikey, bearer or None, expected role); read on every request
    credentials: Callable[[int, int], tuple[str, str | None, str]]
    threads: int = 3
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=10) as http:
            n = 0
            while not self._stop.is_set():
                index = (worker + n) % len(self.servers)
                apikey, bearer, role = self.credentials(index, n)
                headers = {"apikey": apikey}
                if bearer is not None:
                    headers["Authorization"] = f"Bearer {bearer}"
                try:
                    r = http.get(f"{self.servers[index].url}/gateway/v1/whoami", headers=headers)
                    ok = r.status_code == 200 and r.json().get("role") == role
                    outcome = "ok" if ok else f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    outcome = f"error {exc!r}"
                with self._lock:
                    self.statuses["ok" if outcome == "ok" else "failed"] += 1
                    if outcome != "ok" and len(self.failures) < 20:
                        self.failures.append(f"server {index}: {outcome}")
                n += 1

    def __enter__(self) -> Load:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(15)
