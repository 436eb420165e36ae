"""`madbase config get|set SECTION [key=value …]` (GET|PATCH /admin/v1/projects/{ref}/config/{section}).

Values are JSON when they parse as JSON (`true`, `3600`, `["public","api"]`), else text; a dotted key
(`smtp.host=mail.example.com`) sets a nested field.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

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
    parse_pairs,
    target,
)

app = typer.Typer(no_args_is_help=True, help="Read and change a project's settings, by section.")

SECTIONS = ("auth", "api", "jwt", "database", "storage", "realtime", "functions")
Section = Annotated[str, typer.Argument(metavar="SECTION", help="One of " + ", ".join(SECTIONS))]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def patch_body(pairs: list[str]) -> dict[str, Any]:
    """`a=1 smtp.host=x` → {"a": 1, "smtp": {"host": "x"}}."""
    body: dict[str, Any] = {}
    for key, text in parse_pairs(pairs).items():
        *parents, leaf = key.split(".")
        node = body
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CliError(f"{key}: {part} is set to a value and cannot also hold fields")
            node = child
        node[leaf] = _value(text)
    return body


def _section(name: str) -> str:
    if name not in SECTIONS:
        raise CliError(f"unknown section {name!r}: one of {', '.join(SECTIONS)}")
    return name


@app.command("get")
@command
def get(section: Section, project_ref: ProjectRef = None, output: OutputOpt = Output.pretty,
        api_url: ApiUrl = None, token: Token = None, data_dir: DataDir = None) -> None:
    """Show one section of the project's settings (secrets masked)."""
    where = target(api_url, token, data_dir)
    emit(request(where, "GET", f"/projects/{where.project(project_ref)}/config/{_section(section)}"), output)


@app.command("set")
@command
def set_(section: Section,
         pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...", help="Settings to change")],
         project_ref: ProjectRef = None, output: OutputOpt = Output.pretty, api_url: ApiUrl = None,
         token: Token = None, data_dir: DataDir = None) -> None:
    """Change settings of one section (validated and applied live by the server)."""
    where = target(api_url, token, data_dir)
    emit(request(where, "PATCH", f"/projects/{where.project(project_ref)}/config/{_section(section)}",
                 json_body=patch_body(pairs)), output)
