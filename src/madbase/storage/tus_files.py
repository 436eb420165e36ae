"""TUS staging files shared by every worker process (and server) on one data folder: `<id>.bin` (the bytes so
far; its size is the offset) and `<id>.json` (the upload's state).

Writers claim an upload with an exclusive, non-blocking `flock` on its `.bin`: a second PATCH for the same
upload — from this process or another — is refused (423) instead of interleaving its bytes. The lock is held
until the upload is finished (the `.bin` renamed into the backend) or the request ends; the kernel drops it
when a process dies, so a killed worker never leaves an upload stuck. A claim re-checks afterwards that the
path still names the locked file: a request that opened the `.bin` just before another finished it (and moved
the file away as the object's bytes) must not append to the stored object.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from pathlib import Path
from typing import Any

from madbase.storage.tus import TusError


def claim(data: Path) -> int:
    """(worker thread) An append-only descriptor holding the upload's exclusive lock; TusError 404 / 423."""
    try:
        fd = os.open(data, os.O_WRONLY | os.O_APPEND)  # never O_CREAT: a finished upload stays finished
    except (FileNotFoundError, NotADirectoryError):
        raise TusError(404, "Upload not found") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise TusError(423, "The upload is being written by another request") from None
    except BaseException:
        os.close(fd)
        raise
    try:
        now, held = os.stat(data), os.fstat(fd)
        alive = (now.st_ino, now.st_dev) == (held.st_ino, held.st_dev) and data.with_suffix(".json").exists()
    except FileNotFoundError:
        alive = False
    if not alive:
        os.close(fd)
        raise TusError(404, "Upload not found")
    return fd


def release(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)  # closing drops the flock


def size(fd: int) -> int:
    return os.fstat(fd).st_size


def append(fd: int, parts: list[bytes], digest: Any) -> None:
    """(worker thread) Append every byte of `parts` (a write may be partial), hashing on the way."""
    for part in parts:
        if digest is not None:
            digest.update(part)
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]


def write_state(path: Path, payload: bytes) -> None:
    """Write `<id>.json` atomically (a crash mid-write leaves the old state or none, never half of one)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def discard(data: Path) -> None:
    for path in (data, data.with_suffix(".json")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
