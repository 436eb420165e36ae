"""Test a project's storage backend: before storage settings are saved, and for a project's health.

`fs`: the folder exists (or can be created) and a file can be written, read back and removed there.
`s3`: with the given credentials, an object is written under the project's prefix, read back and removed —
the three things the storage service does — so wrong keys, a missing bucket or an unreachable endpoint are
reported at save time with the store's own error, not at the first upload. (The storage service's backend is
not imported: services never import each other; this uses the same library, obstore.)
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

TIMEOUT = 15.0


def fs_root(config: dict[str, Any], data_dir: Path, ref: str) -> Path:
    """The fs backend's folder as the storage service computes it (storage/config.py)."""
    return Path(str(config["root"])) if config.get("root") else data_dir / "storage" / ref


def _fs_probe(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    probe = root / f".madbase-probe-{secrets.token_hex(6)}"
    probe.write_bytes(b"ok")
    try:
        if probe.read_bytes() != b"ok":
            raise OSError("read back different bytes")
    finally:
        probe.unlink(missing_ok=True)
    return f"folder {root} is writable"


async def _s3_probe(s3: dict[str, Any], ref: str) -> str:
    import obstore  # imported only when an S3 backend is checked (its Rust library is large)
    from obstore.store import S3Store

    bucket = s3.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("storage.s3.bucket is required")
    config: dict[str, Any] = {k: str(s3[k]) for k in ("endpoint", "region", "access_key_id", "secret_access_key",
                                                       "session_token") if s3.get(k)}
    config.setdefault("region", "us-east-1")
    config["virtual_hosted_style_request"] = bool(s3.get("virtual_hosted_style", False))
    endpoint = str(s3.get("endpoint", ""))
    client: dict[str, Any] = {"timeout": f"{int(TIMEOUT)}s"}
    if s3.get("allow_http", endpoint.startswith("http://")):
        client["allow_http"] = True
    prefix = str(s3.get("prefix") or ref).strip("/") or None
    store = S3Store(bucket, prefix=prefix, config=config, client_options=client)  # type: ignore[arg-type]
    key = f".madbase-probe-{secrets.token_hex(6)}"
    await obstore.put_async(store, key, b"ok")
    got = await obstore.get_async(store, key)
    body = bytes(await got.bytes_async())
    await obstore.delete_async(store, key)
    if body != b"ok":
        raise ValueError("the object read back differs from the one written")
    return f"bucket {bucket} accepted a write, read and delete" + (f" at {endpoint}" if endpoint else "")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:600]


async def check(config: dict[str, Any], data_dir: Path, ref: str) -> dict[str, Any]:
    """`{"ok", "backend", "detail"}` for the storage settings `config` (a project's `config["storage"]`)."""
    backend = str(config.get("backend") or "fs")
    try:
        if backend == "s3":
            s3 = config.get("s3") if isinstance(config.get("s3"), dict) else {}
            detail = await asyncio.wait_for(_s3_probe(dict(s3 or {}), ref), TIMEOUT + 5)
        elif backend == "fs":
            detail = await asyncio.to_thread(_fs_probe, fs_root(config, data_dir, ref))
        else:
            return {"ok": True, "backend": backend, "detail": f"backend {backend} needs no check"}
    except TimeoutError:
        return {"ok": False, "backend": backend, "detail": f"no answer within {TIMEOUT + 5:.0f} s"}
    except Exception as exc:  # any store error is the answer here, in the store's own words
        return {"ok": False, "backend": backend, "detail": _reason(exc)}
    return {"ok": True, "backend": backend, "detail": detail}
