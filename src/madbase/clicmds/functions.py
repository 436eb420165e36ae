"""`madbase functions deploy [NAME]|list|delete`, as Supabase's CLI: run in a project folder, deploy deploys
`supabase/functions/NAME/` as it is (every function folder without a NAME) to
`POST /admin/v1/projects/{ref}/functions` as multipart: a `metadata` JSON part (slug, name, entrypoint,
verify_jwt, import_map) and one `file` part per source file, named by its path below `supabase/functions/`
(the shared `_…` folders included, so `../_shared/cors.ts` imports resolve). The server bundles.

Per function, as Supabase reads them: `[functions.NAME]` of `supabase/config.toml` (`enabled`, `verify_jwt`,
`import_map`, `entrypoint`), the folder's `deno.json` / `deno.jsonc` / `import_map.json` (its `imports` and
`scopes`), else `supabase/functions/import_map.json`; `--no-verify-jwt` and `--import-map` win.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from madbase.clicmds.client import CliError, request
from madbase.clicmds.common import ApiUrl, DataDir, Output, OutputOpt, ProjectRef, Token, command, emit, listed, target

app = typer.Typer(no_args_is_help=True, help="Deploy, list and delete a project's Edge Functions.")

ENTRYPOINTS = ("index.ts", "index.js", "index.tsx", "index.jsx", "index.mjs", "main.wasm", "index.wasm")
SLUG = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
MAX_BYTES = 20 * 2**20  # per deploy; a bigger upload is refused here rather than by the server
SKIPPED = ("node_modules", ".git", ".DS_Store")
Workdir = Annotated[Path, typer.Option("--workdir", metavar="DIR", help="The project folder holding supabase/")]


@dataclass
class Bundle:
    slug: str
    entrypoint: str  # relative to supabase/functions/
    verify_jwt: bool
    files: list[tuple[str, bytes]] = field(default_factory=list)
    import_map: dict[str, Any] | None = None
    import_map_path: str | None = None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"slug": self.slug, "name": self.slug, "entrypoint": self.entrypoint,
                                "verify_jwt": self.verify_jwt}
        if self.import_map is not None:
            meta["import_map"] = self.import_map
            meta["import_map_path"] = self.import_map_path
        return meta


def _config(workdir: Path) -> dict[str, Any]:
    path = workdir / "supabase" / "config.toml"
    if not path.exists():
        return {}
    try:
        functions = tomllib.loads(path.read_text()).get("functions", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    return functions if isinstance(functions, dict) else {}


def _strip_jsonc(text: str) -> str:
    """deno.jsonc: drop // and /* */ comments outside strings, and trailing commas."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def _import_map(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(_strip_jsonc(path.read_text()))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the import map {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise CliError(f"{path} is not a JSON object")
    return {k: value[k] for k in ("imports", "scopes") if k in value}


def _files(folder: Path, root: Path) -> list[tuple[str, bytes]]:
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not any(part in SKIPPED or part.startswith(".") for part in
                                      path.relative_to(root).parts):
            out.append((path.relative_to(root).as_posix(), path.read_bytes()))
    return out


def bundle_of(workdir: Path, slug: str, *, no_verify_jwt: bool = False, import_map: Path | None = None) -> Bundle:
    """What `deploy` sends for the function `slug` of `workdir/supabase/functions/`."""
    workdir = workdir.resolve()
    root = workdir / "supabase" / "functions"
    folder = root / slug
    if not SLUG.match(slug) or not folder.is_dir():
        raise CliError(f"no function {slug!r}: {folder} is not a folder")
    root = root.resolve()
    conf = _config(workdir).get(slug, {})
    entry = conf.get("entrypoint")
    if entry:
        entry_path = (workdir / "supabase" / str(entry)).resolve()
    else:
        found = [folder / name for name in ENTRYPOINTS if (folder / name).is_file()]
        wasm = sorted(folder.glob("*.wasm"))
        entry_path = found[0] if found else wasm[0] if len(wasm) == 1 else folder / "index.ts"
    if not entry_path.is_file() or not entry_path.is_relative_to(root.resolve()):
        raise CliError(f"function {slug}: no entrypoint (index.ts, index.js or one .wasm file) in {folder}")
    verify = False if no_verify_jwt else bool(conf.get("verify_jwt", True))
    result = Bundle(slug, entry_path.relative_to(root.resolve()).as_posix(), verify)
    map_path = import_map
    if map_path is None and conf.get("import_map"):
        map_path = workdir / "supabase" / str(conf["import_map"])
    for candidate in ("deno.json", "deno.jsonc", "import_map.json"):
        if map_path is None and (folder / candidate).is_file():
            map_path = folder / candidate
    if map_path is None and (root / "import_map.json").is_file():
        map_path = root / "import_map.json"
    if map_path is not None:
        result.import_map = _import_map(map_path)
        resolved = map_path.resolve()
        result.import_map_path = (resolved.relative_to(root.resolve()).as_posix()
                                  if resolved.is_relative_to(root.resolve()) else map_path.name)
    result.files = _files(folder, root)
    for shared in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("_")):
        result.files += _files(shared, root)
    if map_path is not None and not map_path.resolve().is_relative_to(root.resolve()):
        result.files.append((map_path.name, map_path.read_bytes()))
    if sum(len(b) for _, b in result.files) > MAX_BYTES:
        raise CliError(f"function {slug}: more than {MAX_BYTES // 2**20} MB of files")
    return result


