"""Deploy-time bundling of a JS/TS function into one ES module the runtime loads (no Node, no network later).

`deno bundle` (the `deno` binary from PyPI's `deno` package; esbuild inside) does the work: TypeScript,
relative imports (also `../_shared/…`), `npm:` specifiers (fetched from the npm registry at deploy time and kept
in a DENO_DIR cache), and the function's import map (`import_map.json`, `deno.json` "imports", or the one given
by the deploy). Two kinds of imports Supabase projects carry that this machine cannot fetch are served locally:
the type-only `jsr:@supabase/functions-js/edge-runtime.d.ts` (an empty module) and the old
`https://deno.land/std@…/http/server.ts` whose `serve` maps onto `Deno.serve`; and packages imported from
esm.sh, jsDelivr's npm CDN or `jsr:@supabase/…` are taken from npm (the same packages, registry reachable).
"""

from __future__ import annotations

import importlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BUNDLE_TIMEOUT_S = 300
MAX_FILES = 1000
MAX_TOTAL_BYTES = 50 * 2**20
SHIM_DIR = "__madbase_shims"
EMPTY_SHIM = "export {};\n"
STD_SERVE_SHIM = """// MadBase: deno.land/std's http/server.ts, mapped onto Deno.serve
export function serve(handler, options = {}) {
  return Deno.serve({ ...options }, handler);
}
export class Server {
  constructor(options) { this.options = options; }
  listenAndServe() { return Deno.serve(this.options, this.options.handler).finished; }
}
"""
_TYPE_ONLY = re.compile(r"""["'](jsr:@supabase/functions-js[^"']*\.d\.ts|https://[^"']+/edge-runtime\.d\.ts)["']""")
_STD_SERVER = re.compile(r"""["'](https://deno\.land/std(?:@[^/"']+)?/http/server\.ts)["']""")
# packages imported from CDNs or jsr that are also on npm: resolved through npm (reachable here, cached)
_ESM_SH = re.compile(r"""["'](https://esm\.sh/(?:v\d+/)?((?:@[\w.\-]+/)?[\w.\-]+(?:@[^/?"']+)?)(/[^?"']*)?(?:\?[^"']*)?)["']""")
_JSDELIVR = re.compile(r"""["'](https://cdn\.jsdelivr\.net/npm/((?:@[\w.\-]+/)?[\w.\-]+(?:@[^/?"']+)?)(/[^?"']*)?)["']""")
_JSR_SUPABASE = re.compile(r"""["'](jsr:(@supabase/[\w.\-]+(?:@[^/"']+)?)(/[^"']*)?)["']""")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BundleError(Exception):
    """The function could not be bundled; the message says why (the bundler's own words, paths relative)."""


def deno_binary() -> str:
    try:
        path: str = importlib.import_module("deno").find_deno_bin()  # the PyPI package that ships the binary
        return path
    except (ImportError, AttributeError, FileNotFoundError):
        found = shutil.which("deno")
        if found is None:
            raise BundleError("the deno bundler is not installed (pip install deno)") from None
        return found


def _safe_path(name: str) -> str:
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm.startswith(("/", "../")) or norm in (".", "..") or "\0" in norm:
        raise BundleError(f"invalid file path in the function: {name!r}")
    return norm


def _find_import_map(files: Mapping[str, bytes], entrypoint: str) -> tuple[dict[str, Any], str] | None:
    """import_map.json or deno.json(c) "imports" next to the entrypoint or in a parent folder, and its folder."""
    folder = posixpath.dirname(entrypoint)
    while True:
        for name in ("import_map.json", "deno.json", "deno.jsonc"):
            path = posixpath.join(folder, name) if folder else name
            if path in files:
                text = files[path].decode("utf-8", "replace")
                if name.endswith("c"):
                    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
                try:
                    data = json.loads(text)
                except ValueError as exc:
                    raise BundleError(f"{path} is not valid JSON: {exc}") from None
                if isinstance(data, dict) and ("imports" in data or "scopes" in data):
                    return {k: data[k] for k in ("imports", "scopes") if k in data}, folder
                if name == "import_map.json":
                    return {}, folder
        if not folder:
            return None
        folder = posixpath.dirname(folder)


