"""Which server the CLI talks to, with which credential, and one `call()` to /admin/v1.

The target is chosen in this order:
1. `--api-url` / `MADBASE_API_URL` with `--token` / `MADBASE_ACCESS_TOKEN` (or the stored login's token when
   its URL is the same): a remote server, for scripts and CI;
2. `--data-dir` / `MADBASE_DATA_DIR` given: the local server running with that data folder, with its local
   token (`<data dir>/admin.token`, written at every start) — no login;
3. the stored login (`madbase login`, `<config dir>/madbase/credentials.json`, mode 0600);
4. the local server of the default data folder (`./.madbase`), as `madbase status` finds it.
The project is `--project-ref` / `MADBASE_PROJECT_REF`, else the login's default project, else the local
server's default project.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer

from madbase import statefile

TIMEOUT = 120.0  # a deploy bundles on the server
LONG_TIMEOUT = 3600.0  # db push: migrations may rewrite big tables


class CliError(Exception):
    """A failure to print as `madbase: <message>` and exit non-zero (the API's message text when it sent one)."""


def fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"madbase: {message}\n")
    raise typer.Exit(code)


def credentials_path() -> Path:
    """`$MADBASE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/madbase`, else `~/.config/madbase`: credentials.json."""
    folder = os.environ.get("MADBASE_CONFIG_DIR")
    if not folder:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        folder = str(Path(base) / "madbase")
    return Path(folder) / "credentials.json"


def read_login() -> dict[str, Any] | None:
    try:
        value = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and value.get("api_url") and value.get("token") else None


def write_login(login: dict[str, Any]) -> Path:
    """Store the login readable by its owner only (the token is a credential)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(login, fh, indent=2)
    os.chmod(tmp, 0o600)  # an older file of another mode is replaced, not reused
    tmp.replace(path)
    return path


@dataclass(frozen=True, slots=True)
class Target:
    api_url: str  # without /admin/v1
    token: str
    default_ref: str | None
    local: bool

    def project(self, ref: str | None) -> str:
        chosen = ref or os.environ.get("MADBASE_PROJECT_REF") or self.default_ref
        if not chosen:
            raise CliError("no project chosen: pass --project-ref (or set MADBASE_PROJECT_REF)")
        return chosen


def _local(data_dir: Path | None) -> Target:
    from madbase.config import ConfigError, load_settings

    try:
        settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    folder = settings.data_dir
    state = statefile.ServerState.read(folder)
    token_file = folder / "admin.token"
    if state is None or not statefile.pid_alive(state.pid) or not token_file.exists():
        raise CliError(f"no MadBase server is running with data folder {folder} (start it with `madbase start`, "
                       "or `madbase login` to a remote one)")
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise CliError(f"cannot read the local admin token {token_file}: {exc.strerror}") from exc
    return Target(state.api_url.rstrip("/"), token, state.project_ref, local=True)


def resolve(*, api_url: str | None = None, token: str | None = None, data_dir: Path | None = None,
            local: bool = False) -> Target:
    """The server and credential of this command (see the module docstring for the order); `local`: the local
    server whatever else is set (Supabase's `--local`)."""
    if local:
        return _local(data_dir)
    api_url = api_url or os.environ.get("MADBASE_API_URL") or None
    token = token or os.environ.get("MADBASE_ACCESS_TOKEN") or None
    login = read_login()
    if api_url:
        api_url = api_url.rstrip("/")
        if token is None and login is not None and login["api_url"] == api_url:
            token = login["token"]
        if token is None:
            raise CliError(f"no access token for {api_url}: `madbase login --api-url {api_url}`, "
                           "or pass --token (MADBASE_ACCESS_TOKEN)")
        default = login.get("project_ref") if login and login["api_url"] == api_url else None
        return Target(api_url, token, default, local=False)
    if data_dir is not None or os.environ.get("MADBASE_DATA_DIR"):
        return _local(data_dir)
    if login is not None:
        return Target(login["api_url"], token or login["token"], login.get("project_ref"), local=False)
    if token is not None:
        here = _local(None)
        return Target(here.api_url, token, here.default_ref, local=True)
    return _local(None)


def message_of(status: int, raw: bytes) -> str:
    """The API's error text (`{"message"}`, or GoTrue's `msg`/`error_description`), else a short fallback."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "msg", "error_description", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    text = raw.decode(errors="replace").strip()
    return text[:300] if text else f"the server answered {status}"


class ApiError(CliError):
    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def request(target: Target, method: str, path: str, *, json_body: Any = None, params: dict[str, str] | None = None,
            files: list[tuple[str, tuple[str, bytes, str]]] | None = None, data: dict[str, str] | None = None,
            raw: bool = False, headers: dict[str, str] | None = None, timeout: float = TIMEOUT) -> Any:
    """Call `/admin/v1<path>`; the JSON answer (or the text when `raw`); ApiError with the API's message."""
    url = target.api_url + "/admin/v1" + path
    sent = {"Authorization": f"Bearer {target.token}", **(headers or {})}
    try:
        with httpx.Client(timeout=timeout) as http:
            response = http.request(method, url, json=json_body, params=params, files=files, data=data,
                                    headers=sent)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the MadBase server at {target.api_url}: {exc}") from exc
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        raise ApiError(response.status_code, message_of(response.status_code, response.content), body)
    if raw:
        return response.text
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text
