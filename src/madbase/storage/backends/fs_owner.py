"""Which process a partial write in the filesystem backend's `.tmp/` belongs to, so the leftovers of a process
that died (kill -9, power cut, OOM) are removed as soon as the next sweep runs instead of after the grace period.

Each process that writes holds an exclusive `flock` on `.tmp/<owner>.lock` for its whole life and names its
temporary files `<owner>-<random>`. The kernel drops the lock when the process dies, however it dies, so a
lock that can be taken names a dead owner: its files and lock go. A live owner's lock cannot be taken, so its
uploads in flight are left alone — whether it is another worker of this server or another server sharing the
data folder (over NFS, `flock` is carried by the server's lock manager). Owner ids are random per process (a
pid can be reused and means nothing on another host); a forked child takes a new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import uuid
from pathlib import Path

LOCK_SUFFIX = ".lock"


class TempOwner:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pid = -1
        self._id = ""
        self._fd: int | None = None
        self._guard = threading.Lock()  # temp names are made in worker threads

    @property
    def id(self) -> str:
        return self._id

    def prefix(self) -> str:
        """(worker thread) `<owner>-` for this process, taking the owner lock on first use."""
        with self._guard:
            if self._pid != os.getpid() or self._fd is None:
                self._take()
            return f"{self._id}-"

    def _take(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        owner = uuid.uuid4().hex
        # Locked under a private name, then renamed into place: a sweeper never sees an unlocked owner file.
        pending = self.folder / f".{owner}.locking"
        fd = os.open(pending, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(pending, self.folder / f"{owner}{LOCK_SUFFIX}")
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                pending.unlink()
            raise
        self._pid, self._id, self._fd = os.getpid(), owner, fd  # the parent's descriptor (if forked) is left open


def sweep_dead(folder: Path, own: str) -> int:
    """(worker thread) Remove the temporary files of owners whose lock can be taken (their process is gone);
    returns how many files went."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    removed = 0
    for name in names:
        if not name.endswith(LOCK_SUFFIX) or name.startswith("."):
            continue
        owner = name[: -len(LOCK_SUFFIX)]
        if owner == own:
            continue
        lock_path = folder / name
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # alive
            prefix = f"{owner}-"
            for other in names:
                if other.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(folder / other)
                        removed += 1
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
        finally:
            os.close(fd)
    return removed