def _import_map(files: Mapping[str, bytes], entrypoint: str,
                given: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The import map to bundle with and the folder its relative targets are relative to."""
    found = _find_import_map(files, entrypoint) if given is None else None
    base, folder = (given, "") if given is not None else found or ({}, "")
    up = "../" * (folder.count("/") + 1) if folder else "./"
    if not isinstance(base, dict) or not isinstance(base.get("imports", {}), dict):
        raise BundleError("the import map must be an object with an \"imports\" object")
    imports: dict[str, str] = dict(base.get("imports", {}))
    scopes = base.get("scopes", {})
    for data in files.values():
        text = data.decode("utf-8", "replace")
        for spec in _TYPE_ONLY.findall(text):
            imports.setdefault(spec, f"{up}{SHIM_DIR}/empty.js")
        for spec in _STD_SERVER.findall(text):
            imports.setdefault(spec, f"{up}{SHIM_DIR}/std_http_server.js")
        for pattern in (_ESM_SH, _JSDELIVR, _JSR_SUPABASE):
            for spec, package, sub in pattern.findall(text):
                if not spec.endswith(".d.ts"):
                    imports.setdefault(spec, f"npm:{package}{sub or ''}")
    result: dict[str, Any] = {"imports": imports}
    if scopes:
        result["scopes"] = scopes
    return result, folder


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("MADBASE_DENO_DIR") or root / "madbase" / "deno")


def bundle(files: Mapping[str, bytes], entrypoint: str, import_map: dict[str, Any] | None) -> bytes:
    """Bundle `entrypoint` (a path among `files`, e.g. "hello/index.ts") into one ES module."""
    if not files or len(files) > MAX_FILES or sum(len(v) for v in files.values()) > MAX_TOTAL_BYTES:
        raise BundleError(f"a function has 1 to {MAX_FILES} files totalling at most {MAX_TOTAL_BYTES} bytes")
    clean = {_safe_path(k): v for k, v in files.items()}
    entry = _safe_path(entrypoint)
    if entry not in clean:
        raise BundleError(f"the entrypoint {entrypoint!r} is not among the function's files")
    with tempfile.TemporaryDirectory(prefix="madbase-bundle-") as tmp:
        root = Path(tmp) / "src"
        for name, data in clean.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        shims = root / SHIM_DIR
        shims.mkdir(parents=True, exist_ok=True)
        (shims / "empty.js").write_text(EMPTY_SHIM)
        (shims / "std_http_server.js").write_text(STD_SERVE_SHIM)
        imap, folder = _import_map(clean, entry, import_map)
        map_path = root / folder / "__madbase_import_map.json"  # beside the original: same relative targets
        map_path.parent.mkdir(parents=True, exist_ok=True)
        map_path.write_text(json.dumps(imap))
        out = Path(tmp) / "bundle.js"
        env = {**os.environ, "DENO_DIR": str(cache_dir()), "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1",
               "DENO_NO_PROMPT": "1"}
        cmd = [deno_binary(), "bundle", "--quiet", "--no-config", "--no-lock", "--import-map", str(map_path),
               "--platform", "deno", "--format", "esm", "--output", str(out), str(root / entry)]
        try:
            proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=BUNDLE_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise BundleError(f"bundling took longer than {BUNDLE_TIMEOUT_S} s") from None
        if proc.returncode != 0 or not out.exists():
            message = _ANSI.sub("", proc.stderr.decode("utf-8", "replace")).replace(str(root) + "/", "")
            message = message.replace(f"file://{root}/", "").strip() or f"deno bundle exited with {proc.returncode}"
            raise BundleError(f"deno bundle: {message[-4000:]}")
        return out.read_bytes()
