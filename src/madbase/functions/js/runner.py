"""JsRunner: Supabase's JavaScript/TypeScript functions (bundled at deploy by bundle.py) on QuickJS in Wasmtime.

prepare() checks that the bundle compiles and keeps it; the first invoke with a given environment boots the
function (runtime + module top level, which may read Deno.env) and snapshots its linear memory; every invoke
then restores that snapshot into a fresh instance and drives the request: run, then alternate between running
the guest's jobs and serving what it waits for (outbound fetches through the host's OutboundFetch, timers),
until it writes its response. docs/functions-js.md has the protocol and the limits.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from madbase.functions.abi import FunctionRequest, FunctionResult
from madbase.functions.js import engine, protocol
from madbase.functions.js.engine import Guest, GuestError, QuickJs, Snapshot
from madbase.functions.runner import Limits, OutboundFetch

FUEL_PER_MS = 10_000_000  # QuickJS in Cranelift code runs ~1e10 fuel units per second on this class of CPU
BOOT_FUEL = 20_000_000_000  # booting (module top level) gets its own budget, ~2 s of CPU
BOOT_WALL_S = 30.0
MAX_SNAPSHOTS = 4  # per function: one per distinct environment (secrets change rarely)
MAX_IDLE = 2  # finished instances kept per function and environment for reuse (each holds 2 memfds)
ERROR_STATUS = {"cpu": 546, "memory": 546, "wall": 504, "crash": 500, "boot": 500}
MAX_FETCHES = 1000  # outbound requests per invocation
MODULE_NAME = b"/main.js"  # the bundle's module name: import.meta.url is file:///main.js


def runtime_source() -> bytes:
    """The runtime script: runtime/*.js concatenated in name order."""
    folder = resources.files("madbase.functions.js") / "runtime"
    parts = sorted((p for p in folder.iterdir() if p.name.endswith(".js")), key=lambda p: p.name)
    return b"\n".join(p.read_bytes() for p in parts)


_engines: dict[Path | None, QuickJs] = {}
_engines_lock = threading.Lock()


def quickjs(cache_dir: Path | None) -> QuickJs:
    with _engines_lock:
        qjs = _engines.get(cache_dir)
        if qjs is None:
            qjs = _engines[cache_dir] = QuickJs(cache_dir)
        return qjs


class BootError(Exception):
    def __init__(self, message: str, logs: str) -> None:
        super().__init__(message)
        self.logs = logs


@dataclass
class PreparedJs:
    """A deployed function: its bundle and the snapshots built from it, one per environment."""

    source: bytes
    digest: str
    snapshots: OrderedDict[tuple[tuple[str, str], ...], Snapshot] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: finished instances kept for reuse, by (snapshot, memory limit); reset from the snapshot before each use
    idle: dict[tuple[Snapshot, int], list[Guest]] = field(default_factory=dict)

    def take(self, snap: Snapshot, memory_mb: int) -> Guest | None:
        with self.lock:
            pool = self.idle.get((snap, memory_mb))
            return pool.pop() if pool else None

    def give(self, snap: Snapshot, memory_mb: int, guest: Guest) -> None:
        with self.lock:
            if self.snapshots.get(tuple(guest.env)) is snap:
                pool = self.idle.setdefault((snap, memory_mb), [])
                if len(pool) < MAX_IDLE:
                    pool.append(guest)
                    return
        guest.close()


def _result(status: int, headers: tuple[tuple[str, str], ...], body: bytes, logs: str, guest: Guest | None,
            error: str | None) -> FunctionResult:
    fuel = guest.fuel_used() if guest else 0
    memory = guest.memory_used() if guest else 0
    return FunctionResult(status, headers, body, logs, fuel, memory, error)


class JsRunner:
    kind = "js"

    def __init__(self, cache_dir: Path | None = None) -> None:
        if cache_dir is None:  # the compiled QuickJS is worth keeping between runs: ~1 s (much more on a busy box)
            cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "madbase" / "functions-js"
        self.cache_dir = cache_dir
        self.qjs = quickjs(cache_dir)
        self.runtime = runtime_source()

    # --- deploy ------------------------------------------------------------------------------------------
    def prepare(self, artifact: bytes) -> PreparedJs:
        """Keep the bundle after checking it compiles (a syntax error fails the deploy, not the first call)."""
        guest = Guest(self.qjs, env=[], stdin=b"", memory_bytes=256 * 2**20, fuel=BOOT_FUEL,
                      deadline=time.monotonic() + 30, snapshot=None)
        try:
            if not guest.eval(artifact, MODULE_NAME, engine.JS_EVAL_TYPE_MODULE | engine.JS_EVAL_FLAG_COMPILE_ONLY):
                raise ValueError(f"the function does not compile: {guest.logs().strip()}")
        finally:
            guest.close()
        return PreparedJs(artifact, hashlib.sha256(artifact).hexdigest())

    # --- boot + snapshot ---------------------------------------------------------------------------------
    def _snapshot(self, prepared: PreparedJs, env: list[tuple[str, str]], limits: Limits,
                  fetch: OutboundFetch | None) -> tuple[Snapshot, bool]:
        key = tuple(env)
        with prepared.lock:
            snap = prepared.snapshots.get(key)
            if snap is not None:
                prepared.snapshots.move_to_end(key)
                return snap, False
            snap = self._boot(prepared, env, limits, fetch)
            prepared.snapshots[key] = snap
            while len(prepared.snapshots) > MAX_SNAPSHOTS:
                _, old = prepared.snapshots.popitem(last=False)
                for pool_key in [k for k in prepared.idle if k[0] is old]:
                    for guest in prepared.idle.pop(pool_key):
                        guest.close()
            return snap, True

    def _boot(self, prepared: PreparedJs, env: list[tuple[str, str]], limits: Limits,
              fetch: OutboundFetch | None) -> Snapshot:
        deadline = time.monotonic() + BOOT_WALL_S  # booting is not charged to the request's wall clock
        try:
            guest = Guest(self.qjs, env=env, stdin=b"", memory_bytes=limits.memory_mb * 2**20, fuel=BOOT_FUEL,
                          deadline=deadline, snapshot=None)
        except GuestError as exc:
            raise BootError(str(exc), "") from None
        try:
            if not guest.eval(self.runtime, b"madbase:runtime"):
                raise BootError("the JS runtime failed to start", guest.logs())
            if not guest.eval_main_module(prepared.source, MODULE_NAME):
                raise BootError("the function failed to load", guest.logs())
            entry = b'import * as m from "' + MODULE_NAME + b'"; globalThis.__madbase.entry(m);'
            if not guest.eval(entry, b"madbase:entry", engine.JS_EVAL_TYPE_MODULE):
                raise BootError("the function failed to load", guest.logs())
            frames = _drive(guest, fetch, deadline, until="K")
            if not any(f.kind == "K" for f in frames):
                raise BootError("the function failed to start (an error at its top level?)", guest.logs())
            return guest.snapshot(guest.logs())
        except GuestError as exc:
            raise BootError(f"the function failed to start: {exc}", guest.logs()) from None
        finally:
            guest.close()

    # --- invoke ------------------------------------------------------------------------------------------
    def invoke(self, prepared: PreparedJs, request: FunctionRequest, env: Mapping[str, str], limits: Limits,
               fetch: OutboundFetch | None) -> FunctionResult:
        pairs = sorted((str(k), str(v)) for k, v in env.items())
        try:
            snap, booted = self._snapshot(prepared, pairs, limits, fetch)
        except BootError as exc:
            return _result(500, (), b"", f"{exc.logs}{exc}\n", None, "boot")
        boot_logs = snap.boot_logs if booted else ""
        deadline = time.monotonic() + limits.wall_clock_ms / 1000
        if len(request.body) > limits.max_body_bytes:
            return _result(413, (), b"", boot_logs, None, None)
        stdin = protocol.stdin_for(request)
        fuel = limits.cpu_time_ms * FUEL_PER_MS
        guest = prepared.take(snap, limits.memory_mb)
        if guest is not None and not guest.reset(env=pairs, stdin=stdin, fuel=fuel, deadline=deadline):
            guest.close()
            guest = None
        if guest is None:
            try:
                guest = Guest(self.qjs, env=pairs, stdin=stdin, memory_bytes=limits.memory_mb * 2**20, fuel=fuel,
                              deadline=deadline, snapshot=snap)
            except GuestError as exc:
                return _result(ERROR_STATUS[exc.kind], (), b"", f"{boot_logs}{exc}\n", None, exc.kind)
        reusable = False
        try:
            if not guest.eval(b"__madbase.run()"):
                return _result(500, (), b"", boot_logs + guest.logs(), guest, "crash")
            frames = _drive(guest, fetch, deadline, until="R")
            for frame in frames:
                if frame.kind == "R":
                    headers = tuple((str(k), str(v)) for k, v in frame.meta.get("headers", []))
                    reusable = True
                    return _result(int(frame.meta["status"]), headers, frame.body, boot_logs + guest.logs(),
                                   guest, None)
                if frame.kind == "X":
                    kind = str(frame.meta.get("kind", "crash"))
                    return _result(ERROR_STATUS.get(kind, 500), (), b"", boot_logs + guest.logs(), guest, kind)
            logs = boot_logs + guest.logs() + "the function's handler never returned a response\n"
            return _result(500, (), b"", logs, guest, "crash")
        except GuestError as exc:
            logs = f"{boot_logs}{guest.logs()}{exc}\n"
            return _result(ERROR_STATUS[exc.kind], (), b"", logs, guest, exc.kind)
        except ValueError as exc:  # a malformed frame: the function wrote to stdout itself
            return _result(500, (), b"", f"{boot_logs}{guest.logs()}{exc}\n", guest, "crash")
        finally:
            if reusable:  # only instances that answered normally (no trap, no limit hit) are kept
                prepared.give(snap, limits.memory_mb, guest)
            else:
                guest.close()


def _drive(guest: Guest, fetch: OutboundFetch | None, deadline: float, until: str) -> list[protocol.Frame]:
    """Run the guest until it writes an `until` (or X) frame or has nothing left to wait for."""
    reader = protocol.FrameReader()
    fetches = 0
    while True:
        guest.loop()
        frames = reader.feed(guest.output())
        done = [f for f in frames if f.kind in (until, "X")]
        if done:
            return done
        outbound = [f for f in frames if f.kind == "F"]
        if outbound:
            for frame in outbound:
                fetches += 1
                fetch_id = int(frame.meta["id"])
                if fetch is None or fetches > MAX_FETCHES:
                    reason = "outbound fetch is not enabled" if fetch is None else "too many outbound requests"
                    guest.eval(f"__madbase.reject({fetch_id},{json.dumps(reason)})".encode())
                    continue
                result = fetch(protocol.fetch_request(frame))
                if time.monotonic() > deadline:
                    raise GuestError("wall", "wall-clock limit exceeded")
                guest.eval(protocol.settle_call(fetch_id, result))
            continue
        guest.eval(b"__madbase.report()")
        state = [f for f in reader.feed(guest.output()) if f.kind == "S"]
        timer = int(state[-1].meta.get("timer", -1)) if state else -1
        if timer < 0:
            return []
        wait = timer / 1000
        if time.monotonic() + wait > deadline:
            time.sleep(max(0.0, deadline - time.monotonic()))
            raise GuestError("wall", "wall-clock limit exceeded")
        if wait > 0:
            time.sleep(wait)
        guest.eval(b"__madbase.tick()")
