"""WASM functions in Wasmtime: CGI/WAGI over WASI preview 1, one fresh Store + Instance per request.

- **Compile once**: `prepare` validates the module (a WASI command: exports `_start`, imports only from
  `wasi_snapshot_preview1` and our `madbase` host module) and compiles it, caching `Module.serialize()` on disk
  under `<sha256 of the wasm>-<wasmtime version>.cwasm`; a later process (or a restart) deserializes in ~0.2 ms.
- **Per request**: a Store with a memory limit and an epoch deadline of one tick: a ticker thread advances the
  engine's epoch every 10 ms while invocations run, and at each tick the store's deadline callback (run on
  the invocation's own thread) checks the thread's real CPU time (`time.thread_time`) against `cpu_time_ms`
  and the elapsed time against `wall_clock_ms`, and stops the function when either is spent. Fuel is
  metered too (reported per invocation, and a generous cap as a second fence). WASI gets argv `[name]`, the
  CGI environment, the body as stdin, and memfds for stdout/stderr (read back with `pread`; Wasmtime's
  custom-output callbacks run on its own threads). No preopened directory and no sockets: the module sees no
  filesystem and no network. Time spent blocked in a host call (a WASI sleep, an outbound request) is not
  interrupted here: the service's own wall-clock timeout answers the client (504) meanwhile.
- **Host imports** (module `madbase`, all i32): `http_request(ptr, len) -> i32` performs an outbound request
  encoded as `METHOD URL\\r\\n` + header lines + blank line + body, through the service's allow-list; it
  answers the response's length (read it with `http_response_read(ptr, len) -> i32`, which copies the pending
  response — `Status: NNN\\r\\n` + headers + blank line + body, like CGI — and answers how many bytes it copied),
  or a negative code: -1 not allowed, -2 network error, -3 bad request encoding, -4 too many requests.
- **Failures** map to FunctionResult.error: out of fuel → "cpu", epoch deadline → "wall", a failure while
  linear memory sits at the limit → "memory", other traps / non-zero exits / malformed output → "crash",
  instantiation failures → "boot".
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

from madbase.functions.abi import (
    AbiError,
    FunctionRequest,
    FunctionResult,
    cgi_environ,
    function_name,
    parse_cgi_response,
)
from madbase.functions.runner import Limits, OutboundFetch

WASMTIME_VERSION = version("wasmtime")
# Fuel is a fence behind the CPU-time check, not the limit itself (its rate per ms varies with the machine and
# its load): measured here, 1e9 fuel is 0.1-3 s of a tight loop.
FUEL_PER_MS = 50_000_000
EPOCH_TICK_S = 0.01
MAX_LOG_BYTES = 64 * 1024  # kept per invocation (the rest of stderr is cut)
MAX_FETCHES = 50  # outbound requests per invocation
MAX_FETCH_REQUEST = 8 * 2**20
ALLOWED_IMPORT_MODULES = frozenset({"wasi_snapshot_preview1", "madbase"})
_PAGE = 65536


@dataclass(frozen=True, slots=True)
class PreparedWasm:
    sha256: str
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    compiled: bool  # False: loaded from the on-disk cache


@dataclass(slots=True, eq=False)
class _Call:
    """One invocation's host-side state (the host imports find it through a thread-local)."""

    fetch: OutboundFetch | None
    stdout_fd: int
    stderr_fd: int
    output_cap: int
    cpu_limit: float = 0.0  # seconds of this thread's CPU time
    wall_deadline: float = 0.0  # time.monotonic()
    cpu_start: float = 0.0
    stopped: str | None = None  # "cpu" | "wall" when the deadline callback ended the function
    pending: bytes | None = None
    fetches: int = 0
    overflow: bool = False
    logs: list[str] = field(default_factory=list)


_current = threading.local()


