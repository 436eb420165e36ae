"""Per-project storage settings (the project's `config["storage"]`) and the backend each project uses.

Keys: `backend` ("fs" default | "s3" | "memory"), `root` (fs; default `<MADBASE_DATA_DIR>/storage/<ref>`),
`s3` (bucket, endpoint, region, access_key_id, secret_access_key, prefix, allow_http, virtual_hosted_style),
`file_size_limit` (global upload limit in bytes or "50MB"-style; default 50 MB as Supabase), `sweep_grace_seconds`
(age after which unreferenced bytes are removed; default 3600), `staging` (TUS staging folder), `fsync`
(fs: flush each object to disk before its row commits; default true), `sweep_interval_seconds` (default 600,
21600 for S3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from madbase.core import jsonutil
from madbase.core.projects import Project
from madbase.storage.backends.base import Backend
from madbase.storage.backends.fs import FsBackend
from madbase.storage.backends.memory import MemoryBackend
from madbase.storage.limits import parse_size

DEFAULT_FILE_SIZE_LIMIT = 50 * 1024 * 1024
DEFAULT_SWEEP_GRACE = 3600.0


@dataclass(frozen=True, slots=True)
class StorageSettings:
    backend: str
    root: Path
    s3: dict[str, Any]
    file_size_limit: int
    sweep_grace: float
    staging: Path
    fsync: bool = True
    sweep_interval: float = 600.0

    @classmethod
    def for_project(cls, project: Project, data_dir: Path) -> StorageSettings:
        raw = project.config.get("storage")
        conf: dict[str, Any] = raw if isinstance(raw, dict) else {}
        root = Path(str(conf["root"])) if conf.get("root") else data_dir / "storage" / project.ref
        staging = Path(str(conf["staging"])) if conf.get("staging") else data_dir / "storage-staging" / project.ref
        limit = parse_size(conf.get("file_size_limit", DEFAULT_FILE_SIZE_LIMIT)) or 0
        s3 = dict(conf["s3"]) if isinstance(conf.get("s3"), dict) else {}
        # Each project owns its key space (the sweeper removes unreferenced keys): never share one.
        s3.setdefault("prefix", project.ref)
        return cls(
            backend=str(conf.get("backend", "fs")),
            root=root.resolve(),
            s3=s3,
            file_size_limit=limit,
            sweep_grace=float(conf.get("sweep_grace_seconds", DEFAULT_SWEEP_GRACE)),
            staging=staging.resolve(),
            fsync=conf.get("fsync", True) is not False,
            # Listing a whole S3 prefix costs requests and money: sweep it less often by default.
            sweep_interval=float(conf.get("sweep_interval_seconds",
                                          21600 if conf.get("backend") == "s3" else 600)),
        )

    def fingerprint(self) -> str:
        return jsonutil.dumps_str({"b": self.backend, "r": str(self.root), "s3": self.s3, "f": self.fsync})


def make_backend(settings: StorageSettings) -> Backend:
    if settings.backend == "s3":
        # Imported only when a project uses S3: obstore's Rust library adds ≈ 4 MB to every server's RSS.
        from madbase.storage.backends.s3 import S3Backend
        return S3Backend(settings.s3)
    if settings.backend == "memory":
        return MemoryBackend()
    return FsBackend(settings.root, fsync=settings.fsync)


class Backends:
    """One backend per project (rebuilt when its storage settings change)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._cache: dict[str, tuple[str, Backend]] = {}
        self._settings: dict[str, tuple[object, StorageSettings]] = {}

    def settings(self, project: Project) -> StorageSettings:
        # A project's record is replaced (never mutated) when its config changes: cache per record.
        cached = self._settings.get(project.ref)
        if cached is not None and cached[0] is project.record:
            return cached[1]
        settings = StorageSettings.for_project(project, self.data_dir)
        self._settings[project.ref] = (project.record, settings)
        return settings

    def get(self, project: Project) -> tuple[StorageSettings, Backend]:
        settings = self.settings(project)
        fp = settings.fingerprint()
        cached = self._cache.get(project.ref)
        if cached is not None and cached[0] == fp:
            return settings, cached[1]
        backend = make_backend(settings)
        self._cache[project.ref] = (fp, backend)
        return settings, backend

    async def close(self) -> None:
        for _, backend in self._cache.values():
            await backend.close()
        self._cache.clear()
