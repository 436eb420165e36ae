"""`madbase keys list|create|revoke|rotate` (/admin/v1/projects/{ref}/api-keys, …/jwt-secret/rotate)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from madbase.clicmds.client import request
from madbase.clicmds.common import ApiUrl, DataDir, Output, OutputOpt, ProjectRef, Token, command, emit, listed, target

app = typer.Typer(no_args_is_help=True, help="List, create, revoke and rotate a project's API keys.")

COLUMNS = ("id", "name", "type", "api_key", "created_at", "revoked_at")


class KeyType(StrEnum):
    publishable = "publishable"
    secret = "secret"


class Rotated(StrEnum):
    legacy = "legacy"
    jwt_secret = "jwt-secret"


@app.command("list")
@command
def list_(reveal: Annotated[bool, typer.Option("--reveal", help="Show the keys in clear")] = False,
          project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
          token: Token = None, data_dir: DataDir = None) -> None:
    """List the project's API keys (masked unless --reveal)."""
    where = target(api_url, token, data_dir)
    answer = request(where, "GET", f"/projects/{where.project(project_ref)}/api-keys",
                     params={"reveal": "true"} if reveal else None)
    emit(answer if output is Output.json else listed(answer, "api_keys"), output, COLUMNS)


@app.command("create")
@command
def create(key_type: Annotated[KeyType, typer.Option("--type", metavar="TYPE", help="publishable or secret")],
           name: Annotated[str, typer.Option(metavar="NAME", help="A name for the key")],
           project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
           token: Token = None, data_dir: DataDir = None) -> None:
    """Create an sb_publishable_… or sb_secret_… key (shown in clear once)."""
    where = target(api_url, token, data_dir)
    emit(request(where, "POST", f"/projects/{where.project(project_ref)}/api-keys",
                 json_body={"type": key_type.value, "name": name}), output)


@app.command("revoke")
@command
def revoke(key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (see `keys list`)")],
           project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
           token: Token = None, data_dir: DataDir = None) -> None:
    """Revoke one key."""
    where = target(api_url, token, data_dir)
    answer = request(where, "DELETE", f"/projects/{where.project(project_ref)}/api-keys/{key_id}")
    if output is Output.json:
        emit(answer, output)
    else:
        print(f"Key {key_id} revoked.")


@app.command("rotate")
@command
def rotate(what: Annotated[Rotated, typer.Argument(
               metavar="WHAT", help="legacy (new anon and service_role keys) or jwt-secret (new signing key)")],
           grace_seconds: Annotated[int | None, typer.Option(
               "--grace-seconds", metavar="SECONDS", help="How long the old key keeps verifying")] = None,
           project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
           token: Token = None, data_dir: DataDir = None) -> None:
    """Rotate the legacy anon/service_role keys or the JWT signing key, without downtime."""
    where = target(api_url, token, data_dir)
    path = "api-keys/legacy/rotate" if what is Rotated.legacy else "jwt-secret/rotate"
    body: dict[str, Any] = {} if grace_seconds is None else {"grace_seconds": grace_seconds}
    emit(request(where, "POST", f"/projects/{where.project(project_ref)}/{path}", json_body=body), output)