class _Ticker:
    """Advances the engine's epoch every EPOCH_TICK_S while invocations run (idle: sleeps), and cuts runaway
    stdout/stderr memfds (a function writing without end keeps at most ~one tick's worth)."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self.engine = engine
        self.calls: set[_Call] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def enter(self, call: _Call) -> None:
        with self._lock:
            self.calls.add(call)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wasm-epoch", daemon=True)
                self._thread.start()
        self._wake.set()

    def leave(self, call: _Call) -> None:
        with self._lock:
            self.calls.discard(call)

    def _run(self) -> None:
        while True:
            if not self.calls:
                self._wake.clear()
                if not self.calls:
                    self._wake.wait()
            time.sleep(EPOCH_TICK_S)
            self.engine.increment_epoch()
            with self._lock:
                calls = list(self.calls)
            for call in calls:
                for fd in (call.stdout_fd, call.stderr_fd):
                    try:
                        if os.fstat(fd).st_size > call.output_cap:
                            call.overflow = True
                            os.ftruncate(fd, 0)
                    except OSError:
                        pass


def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.parallel_compilation = False  # two cores shared with the event loop: compile on one
    config.max_wasm_stack = 1 << 20
    return wasmtime.Engine(config)


class WasmRunner:
    """The `Runner` for `.wasm` artifacts (see module docstring)."""

    kind = "wasm"

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.engine = _engine()
        self.cache_dir = cache_dir
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        sig = wasmtime.FuncType([i32, i32], [i32])
        self.linker.define_func("madbase", "http_request", sig, _http_request, access_caller=True)
        self.linker.define_func("madbase", "http_response_read", sig, _http_response_read, access_caller=True)
        self.ticker = _Ticker(self.engine)

    # -- compile -----------------------------------------------------------------------------------------
    def prepare(self, artifact: bytes) -> PreparedWasm:
        digest = hashlib.sha256(artifact).hexdigest()
        cached = self._cache_path(digest)
        module: wasmtime.Module | None = None
        compiled = False
        if cached is not None and cached.exists():
            try:
                module = wasmtime.Module.deserialize_file(self.engine, str(cached))
            except wasmtime.WasmtimeError:
                module = None  # stale or damaged: compile again
        if module is None:
            try:
                module = wasmtime.Module(self.engine, artifact)
            except wasmtime.WasmtimeError as exc:
                raise ValueError(f"not a valid WebAssembly module: {_first_line(exc)}") from None
            compiled = True
        check_module(module)
        if compiled and cached is not None:
            _write_atomic(cached, bytes(module.serialize()))
        try:
            pre = self.linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise ValueError(f"the module cannot be linked: {_first_line(exc)}") from None
        return PreparedWasm(digest, module, pre, compiled)

    def _cache_path(self, digest: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{digest}-{WASMTIME_VERSION}.cwasm"

    # -- run ---------------------------------------------------------------------------------------------
    def invoke(self, prepared: Any, request: FunctionRequest, env: Mapping[str, str], limits: Limits,
               fetch: OutboundFetch | None) -> FunctionResult:
        assert isinstance(prepared, PreparedWasm)
        out_fd = os.memfd_create("fn-stdout", os.MFD_CLOEXEC)
        err_fd = os.memfd_create("fn-stderr", os.MFD_CLOEXEC)
        call = _Call(fetch, out_fd, err_fd, output_cap=max(limits.max_body_bytes, 1 << 20) + 65536)
        store = wasmtime.Store(self.engine)
        fuel = limits.cpu_time_ms * FUEL_PER_MS
        memory_cap = limits.memory_mb * 2**20
        error: str | None = None
        memory_bytes = 0
        fuel_used = 0
        try:
            store.set_fuel(fuel)
            store.set_epoch_deadline(1)
            ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), _ON_DEADLINE, None, _NO_FINALIZER)
            store.set_limits(memory_size=memory_cap)
            try:
                store.set_wasi(_wasi(request, env, out_fd, err_fd))
            except (ValueError, wasmtime.WasmtimeError) as exc:  # e.g. a NUL byte in a variable
                os.close(out_fd)
                os.close(err_fd)
                return FunctionResult(500, (), b"", f"[madbase] the function's environment is invalid: {exc}\n",
                                      0, 0, "boot")
            call.cpu_limit = limits.cpu_time_ms / 1000
            call.cpu_start = time.thread_time()
            call.wall_deadline = time.monotonic() + limits.wall_clock_ms / 1000
            _current.call = call
            self.ticker.enter(call)
            try:
                instance = prepared.pre.instantiate(store)
            except wasmtime.WasmtimeError as exc:
                error = "memory" if "exceeds memory limits" in str(exc) else "boot"
                call.logs.append(f"[madbase] the module could not start: {_first_line(exc)}")
                instance = None
            if instance is not None:
                exports = instance.exports(store)
                start = exports.get("_start")
                memory = exports.get("memory")
                try:
                    assert isinstance(start, wasmtime.Func)
                    start(store)
                except wasmtime.ExitTrap as exc:
                    if exc.code != 0:
                        error = "crash"
                        call.logs.append(f"[madbase] the function exited with status {exc.code}")
                except wasmtime.Trap as exc:
                    error = call.stopped or ("cpu" if exc.trap_code == wasmtime.TrapCode.OUT_OF_FUEL else "crash")
                    if error == "crash":
                        call.logs.append(f"[madbase] the function trapped: {_first_line(exc)}")
                except wasmtime.WasmtimeError as exc:
                    error = call.stopped or "crash"
                    if error == "crash":
                        call.logs.append(f"[madbase] the function failed: {_first_line(exc)}")
                if error in ("cpu", "wall"):
                    call.logs.append("[madbase] the function was stopped: " + (
                        f"CPU time limit of {limits.cpu_time_ms} ms" if error == "cpu"
                        else f"wall-clock limit of {limits.wall_clock_ms} ms"))
                if isinstance(memory, wasmtime.Memory):
                    memory_bytes = memory.data_len(store)
                    if error == "crash" and memory_bytes + 4 * 2**20 >= memory_cap:
                        error = "memory"
            fuel_used = fuel - store.get_fuel()
        finally:
            self.ticker.leave(call)
            _current.call = None
        try:
            logs = _read_fd(err_fd, MAX_LOG_BYTES).decode("utf-8", "replace")
            output = _read_fd(out_fd, call.output_cap + 1)
        finally:
            os.close(out_fd)
            os.close(err_fd)
        if call.logs:
            logs = (logs + ("\n" if logs and not logs.endswith("\n") else "") + "\n".join(call.logs) + "\n")
        if error is None and (call.overflow or len(output) > call.output_cap):
            error = "crash"
            logs += "[madbase] the function's output exceeds the response size limit\n"
        if error is not None:
            return FunctionResult(500, (), b"", logs, fuel_used, memory_bytes, error)
        try:
            status, headers, body = parse_cgi_response(output)
        except AbiError as exc:
            logs += f"[madbase] {exc}\n"
            return FunctionResult(500, (), b"", logs, fuel_used, memory_bytes, "crash")
        return FunctionResult(status, headers, body, logs, fuel_used, memory_bytes, None)


def check_module(module: wasmtime.Module) -> None:
    """A WASI command module importing only what the host provides; ValueError with the reason otherwise."""
    for imp in module.imports:
        if imp.module not in ALLOWED_IMPORT_MODULES:
            raise ValueError(f"the module imports {imp.module}.{imp.name}, which this host does not provide "
                             f"(allowed: wasi_snapshot_preview1, madbase)")
    exports = {e.name: e.type for e in module.exports}
    if not isinstance(exports.get("_start"), wasmtime.FuncType):
        raise ValueError("the module must be a WASI command exporting `_start` (CGI: env + stdin → stdout)")


def _wasi(request: FunctionRequest, env: Mapping[str, str], out_fd: int, err_fd: int) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.argv = [function_name(request)]
    wasi.env = cgi_environ(request, env)
    _set_stdin_bytes(wasi, request.body)
    wasi.stdout_file = f"/proc/self/fd/{out_fd}"
    wasi.stderr_file = f"/proc/self/fd/{err_fd}"
    return wasi


def _set_stdin_bytes(wasi: wasmtime.WasiConfig, body: bytes) -> None:
    """The body as stdin, from memory (the C API has it; wasmtime-py has no wrapper). The config owns the vec."""
    vec = ffi.wasm_byte_vec_t()
    buf = (ctypes.c_ubyte * len(body)).from_buffer_copy(body) if body else None
    ffi.wasm_byte_vec_new(ctypes.byref(vec), len(body), buf)
    ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))


def _read_fd(fd: int, most: int) -> bytes:
    size = min(os.fstat(fd).st_size, most)
    parts: list[bytes] = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# -- limits --------------------------------------------------------------------------------------------------
_DeadlineCallback = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.POINTER(ffi.wasmtime_context_t), ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.c_uint64),
                                     ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t))
_Finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _on_deadline_py(context: Any, data: Any, delta: Any, kind: Any) -> int:
    """At each epoch tick, on the invocation's thread: continue for one more tick, or stop the function."""
    call: _Call | None = getattr(_current, "call", None)
    if call is not None and call.stopped is None:
        if time.thread_time() - call.cpu_start > call.cpu_limit:
            call.stopped = "cpu"
        elif time.monotonic() > call.wall_deadline:
            call.stopped = "wall"
    if call is not None and call.stopped is not None:
        err = ffi.wasmtime_error_new(f"function stopped: {call.stopped} limit".encode())
        return ctypes.cast(err, ctypes.c_void_p).value or 0
    delta[0] = 1
    kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
    return 0


