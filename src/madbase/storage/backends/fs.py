"""The local-filesystem backend (the zero-setup default): `<root>/objects/ab/<version>`.

Writes go to `<root>/.tmp/<owner>-<random>` (owner: the writing process, see fs_owner.py) and are renamed
into place after fsync (per-project `fsync: false` skips it: faster, but a power loss may then lose bytes whose
row committed), so a key is either absent or
complete. Reads happen in a worker thread 1 MB at a time; copies are hard links (versions are immutable).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path

from madbase.storage.backends.base import CHUNK, Digest, KeyNotFound, StoredKey
from madbase.storage.backends.fs_owner import LOCK_SUFFIX, TempOwner, sweep_dead

_WRITE_BUFFER = 1024 * 1024
_INLINE_READ = 64 * 1024


class FsBackend:
    name = "fs"

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync  # durable before the row commits (power loss); off = page-cache speed, like nginx
        self.tmp = root / ".tmp"
        self.owner = TempOwner(self.tmp)

    def _path(self, key: str) -> Path:
        if ".." in key.split("/") or key.startswith("/"):
            raise KeyNotFound(key)
        return self.root / key

    def _file(self, key: str) -> str:
        """`_path` as text, for the read path (pathlib's joining showed up in profiles of small downloads)."""
        if ".." in key.split("/") or key.startswith("/"):
            raise KeyNotFound(key)
        return f"{self.root}/{key}"

    def _create(self) -> tuple[io.FileIO, Path]:
        """(worker thread) Creating a file can take milliseconds on a busy disk: never on the event loop. Named
        after this process's owner id, so a sweep can tell a dead process's leftovers (fs_owner.py)."""
        tmp = self.tmp / f"{self.owner.prefix()}{uuid.uuid4().hex}"
        try:
            return open(tmp, "wb", buffering=0), tmp
        except FileNotFoundError:
            self.tmp.mkdir(parents=True, exist_ok=True)
            return open(tmp, "wb", buffering=0), tmp

    def _publish(self, handle: io.FileIO, tail: list[bytes], digest: Digest | None, tmp: Path, target: Path
                 ) -> None:
        """(worker thread) Write the last bytes, fsync, close, rename into place."""
        _write_all(handle, tail, digest)
        if self.fsync:
            os.fsync(handle.fileno())
        handle.close()
        try:
            os.replace(tmp, target)
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)

    async def put(self, key: str, chunks: AsyncIterable[bytes], digest: Digest | None = None) -> int:
        target = self._path(key)
        total = 0
        handle, tmp = await asyncio.to_thread(self._create)
        # Pipelined: while a worker thread hashes and writes one buffer, the event loop receives the next.
        inflight: asyncio.Future[None] | None = None
        try:
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in chunks:
                pending.append(chunk)
                pending_size += len(chunk)
                total += len(chunk)
                if pending_size >= _WRITE_BUFFER:
                    if inflight is not None:
                        await inflight
                    inflight = asyncio.ensure_future(asyncio.to_thread(_write_all, handle, pending, digest))
                    pending = []
                    pending_size = 0
            if inflight is not None:
                await inflight
                inflight = None
            await asyncio.to_thread(self._publish, handle, pending, digest, tmp, target)
        except BaseException:
            if inflight is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(inflight)
            handle.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return total

    async def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except OSError:  # another filesystem: stream it over
            async def chunks() -> AsyncIterator[bytes]:
                with path.open("rb") as handle:
                    while data := await asyncio.to_thread(handle.read, CHUNK):
                        yield data

            await self.put(key, chunks())
            path.unlink()  # noqa: ASYNC240

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            if end is not None and end - start < INLINE_READ:
                # a small read (its size known from the row) costs less inline than the hand-over to a worker
                # thread and back, which dominated small downloads; a stall is bounded by one such read
                fd, stop, first = _open_read(self._file(key), start, end)
            else:
                fd, stop, first = await asyncio.to_thread(_open_read, self._file(key), start, end)
        except (FileNotFoundError, NotADirectoryError):
            raise KeyNotFound(key) from None

        async def gen() -> AsyncIterator[bytes]:
            try:
                pos = start
                if first:  # the first chunk was read together with the open
                    pos += len(first)
                    yield first
                while pos < stop:
                    data = await asyncio.to_thread(os.pread, fd, min(CHUNK, stop - pos), pos)
                    if not data:
                        break
                    pos += len(data)
                    yield data
            finally:
                os.close(fd)

        return gen()

    async def copy(self, src: str, dst: str) -> None:
        source, target = self._path(src), self._path(dst)
        if not await asyncio.to_thread(_link, source, target):
            stream = await self.open(src)
            await self.put(dst, stream)

    async def delete(self, keys: Sequence[str]) -> None:
        paths = []
        for key in keys:
            with contextlib.suppress(KeyNotFound):
                paths.append(self._path(key))
        if paths:
            await asyncio.to_thread(_unlink_all, paths)

    async def list_keys(self, prefix: str) -> AsyncIterator[StoredKey]:
        """Walks one directory at a time in a worker thread (the event loop never waits on a large tree)."""
        pending = [self.root / prefix]
        while pending:
            folder = pending.pop()
            files, folders = await asyncio.to_thread(_scan, folder, self.root)
            pending.extend(folders)
            for item in files:
                yield item

    async def sweep_temporary(self, older_than: float) -> int:
        """Partial writes of dead processes whatever their age (a call with `older_than=0` removes only those),
        then any other leftover last touched before `older_than` (live owners' locks are never touched)."""
        dead = await asyncio.to_thread(sweep_dead, self.tmp, self.owner.id)
        return dead + await asyncio.to_thread(_sweep_folder, self.tmp, older_than)

    async def close(self) -> None:
        return None


