"""This process's view of deployed functions: loaded on first invocation, prepared once, dropped on change.

Every change to a function or a project's secrets notifies `madbase_functions` (control migration 0005) with
`<ref>/<slug>` or `<ref>/*`; each server process LISTENs and drops the cached entry, so the next invocation
loads the new version (a deploy is served everywhere within a second, no restart). Prepared artifacts are
kept by (runner kind, sha256): a rollback to a version seen before costs nothing, and the runners' on-disk
cache makes even a new process skip compilation. Entries load lazily, so idle functions cost no memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from madbase.core.secretbox import SecretBox
from madbase.functions import store
from madbase.functions.runner import Limits, Runner, limits_from

log = structlog.get_logger("madbase.functions")

_SAFETY_REFRESH_S = 30.0
MAX_MISSING = 10_000
MAX_PREPARED = 256  # compiled artifacts kept in memory (the rest reload from the on-disk cache in ~1 ms)
JS_UNAVAILABLE = "JavaScript functions are not available on this server"


class JsUnavailable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Entry:
    deployed: store.Deployed
    runner: Runner
    prepared: Any
    limits: Limits
    max_concurrency: int
    queue: int


class Runners:
    """The runners by artifact kind; the JavaScript one is imported on first use (fnjs's package)."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._by_kind: dict[str, Runner] = {}

    def get(self, kind: str) -> Runner:
        runner = self._by_kind.get(kind)
        if runner is None:
            runner = self._make(kind)
            self._by_kind[kind] = runner
        return runner

    def _make(self, kind: str) -> Runner:
        if kind == "wasm":
            from madbase.functions.wasm import WasmRunner
            return WasmRunner(self.cache_dir / "wasm")
        if kind == "js":
            try:
                module = importlib.import_module("madbase.functions.js.runner")
                cls: Callable[..., Runner] = module.JsRunner
            except (ImportError, AttributeError):
                raise JsUnavailable(JS_UNAVAILABLE) from None
            try:
                return cls(cache_dir=self.cache_dir / "js")
            except TypeError:
                return cls()
        raise ValueError(f"unknown function kind {kind!r}")


class Registry:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox, runners: Runners, executor: Executor,
                 defaults: Callable[[str], dict[str, Any]]) -> None:
        self._pool = pool
        self._box = box
        self.runners = runners
        self._executor = executor
        self._defaults = defaults  # project ref → the project's default limits (config section "functions")
        self._entries: dict[tuple[str, str], Entry] = {}
        # names looked up and not found (a client hammering random names costs one query per name, not per
        # request); dropped by the same notifications as entries
        self._missing: set[tuple[str, str]] = set()
        self._secrets: dict[str, dict[str, str]] = {}
        self._prepared: OrderedDict[tuple[str, str], Any] = OrderedDict()  # LRU, MAX_PREPARED entries
        self._loading: dict[tuple[str, str], asyncio.Lock] = {}
        self._generation = 0
        self._listen: PoolConnectionProxy[asyncpg.Record] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="functions-registry")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listen is not None:
            with contextlib.suppress(Exception):
                await self._pool.release(self._listen)

    async def _watch(self) -> None:
        while True:
            try:
                if self._listen is None or self._listen.is_closed():
                    conn = await self._pool.acquire()
                    await conn.add_listener(store.CHANNEL, self._on_notify)
                    self._listen = conn
                    self.drop_all()  # changes may have been missed while not listening
                await asyncio.sleep(_SAFETY_REFRESH_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the control DB may be briefly away: serve from the cache meanwhile
                log.warning("functions_listen_failed", error=str(exc))
                self._listen = None
                await asyncio.sleep(1.0)

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        ref, _, slug = str(payload).partition("/")
        self._generation += 1
        if slug == "*":
            self._secrets.pop(ref, None)
        else:
            self._entries.pop((ref, slug), None)
            self._missing.discard((ref, slug))

    def drop_all(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._missing.clear()
        self._secrets.clear()

    async def get(self, ref: str, slug: str) -> Entry | None:
        """The function's entry, loading and preparing it on a miss (None: no such function)."""
        key = (ref, slug)
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        if key in self._missing:
            return None
        lock = self._loading.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None:
                return entry
            generation = self._generation
            deployed = await store.load(self._pool, ref, slug)
            if deployed is None:
                self._loading.pop(key, None)
                if generation == self._generation:
                    if len(self._missing) >= MAX_MISSING:
                        self._missing.clear()
                    self._missing.add(key)
                return None
            runner = self.runners.get(deployed.kind)
            prepared = await self.prepare(runner, deployed.artifact, deployed.sha256)
            config = {**self._defaults(ref), **deployed.limits}
            entry = Entry(deployed, runner, prepared, limits_from(config), _int(config, "max_concurrency", 16),
                          _int(config, "queue", 64))
            if generation == self._generation:  # no change notified while loading: cache it
                self._entries[key] = entry
            self._loading.pop(key, None)
            return entry

    async def prepare(self, runner: Runner, artifact: bytes, sha256: str) -> Any:
        """Compile (or load from the on-disk cache) off the event loop; kept per (kind, sha256)."""
        key = (runner.kind, sha256)
        prepared = self._prepared.get(key)
        if prepared is None:
            loop = asyncio.get_running_loop()
            prepared = await loop.run_in_executor(self._executor, runner.prepare, artifact)
            self._prepared[key] = prepared
            while len(self._prepared) > MAX_PREPARED:
                self._prepared.popitem(last=False)
        else:
            self._prepared.move_to_end(key)
        return prepared

    async def secrets(self, ref: str) -> dict[str, str]:
        found = self._secrets.get(ref)
        if found is None:
            generation = self._generation
            found = await store.secret_values(self._pool, self._box, ref)
            if generation == self._generation:
                self._secrets[ref] = found
        return found


def _int(config: dict[str, Any], name: str, default: int) -> int:
    value = config.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 10_000 else default
