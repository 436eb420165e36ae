"""The dashboard's static files: read once from the package at start, each with its content type, ETag and a
gzip copy (text only), so a request is a dictionary lookup. Nothing is built: the files are committed as
served (plain ES modules and CSS, see docs/dashboard.md)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_COMPRESSIBLE = (".html", ".js", ".css", ".svg", ".json", ".txt")
MAX_FILES = 500  # a guard against serving a mistakenly huge tree


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str


def load(root: Path = STATIC) -> dict[str, StaticFile]:
    """Every file under `root` by its path relative to it (`index.html`, `js/app.js`), dotfiles skipped."""
    files: dict[str, StaticFile] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in rel.split("/")):
            continue
        if path.suffix not in TYPES:
            continue
        if len(files) >= MAX_FILES:
            raise RuntimeError(f"the dashboard has more than {MAX_FILES} static files")
        body = path.read_bytes()
        packed = gzip.compress(body, 9, mtime=0) if path.suffix in _COMPRESSIBLE else None
        files[rel] = StaticFile(body, packed if packed is not None and len(packed) < len(body) else None,
                                TYPES[path.suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return files
