"""`madbase users list|create|delete` (the project's auth users: /admin/v1/projects/{ref}/users)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from madbase.clicmds.client import request
from madbase.clicmds.common import ApiUrl, DataDir, Output, OutputOpt, ProjectRef, Token, command, emit, listed, target

app = typer.Typer(no_args_is_help=True, help="List, create and delete a project's auth users.")

COLUMNS = ("id", "email", "phone", "created_at", "last_sign_in_at")


@app.command("list")
@command
def list_(search: Annotated[str | None, typer.Option(metavar="TEXT", help="Only users matching this")] = None,
          project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
          token: Token = None, data_dir: DataDir = None) -> None:
    """List (or search) the project's users."""
    where = target(api_url, token, data_dir)
    answer = request(where, "GET", f"/projects/{where.project(project_ref)}/users",
                     params={"search": search} if search else None)
    emit(answer if output is Output.json else listed(answer, "users"), output, COLUMNS)


@app.command("create")
@command
def create(email: Annotated[str | None, typer.Option(metavar="EMAIL")] = None,
           phone: Annotated[str | None, typer.Option(metavar="PHONE")] = None,
           password: Annotated[str | None, typer.Option(metavar="PASSWORD")] = None,
           confirm: Annotated[bool, typer.Option("--confirm/--no-confirm",
                                                 help="Mark the e-mail/phone as confirmed")] = True,
           project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
           token: Token = None, data_dir: DataDir = None) -> None:
    """Create a user (as GoTrue's admin API does)."""
    body: dict[str, Any] = {}
    if email:
        body["email"] = email
        body["email_confirm"] = confirm
    if phone:
        body["phone"] = phone
        body["phone_confirm"] = confirm
    if password:
        body["password"] = password
    where = target(api_url, token, data_dir)
    emit(request(where, "POST", f"/projects/{where.project(project_ref)}/users", json_body=body), output,
         None if output is Output.json else COLUMNS[:3])


@app.command("delete")
@command
def delete(user_id: Annotated[str, typer.Argument(metavar="ID", help="The user's id")],
           project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
           token: Token = None, data_dir: DataDir = None) -> None:
    """Delete a user."""
    where = target(api_url, token, data_dir)
    answer = request(where, "DELETE", f"/projects/{where.project(project_ref)}/users/{user_id}")
    if output is Output.json:
        emit(answer, output)
    else:
        print(f"User {user_id} deleted.")
