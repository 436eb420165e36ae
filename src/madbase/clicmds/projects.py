"""`madbase projects create|list|get|pause|restore|delete` (/admin/v1/projects[/{ref}[/pause|/restore]])."""

from __future__ import annotations

from typing import Annotated

import typer

from madbase.clicmds.client import CliError, request
from madbase.clicmds.common import ApiUrl, DataDir, Output, OutputOpt, ProjectRef, Token, command, emit, listed, target

app = typer.Typer(no_args_is_help=True, help="Create, list, pause, restore and delete projects.")

COLUMNS = ("ref", "name", "status", "api_url", "created_at")
Ref = Annotated[str, typer.Argument(metavar="REF", help="The project's ref")]


@app.command("create")
@command
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The project's name")],
    ref: Annotated[str | None, typer.Option(metavar="REF", help="Its ref (default: generated)")] = None,
    db_url: Annotated[str | None, typer.Option(
        "--db-url", metavar="URL", help="Your own PostgreSQL (default: a new database on the default cluster)")] = None,
    output: OutputOpt = Output.pretty, api_url: ApiUrl = None, token: Token = None, data_dir: DataDir = None,
) -> None:
    """Create a project (its database tested first when you bring your own)."""
    body: dict[str, str] = {"name": name}
    if ref:
        body["ref"] = ref
    if db_url:
        body["database_url"] = db_url
    emit(request(target(api_url, token, data_dir), "POST", "/projects", json_body=body), output, COLUMNS)


@app.command("list")
@command
def list_(output: OutputOpt = Output.pretty, api_url: ApiUrl = None, token: Token = None,
          data_dir: DataDir = None) -> None:
    """List the projects you may read."""
    answer = request(target(api_url, token, data_dir), "GET", "/projects")
    emit(answer if output is Output.json else listed(answer, "projects"), output, COLUMNS)


@app.command("get")
@command
def get(ref: Annotated[str | None, typer.Argument(metavar="REF", help="Default: --project-ref or the local one")]
        = None, project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
        token: Token = None, data_dir: DataDir = None) -> None:
    """Show a project."""
    where = target(api_url, token, data_dir)
    emit(request(where, "GET", f"/projects/{where.project(ref or project_ref)}"), output)


def _action(ref: str, verb: str, output: Output, api_url: str | None, token: str | None, data_dir: object) -> None:
    answer = request(target(api_url, token, data_dir), "POST", f"/projects/{ref}/{verb}")  # type: ignore[arg-type]
    if output is Output.json:
        emit(answer, output)
    else:
        print(f"Project {ref}: {verb} done" + (f" (status {answer['status']})."
                                               if isinstance(answer, dict) and "status" in answer else "."))


@app.command("pause")
@command
def pause(ref: Ref, output: OutputOpt = Output.pretty, api_url: ApiUrl = None, token: Token = None,
          data_dir: DataDir = None) -> None:
    """Pause a project: its API refuses every request until it is restored."""
    _action(ref, "pause", output, api_url, token, data_dir)


@app.command("restore")
@command
def restore(ref: Ref, output: OutputOpt = Output.pretty, api_url: ApiUrl = None, token: Token = None,
            data_dir: DataDir = None) -> None:
    """Restore a paused or deleted (within the grace period) project."""
    _action(ref, "restore", output, api_url, token, data_dir)


@app.command("delete")
@command
def delete(
    ref: Ref,
    hard: Annotated[bool, typer.Option("--hard", help="Delete for good (only after the grace period)")] = False,
    drop_database: Annotated[bool, typer.Option("--drop-database", help="With --hard: drop its database too")]
    = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    output: OutputOpt = Output.pretty, api_url: ApiUrl = None, token: Token = None, data_dir: DataDir = None,
) -> None:
    """Delete a project (soft: restorable during the grace period)."""
    if drop_database and not hard:
        raise CliError("--drop-database needs --hard")
    if not yes and not typer.confirm(f"Delete project {ref}{' for good' if hard else ''}?"):
        raise CliError("not deleted")
    params = {"hard": "true"} if hard else {}
    if drop_database:
        params["drop_database"] = "true"
    answer = request(target(api_url, token, data_dir), "DELETE", f"/projects/{ref}", params=params)
    if output is Output.json:
        emit(answer, output)
    else:
        print(f"Project {ref} deleted{' for good' if hard else ' (restorable with `madbase projects restore`)'}.")
