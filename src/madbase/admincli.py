"""`madbase admin …`: the control plane's admins from the command line, through the running server's
/admin/v1 API and its local token (`<data dir>/admin.token`, written at every start), as the local CLI does.

    madbase admin create --email ada@example.com [--password …] [--role owner --project <ref>]
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from madbase import statefile


def _fail(message: str, code: int = 1) -> None:
    sys.stderr.write(f"madbase: {message}\n")
    raise typer.Exit(code)


def local_call(data_dir: Path, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Call the local server's /admin/v1 `path` as the local platform admin: (status, JSON answer)."""
    state = statefile.ServerState.read(data_dir)
    token_file = data_dir / "admin.token"
    if state is None or not statefile.pid_alive(state.pid) or not token_file.exists():
        _fail(f"no MadBase server is running with data folder {data_dir} (start it with `madbase start`)")
    assert state is not None
    request = urllib.request.Request(
        state.api_url + "/admin/v1" + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer " + token_file.read_text().strip(), "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, {"message": raw.decode(errors="replace")}
    except OSError as exc:
        _fail(f"cannot reach the MadBase server at {state.api_url}: {exc}")
        raise  # unreachable


def create(
    email: Annotated[str, typer.Option(metavar="EMAIL", help="The new admin's e-mail (their login)")],
    password: Annotated[str | None, typer.Option(metavar="PASSWORD",
                                                 help="Their password (default: generated and printed once)")] = None,
    role: Annotated[str, typer.Option(metavar="ROLE", help="Role to assign (default platform_admin)")]
    = "platform_admin",
    project: Annotated[str | None, typer.Option(metavar="REF",
                                                help="Assign the role on this project only")] = None,
    output: Annotated[str, typer.Option("--output", "-o", metavar="FORMAT", help="pretty or json")] = "pretty",
    data_dir: Annotated[Path | None, typer.Option(metavar="DIR",
                                                  help="Data folder of the server (MADBASE_DATA_DIR)")] = None,
) -> None:
    """Create an admin of the control plane (through the running local server)."""
    from madbase.config import ConfigError, load_settings

    try:
        settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    except ConfigError as exc:
        _fail(str(exc), 2)
        return
    body: dict[str, Any] = {"email": email, "roles": [{"role": role, "project_ref": project}]}
    if password is not None:
        body["password"] = password
    status, answer = local_call(settings.data_dir, "POST", "/admins", body)
    if status != 201:
        message = answer.get("message") if isinstance(answer, dict) else None
        _fail(str(message or f"the server answered {status}"))
    if output == "json":
        print(json.dumps(answer, indent=2))
        return
    print(f"Admin created: {answer['email']} (id {answer['id']}, role {role}"
          f"{' on ' + project if project else ', platform-wide'})")
    if "password" in answer:
        print(f"Password: {answer['password']}  (shown once)")
