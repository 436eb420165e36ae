"""`madbase secrets set|list|unset` — the project's function secrets (/admin/v1/projects/{ref}/secrets, with
Supabase's shapes: a list of `{name, value}` to set, a list of names to unset, names only when listing)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from madbase.clicmds.client import CliError, request
from madbase.clicmds.common import (
    ApiUrl,
    DataDir,
    Output,
    OutputOpt,
    ProjectRef,
    Token,
    command,
    emit,
    listed,
    parse_pairs,
    target,
)

app = typer.Typer(no_args_is_help=True, help="Set, list and unset the secrets a project's functions read.")


def read_env_file(path: Path) -> dict[str, str]:
    """A dotenv file's pairs: `NAME=value`, `export NAME=value`, quotes stripped, comments and blanks skipped."""
    import io

    from dotenv import dotenv_values

    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


@app.command("set")
@command
def set_(pairs: Annotated[list[str] | None, typer.Argument(metavar="NAME=VALUE...")] = None,
         env_file: Annotated[Path | None, typer.Option("--env-file", metavar="FILE",
                                                       help="Read NAME=VALUE lines from a .env file")] = None,
         project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
         token: Token = None, data_dir: DataDir = None) -> None:
    """Set secrets (environment variables of the project's functions)."""
    values = read_env_file(env_file) if env_file else {}
    values.update(parse_pairs(pairs or [], "NAME=VALUE"))
    if not values:
        raise CliError("nothing to set: give NAME=VALUE pairs or --env-file")
    where = target(api_url, token, data_dir)
    answer = request(where, "POST", f"/projects/{where.project(project_ref)}/secrets",
                     json_body=[{"name": k, "value": v} for k, v in values.items()])
    if output is Output.json:
        emit(answer, output)
    else:
        print("Set secrets: " + ", ".join(values))


@app.command("list")
@command
def list_(project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
          token: Token = None, data_dir: DataDir = None) -> None:
    """List the secrets' names (values are never shown)."""
    where = target(api_url, token, data_dir)
    answer = request(where, "GET", f"/projects/{where.project(project_ref)}/secrets")
    emit(answer if output is Output.json else listed(answer, "secrets"), output, ("name", "updated_at"))


@app.command("unset")
@command
def unset(names: Annotated[list[str], typer.Argument(metavar="NAME...")],
          project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
          token: Token = None, data_dir: DataDir = None) -> None:
    """Remove secrets."""
    where = target(api_url, token, data_dir)
    answer = request(where, "DELETE", f"/projects/{where.project(project_ref)}/secrets", json_body=names)
    if output is Output.json:
        emit(answer, output)
    else:
        print("Unset secrets: " + ", ".join(names))
