"""Reading a deploy: the manifest (JSON, or a multipart `metadata` part) and the artifact's files, checked.

JSON: `{slug, name?, wasm_base64 | source | files, entrypoint?, verify_jwt?, limits?, allowed_hosts?, env?,
import_map?}` — `source` is one JS/TS file's text (entrypoint `index.ts` unless given), `files` a map of
path → text. Multipart (what the CLI sends, like Supabase's): a `metadata` part with the same JSON fields and
one part per file, its filename the path. A `.wasm` entrypoint (or `wasm_base64`) deploys WebAssembly;
anything else is JavaScript/TypeScript, bundled at deploy by functions/js/bundle.py.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from madbase.core import jsonutil
from madbase.functions.abi import CGI_VARIABLES
from madbase.functions.runner import limits_from

SLUG = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
MAX_FILES = 500
MAX_ENV = 200
MAX_HOSTS = 100
LIMIT_KEYS = frozenset({"cpu_time_ms", "memory_mb", "wall_clock_ms", "max_body_bytes", "max_concurrency", "queue"})


class DeployError(ValueError):
    """A deploy the server refuses; the message is for the deployer (400)."""


@dataclass(slots=True)
class DeployRequest:
    slug: str
    name: str
    kind: str  # "wasm" | "js"
    files: dict[str, bytes] = field(default_factory=dict)
    entrypoint: str | None = None
    import_map: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def check_slug(value: object) -> str:
    if not isinstance(value, str) or not SLUG.match(value):
        raise DeployError("slug must start with a letter and contain only letters, digits, '-' and '_' (≤ 64)")
    return value


def settings_from(meta: dict[str, Any]) -> dict[str, Any]:
    """The function settings a manifest or a PATCH may carry, validated (only the keys present)."""
    out: dict[str, Any] = {}
    if "verify_jwt" in meta:
        if not isinstance(meta["verify_jwt"], bool):
            raise DeployError("verify_jwt must be true or false")
        out["verify_jwt"] = meta["verify_jwt"]
    if "limits" in meta:
        limits = meta["limits"] or {}
        if not isinstance(limits, dict) or set(limits) - LIMIT_KEYS:
            raise DeployError(f"limits may only set {', '.join(sorted(LIMIT_KEYS))}")
        for key in ("max_concurrency", "queue"):
            value = limits.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not
                                      0 < value <= 10_000):
                raise DeployError(f"limits.{key} must be an integer between 1 and 10000")
        try:
            limits_from(limits)
        except ValueError as exc:
            raise DeployError(str(exc)) from None
        out["limits"] = limits
    if "allowed_hosts" in meta:
        hosts = meta["allowed_hosts"] or []
        if (not isinstance(hosts, list) or len(hosts) > MAX_HOSTS
                or not all(isinstance(h, str) and 0 < len(h) <= 255 and " " not in h for h in hosts)):
            raise DeployError("allowed_hosts must be a list of host names (host, host:port or *.domain)")
        out["allowed_hosts"] = [h.lower() for h in hosts]
    if "env" in meta:
        env = meta["env"] or {}
        if not isinstance(env, dict) or len(env) > MAX_ENV:
            raise DeployError("env must be an object of variable names to string values")
        for key, value in env.items():
            check_env_name(key)
            if not isinstance(value, str) or len(value) > 64 * 1024 or "\0" in value:
                raise DeployError(f"env.{key} must be a string (no NUL characters)")
        out["env"] = env
    if "name" in meta:
        if not isinstance(meta["name"], str) or not 0 < len(meta["name"]) <= 200:
            raise DeployError("name must be a non-empty string")
        out["name"] = meta["name"]
    if "status" in meta:
        status = str(meta["status"]).lower()
        if status not in ("active", "paused"):
            raise DeployError("status must be ACTIVE or PAUSED")
        out["status"] = status
    return out


def check_env_name(key: object) -> str:
    if not isinstance(key, str) or not ENV_NAME.match(key):
        raise DeployError(f"invalid variable name {str(key)[:60]!r}")
    if key.upper().startswith("SUPABASE_") or key in CGI_VARIABLES or key.startswith("HTTP_"):
        raise DeployError(f"{key}: names starting with SUPABASE_ or HTTP_ and CGI names are reserved")
    return key


def from_json(meta: Any, slug: str | None = None) -> DeployRequest:
    if not isinstance(meta, dict):
        raise DeployError("The body must be a JSON object")
    if slug:
        meta.setdefault("slug", slug)
    files: dict[str, bytes] = {}
    if meta.get("wasm_base64") is not None:
        try:
            files["module.wasm"] = base64.b64decode(str(meta["wasm_base64"]), validate=True)
        except (binascii.Error, ValueError):
            raise DeployError("wasm_base64 is not valid base64") from None
        meta.setdefault("entrypoint", "module.wasm")
    elif isinstance(meta.get("source"), str):
        files[str(meta.get("entrypoint") or "index.ts")] = meta["source"].encode()
    elif isinstance(meta.get("files"), dict):
        for path, text in meta["files"].items():
            if not isinstance(text, str):
                raise DeployError("files must map paths to file contents (text)")
            files[str(path)] = text.encode()
    return _finish(meta, files)


def from_multipart(content_type: str, body: bytes, slug: str | None = None) -> DeployRequest:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise DeployError("multipart body without a boundary")
    parts: list[tuple[dict[bytes, bytes], list[bytes]]] = []
    state: dict[str, Any] = {"name": b"", "value": b""}

    def on_part_begin() -> None:
        parts.append(({}, []))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        parts[-1][0][bytes(state["name"]).lower()] = bytes(state["value"])
        state["name"], state["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].append(data[start:end])

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                        "on_header_value": on_header_value, "on_header_end": on_header_end,
                                        "on_part_data": on_part_data})
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own error types for malformed bodies
        raise DeployError(f"malformed multipart body: {exc}") from None
    meta: Any = {}
    files: dict[str, bytes] = {}
    for headers, chunks in parts:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        data = b"".join(chunks)
        if name == "metadata" and filename is None:
            try:
                meta = jsonutil.loads(data)
            except ValueError:
                raise DeployError("the metadata part is not valid JSON") from None
        elif filename is not None:
            files[filename.decode("utf-8", "replace")] = data
        if len(files) > MAX_FILES:
            raise DeployError(f"at most {MAX_FILES} files per deploy")
    if not isinstance(meta, dict):
        raise DeployError("the metadata part must be a JSON object")
    if slug:
        meta.setdefault("slug", slug)
    return _finish(meta, files)


def _finish(meta: dict[str, Any], files: dict[str, bytes]) -> DeployRequest:
    slug = check_slug(meta.get("slug") or meta.get("name"))
    if not files:
        raise DeployError("nothing to deploy: give wasm_base64, source or files")
    for path in files:
        if not path or len(path) > 500 or path.startswith("/") or ".." in path.split("/") or "\\" in path:
            raise DeployError(f"invalid file path {path[:80]!r}")
    entrypoint = meta.get("entrypoint_path") or meta.get("entrypoint")
    if entrypoint is not None and not isinstance(entrypoint, str):
        raise DeployError("entrypoint must be a file path")
    entrypoint = _normal_entry(entrypoint, files)
    kind = "wasm" if entrypoint.endswith(".wasm") else "js"
    import_map = meta.get("import_map", meta.get("import_map_path"))
    if isinstance(import_map, str) and import_map not in files:
        import_map = next((p for p in files if import_map.endswith("/" + p)), import_map)  # an absolute CLI path
    if import_map is not None and not isinstance(import_map, dict):
        if isinstance(import_map, str) and import_map in files:
            try:
                import_map = jsonutil.loads(files[import_map])
            except ValueError:
                raise DeployError(f"{import_map} is not valid JSON") from None
        else:
            raise DeployError("import_map must be an object (or the path of a deployed file)")
    settings = settings_from({k: v for k, v in meta.items() if k in
                              ("verify_jwt", "limits", "allowed_hosts", "env")})
    name = meta.get("name") if isinstance(meta.get("name"), str) and meta.get("name") else slug
    return DeployRequest(slug, str(name)[:200], kind, files, entrypoint, import_map, settings)


def _normal_entry(entrypoint: str | None, files: dict[str, bytes]) -> str:
    if entrypoint:
        entrypoint = entrypoint.removeprefix("file://").lstrip("./") if entrypoint.startswith(("./", "file://")) \
            else entrypoint
        if entrypoint not in files:
            tails = [p for p in files if p.endswith("/" + entrypoint) or entrypoint.endswith("/" + p)]
            if len(tails) != 1:
                raise DeployError(f"entrypoint {entrypoint!r} is not among the deployed files")
            entrypoint = tails[0]
        return entrypoint
    wasm = [p for p in files if p.endswith(".wasm")]
    if len(wasm) == 1:
        return wasm[0]
    for candidate in ("index.ts", "index.js", "index.tsx", "index.mjs", "main.ts"):
        found = [p for p in files if p == candidate or p.endswith("/" + candidate)]
        if found:
            return sorted(found, key=len)[0]
    raise DeployError("no entrypoint: give entrypoint, or deploy an index.ts / a single .wasm")