def _write_all(handle: io.FileIO, parts: list[bytes], digest: Digest | None = None) -> None:
    fd = handle.fileno()
    for part in parts:
        if digest is not None:
            digest.update(part)
        view = memoryview(part)
        while view:
            written = os.write(fd, view)
            view = view[written:]


def _link(source: Path, target: Path) -> bool:
    """(worker thread) Hard-link an immutable version; False when the filesystem cannot (then copy)."""
    if not source.exists():
        raise KeyNotFound(str(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        return False
    os.utime(target)  # a fresh link must not look like an old orphan to the sweeper
    return True


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# Reads up to this many bytes are done on the event loop (see `open`).
INLINE_READ = 16 * 1024


def _open_read(path: str, start: int, end: int | None) -> tuple[int, int, bytes | None]:
    """(worker thread) Open for reading and read the first chunk in the same trip."""
    fd = os.open(path, os.O_RDONLY)
    try:
        stop = os.fstat(fd).st_size if end is None else end + 1
        first = os.pread(fd, min(CHUNK, stop - start), start) if stop > start else None
    except BaseException:
        os.close(fd)
        raise
    return fd, stop, first


def _scan(folder: Path, root: Path) -> tuple[list[StoredKey], list[Path]]:
    """(worker thread) The files (with mtimes) and subfolders of one folder."""
    files: list[StoredKey] = []
    folders: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        key = str(Path(entry.path).relative_to(root))
                        files.append(StoredKey(key, entry.stat(follow_symlinks=False).st_mtime))
                except FileNotFoundError:
                    continue
    except (FileNotFoundError, NotADirectoryError):
        pass
    return files, folders


def _sweep_folder(folder: Path, older_than: float) -> int:
    """(worker thread) Remove the files of `folder` last modified before `older_than`."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.endswith(LOCK_SUFFIX):
            continue  # an owner lock: sweep_dead decides
        with contextlib.suppress(FileNotFoundError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < older_than:
                os.unlink(entry.path)
                removed += 1
    return removed
