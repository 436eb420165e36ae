"""`madbase db push`: supabase/migrations/*.sql applied in order with Supabase's migration history, each file
in its own transaction, applied ones skipped, changed ones reported, failures with PostgreSQL's message."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.cli.conftest import Cli
from tests.support.servers import MadbaseProcess


def sql(server: MadbaseProcess, statement: str) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(server.db_url)
        try:
            return [dict(r) for r in await conn.fetch(statement)]
        finally:
            await conn.close()
    return asyncio.run(run())


def write(workdir: Path, name: str, text: str) -> Path:
    folder = workdir / "supabase" / "migrations"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def fresh_history(cli_server: MadbaseProcess) -> None:
    """Each test starts from an empty migration history (they share the server's database)."""
    sql(cli_server, "do $$ begin if to_regclass('supabase_migrations.schema_migrations') is not null then "
                    "delete from supabase_migrations.schema_migrations; end if; end $$")


FIRST = """
create table public.push_notes (id bigint generated always as identity primary key, body text not null);
-- a semicolon in a comment; and in a string below
insert into public.push_notes (body) values ('a; b');
create function public.push_count() returns bigint language sql as $$ select count(*) from public.push_notes; $$;
"""
SECOND = "alter table public.push_notes add column tag text;\n"


def test_push_applies_in_order_and_records_history(cli: Cli, cli_server: MadbaseProcess, workdir: Path) -> None:
    write(workdir, "20240101000000_notes.sql", FIRST)
    write(workdir, "20240102000000_tag.sql", SECOND)
    write(workdir, "README.md", "not a migration")
    write(workdir, "notes.sql", "select 1")  # no version: skipped with Supabase's warning

    dry = cli("db", "push", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "20240101000000_notes.sql, 20240102000000_tag.sql" in dry.stdout
    assert sql(cli_server, "select to_regclass('public.push_notes') as t")[0]["t"] is None

    done = cli("db", "push")
    assert done.returncode == 0, done.stderr
    assert "Applied migration 20240101000000_notes.sql" in done.stdout
    assert "Applied migration 20240102000000_tag.sql" in done.stdout
    assert 'Skipping migration notes.sql... (file name must match pattern "<timestamp>_name.sql")' in done.stderr
    rows = sql(cli_server, "select version, name, statements from supabase_migrations.schema_migrations "
                           "where version like '2024010%' order by version")
    assert [(r["version"], r["name"]) for r in rows] == [("20240101000000", "notes"), ("20240102000000", "tag")]
    assert len(rows[0]["statements"]) == 3  # the comment's and the string's semicolons do not split
    assert rows[0]["statements"][2].startswith("create function public.push_count()")
    assert sql(cli_server, "select body, tag from public.push_notes") == [{"body": "a; b", "tag": None}]

    again = cli("db", "push", "-o", "json")
    assert again.returncode == 0, again.stderr
    answer = json.loads(again.stdout)
    assert answer["applied"] == [] and len(answer["skipped"]) == 2 and answer["changed"] == []

    write(workdir, "20240101000000_notes.sql", FIRST + "\ncreate index on public.push_notes (body);\n")
    changed = cli("db", "push")
    assert changed.returncode == 0, changed.stderr
    assert "20240101000000_notes.sql changed after it was applied" in changed.stderr
    assert "up to date" in changed.stdout


def test_failing_file_stops_with_the_database_message(cli: Cli, cli_server: MadbaseProcess, workdir: Path) -> None:
    write(workdir, "20250101000000_ok.sql", "create table public.push_ok (id int);")
    write(workdir, "20250102000000_bad.sql",
          "create table public.push_half (id int);\nselect * from public.no_such_table;")
    failed = cli("db", "push", "--include-all")
    assert failed.returncode == 1
    assert "Migration 20250102000000_bad.sql failed: 42P01" in failed.stderr
    assert 'relation "public.no_such_table" does not exist' in failed.stderr
    assert "Applied before it: 20250101000000" in failed.stderr
    # the good file stayed applied; the bad one rolled back whole (its own transaction)
    assert sql(cli_server, "select to_regclass('public.push_ok') is not null as ok, "
                           "to_regclass('public.push_half') is null as gone") == [{"ok": True, "gone": True}]
    versions = {r["version"] for r in sql(cli_server, "select version from supabase_migrations.schema_migrations")}
    assert "20250101000000" in versions and "20250102000000" not in versions


def test_older_pending_file_needs_include_all(cli: Cli, cli_server: MadbaseProcess, workdir: Path) -> None:
    write(workdir, "20260101000000_late.sql", "create table public.push_late (id int);")
    assert cli("db", "push", "--include-all").returncode == 0
    write(workdir, "20000101000000_early.sql", "create table public.push_early (id int);")
    refused = cli("db", "push")
    assert refused.returncode == 1
    assert "before the last migration" in refused.stderr and "--include-all" in refused.stderr
    assert cli("db", "push", "--include-all").returncode == 0
    assert sql(cli_server, "select to_regclass('public.push_early') is not null as ok") == [{"ok": True}]


def test_errors_are_the_api_messages(cli: Cli, cli_server: MadbaseProcess, workdir: Path) -> None:
    write(workdir, "20240101000000_x.sql", "select 1;")
    unknown = cli("db", "push", "--project-ref", "nosuchprojectref")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "madbase: Project not found"
    # the same text the API answers
    answer = httpx.post(f"{cli_server.url}/admin/v1/projects/nosuchprojectref/database/migrations",
                        headers=cli_server.admin_headers(), json={"migrations": []})
    assert answer.json() == {"message": "Project not found"}
    missing = cli("db", "push", "--workdir", str(workdir / "nowhere"))
    assert missing.returncode == 1 and "no supabase/migrations folder" in missing.stderr


def test_push_needs_database_write(cli_server: MadbaseProcess, tmp_path: Path) -> None:
    from tests.support.admins import admin_token

    token = admin_token(cli_server.db_url, "read_only", cli_server.project_ref)
    base = f"{cli_server.url}/admin/v1/projects/{cli_server.project_ref}/database/migrations"
    refused = httpx.post(base, headers={"Authorization": f"Bearer {token}"}, json={"migrations": []})
    assert refused.status_code == 403
    assert refused.json()["message"] == (f"Forbidden: this requires the right database.write on project "
                                         f"{cli_server.project_ref}")
    listed = httpx.get(base, headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and "migrations" in listed.json()
    bad = httpx.post(base, headers=cli_server.admin_headers(), json={"migrations": [{"version": "x;drop", "sql": ""}]})
    assert bad.status_code == 400 and "version" in bad.json()["message"]


def test_hostile_bodies_are_4xx(cli_server: MadbaseProcess) -> None:
    base = f"{cli_server.url}/admin/v1/projects/{cli_server.project_ref}"
    headers = cli_server.admin_headers()
    for body in (b"[]", b"{", b'{"migrations": 5}', b'{"migrations": [5]}', b'{"migrations": [{"version": "1"}]}',
                 b'{"migrations": [{"version": "1", "sql": "select 1", "name": 7}]}',
                 b'{"migrations": [{"version": "1", "sql": ""}, {"version": "1", "sql": ""}]}',
                 b'{"migrations": [{"version": "' + b"9" * 41 + b'", "sql": ""}]}'):
        answer = httpx.post(base + "/database/migrations", headers={**headers, "content-type": "application/json"},
                            content=body)
        assert 400 <= answer.status_code < 500, (body, answer.text)
        assert answer.json()["message"]
    # a file ending its own session: a clear 400, nothing recorded
    lost = httpx.post(base + "/database/migrations", headers=headers, json={"migrations": [
        {"version": "30000101000000", "name": "bye", "sql": "select pg_terminate_backend(pg_backend_pid());"}]})
    assert lost.status_code == 400 and "connection was lost" in lost.json()["message"]
    for schemas in ("", ",,", "a\x00b", "x" * 64, ",".join(f"s{i}" for i in range(51))):
        answer = httpx.get(base + "/types/typescript", params={"included_schemas": schemas}, headers=headers)
        assert answer.status_code in (200, 400), answer.text
