"""`madbase db push`: apply `supabase/migrations/<version>_<name>.sql` (Supabase's layout) to a project's
database, in version order, each file in its own transaction, recorded in Supabase's migration history
(POST /admin/v1/projects/{ref}/database/migrations; the server runs them — admin/migrationroutes.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from madbase.clicmds.client import LONG_TIMEOUT, CliError, request
from madbase.clicmds.common import ApiUrl, DataDir, Local, Output, OutputOpt, ProjectRef, Token, command, emit, target

app = typer.Typer(no_args_is_help=True, help="Apply a Supabase project's migrations to a project's database.")

FILE = re.compile(r"^([0-9]+)_(.*)\.sql$")


def local_migrations(workdir: Path) -> list[dict[str, str]]:
    """The migration files of `workdir/supabase/migrations`, sorted by version (others skipped with a warning)."""
    folder = workdir / "supabase" / "migrations"
    if not folder.is_dir():
        raise CliError(f"no supabase/migrations folder in {workdir.resolve()}")
    found = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        m = FILE.match(path.name)
        if m is None:
            sys.stderr.write(f"Skipping migration {path.name}... "
                             '(file name must match pattern "<timestamp>_name.sql")\n')
            continue
        try:
            sql = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {path}: {exc}") from exc
        found.append({"version": m.group(1), "name": m.group(2), "sql": sql})
    return sorted(found, key=lambda f: (len(f["version"]), f["version"]))


def _names(entries: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e['version']}_{e['name']}.sql" for e in entries)


@app.command("push")
@command
def push(workdir: Annotated[Path, typer.Option("--workdir", metavar="DIR",
                                               help="The project folder holding supabase/")] = Path("."),
         dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be applied")] = False,
         include_all: Annotated[bool, typer.Option(
             "--include-all", help="Also apply files older than the last applied migration")] = False,
         local: Local = False, project_ref: ProjectRef = None, output: OutputOpt = Output.pretty,
         api_url: ApiUrl = None, token: Token = None, data_dir: DataDir = None) -> None:
    """Apply supabase/migrations/*.sql not yet applied, in order, with Supabase's migration history."""
    files = local_migrations(workdir)
    where = target(api_url, token, data_dir, local)
    ref = where.project(project_ref)
    answer = request(where, "POST", f"/projects/{ref}/database/migrations",
                     json_body={"migrations": files, "dry_run": dry_run, "include_all": include_all},
                     timeout=LONG_TIMEOUT)
    if output is Output.json:
        emit(answer, output)
        return
    for entry in answer.get("changed", []):
        sys.stderr.write(f"Warning: {entry['version']}_{entry['name']}.sql changed after it was applied; "
                         "it is not applied again (write a new migration instead)\n")
    if answer.get("remote_only"):
        sys.stderr.write("Warning: applied migrations not found in supabase/migrations: "
                         f"{', '.join(e['version'] for e in answer['remote_only'])}\n")
    todo = answer.get("pending" if dry_run else "applied", [])
    if not todo:
        print(f"Remote database is up to date ({len(answer.get('skipped', []))} migrations applied before).")
    elif dry_run:
        print(f"Would apply to project {ref}: {_names(todo)}")
    else:
        for entry in todo:
            print(f"Applied migration {entry['version']}_{entry['name']}.sql")
        print(f"Finished: {len(todo)} applied to project {ref}.")