def all_slugs(workdir: Path) -> list[str]:
    root = workdir / "supabase" / "functions"
    if not root.is_dir():
        raise CliError(f"no supabase/functions folder in {workdir}")
    config = _config(workdir)
    return [p.name for p in sorted(root.iterdir()) if p.is_dir() and SLUG.match(p.name)
            and config.get(p.name, {}).get("enabled", True) is not False]


@app.command("deploy")
@command
def deploy(name: Annotated[str | None, typer.Argument(metavar="NAME", help="Default: every function")] = None,
           no_verify_jwt: Annotated[bool, typer.Option("--no-verify-jwt",
                                                       help="Accept calls without a valid JWT (webhooks)")] = False,
           import_map: Annotated[Path | None, typer.Option("--import-map", metavar="FILE",
                                                           help="Use this import map")] = None,
           workdir: Workdir = Path("."), project_ref: ProjectRef = None, output: OutputOpt = Output.pretty,
           api_url: ApiUrl = None, token: Token = None, data_dir: DataDir = None) -> None:
    """Deploy supabase/functions/NAME (every function without a NAME)."""
    slugs = [name] if name else all_slugs(workdir)
    if not slugs:
        raise CliError(f"no functions in {workdir / 'supabase' / 'functions'}")
    bundles = [bundle_of(workdir, s, no_verify_jwt=no_verify_jwt, import_map=import_map) for s in slugs]
    where = target(api_url, token, data_dir)
    ref = where.project(project_ref)
    deployed = []
    for b in bundles:
        # metadata is a plain form field (no filename), every file a `file` part named by its path
        parts = [("file", (path, data, "application/octet-stream")) for path, data in b.files]
        answer = request(where, "POST", f"/projects/{ref}/functions", data={"metadata": json.dumps(b.metadata())},
                         files=parts)
        deployed.append(answer)
        if output is Output.pretty:
            version = answer.get("version") if isinstance(answer, dict) else None
            print(f"Deployed function {b.slug}" + (f" (version {version})" if version is not None else "")
                  + ("" if b.verify_jwt else ", JWT not verified") + f" to project {ref}.")
    if output is Output.json:
        emit(deployed, output)


@app.command("list")
@command
def list_(project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
          token: Token = None, data_dir: DataDir = None) -> None:
    """List the project's functions."""
    where = target(api_url, token, data_dir)
    answer = request(where, "GET", f"/projects/{where.project(project_ref)}/functions")
    emit(answer if output is Output.json else listed(answer, "functions"), output,
         ("slug", "name", "version", "status", "verify_jwt", "updated_at"))


@app.command("delete")
@command
def delete(name: Annotated[str, typer.Argument(metavar="NAME")], project_ref: ProjectRef = None,
           output: OutputOpt = Output.pretty, api_url: ApiUrl = None, token: Token = None,
           data_dir: DataDir = None) -> None:
    """Delete a function (every version)."""
    where = target(api_url, token, data_dir)
    answer = request(where, "DELETE", f"/projects/{where.project(project_ref)}/functions/{name}")
    if output is Output.json:
        emit(answer, output)
    else:
        print(f"Deleted function {name}.")