_ON_DEADLINE = _DeadlineCallback(_on_deadline_py)
_NO_FINALIZER = _Finalizer(lambda data: None)


# -- host imports ------------------------------------------------------------------------------------------
def _memory(caller: wasmtime.Caller) -> wasmtime.Memory | None:
    memory = caller.get("memory")
    return memory if isinstance(memory, wasmtime.Memory) else None


def _http_request(caller: wasmtime.Caller, ptr: int, length: int) -> int:
    call: _Call | None = getattr(_current, "call", None)
    memory = _memory(caller)
    if call is None or memory is None:
        return -2
    call.pending = None
    if call.fetch is None:
        call.logs.append("[madbase] outbound HTTP is not available to this function")
        return -1
    if call.fetches >= MAX_FETCHES:
        return -4
    call.fetches += 1
    if length < 0 or length > MAX_FETCH_REQUEST or ptr < 0 or ptr + length > memory.data_len(caller):
        return -3
    raw = bytes(memory.read(caller, ptr, ptr + length))
    request = decode_fetch_request(raw)
    if request is None:
        return -3
    result = call.fetch(request)
    if result.error == "blocked":
        call.logs.append(f"[madbase] outbound request to {request.path.split('?')[0]} refused: host not allowed")
        return -1
    if result.error is not None:
        call.logs.append(f"[madbase] outbound request to {request.path.split('?')[0]} failed: {result.error}")
        return -2
    lines = [f"Status: {result.status}"] + [f"{k}: {v}" for k, v in result.headers]
    call.pending = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + result.body
    return len(call.pending)


def _http_response_read(caller: wasmtime.Caller, ptr: int, length: int) -> int:
    call: _Call | None = getattr(_current, "call", None)
    memory = _memory(caller)
    if call is None or memory is None or call.pending is None:
        return 0
    chunk = call.pending[:max(0, length)]
    if ptr < 0 or ptr + len(chunk) > memory.data_len(caller):
        return -3
    memory.write(caller, chunk, ptr)
    call.pending = call.pending[len(chunk):] or None
    return len(chunk)


def decode_fetch_request(raw: bytes) -> FunctionRequest | None:
    """`METHOD URL\\r\\n` + `Name: value` lines + blank line + body → a FunctionRequest (path = the URL)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
        if not sep:
            head, body = raw, b""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    method, _, url = lines[0].decode("latin-1").strip().partition(" ")
    if not method.isalpha() or not url.strip():
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        key, colon, value = line.decode("latin-1").partition(":")
        if not colon or not key.strip():
            return None
        headers.append((key.strip().lower(), value.strip()))
    return FunctionRequest(method.upper(), url.strip(), "", tuple(headers), body)
