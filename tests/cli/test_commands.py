"""The commands whose /admin/v1 routes are built on other branches (projects, keys, config, users, functions,
secrets), run for real against the local server through its data folder. Until those routes are merged the
server answers 404 "no route matched" and each test is skipped — never mocked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from madbase.core.pgcluster import PgCluster
from tests.cli.conftest import Cli, skip_without_route
from tests.support.servers import MadbaseProcess, create_database


def ok(result: object) -> str:
    skip_without_route(result)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    return str(result.stdout)  # type: ignore[attr-defined]


def test_projects(cli: Cli, pg_cluster: PgCluster) -> None:
    listed = json.loads(ok(cli("projects", "list", "-o", "json")))
    assert any(p["ref"] for p in listed["projects"])
    db_url = asyncio.run(create_database(pg_cluster, "clip"))
    made = json.loads(ok(cli("projects", "create", "CLI project", "--db-url", db_url, "-o", "json")))
    ref = made["ref"]
    assert ref in ok(cli("projects", "list"))
    assert json.loads(ok(cli("projects", "get", ref, "-o", "json")))["name"] == "CLI project"
    ok(cli("projects", "pause", ref))
    assert json.loads(ok(cli("projects", "get", ref, "-o", "json")))["status"] != "active"
    ok(cli("projects", "restore", ref))
    ok(cli("projects", "delete", ref, "--yes"))
    gone = cli("projects", "delete", "nosuchproject", "--yes")
    assert gone.returncode == 1 and gone.stderr.startswith("madbase: ")


def test_keys(cli: Cli, cli_server: MadbaseProcess) -> None:
    keys = json.loads(ok(cli("keys", "list", "-o", "json")))
    assert isinstance(keys, list)
    made = json.loads(ok(cli("keys", "create", "--type", "secret", "--name", "cli_ci", "-o", "json")))
    assert made["api_key"].startswith("sb_secret_")
    assert "cli_ci" in ok(cli("keys", "list"))
    ok(cli("keys", "revoke", made["id"]))
    rotated = json.loads(ok(cli("keys", "rotate", "legacy", "--grace-seconds", "60", "-o", "json")))
    assert rotated  # the new anon and service_role keys
    signing = json.loads(ok(cli("keys", "rotate", "jwt-secret", "--grace-seconds", "60", "-o", "json")))
    assert "key_id" in signing
    refused = cli("keys", "rotate", "legacy", "--grace-seconds", "-5")
    assert refused.returncode == 1 and refused.stderr.startswith("madbase: ")


def test_config(cli: Cli) -> None:
    before = json.loads(ok(cli("config", "get", "api", "-o", "json")))
    assert isinstance(before, dict)
    bad = cli("config", "get", "nosuchsection")
    assert bad.returncode == 1 and "unknown section" in bad.stderr
    ok(cli("config", "set", "auth", "mailer_autoconfirm=true"))
    assert json.loads(ok(cli("config", "get", "auth", "-o", "json")))["mailer_autoconfirm"] is True


def test_users(cli: Cli) -> None:
    made = json.loads(ok(cli("users", "create", "--email", "cli-user@example.com", "--password", "pass-word-123",
                             "-o", "json")))
    user_id = made.get("id") or made.get("user", {}).get("id")
    assert "cli-user@example.com" in ok(cli("users", "list"))
    ok(cli("users", "delete", user_id))


def test_secrets(cli: Cli, workdir: Path) -> None:
    (workdir / ".env.functions").write_text("# functions' secrets\nFROM_FILE=one\nexport QUOTED=\"two words\"\n")
    ok(cli("secrets", "set", "CLI_SECRET=s3cret", "--env-file", str(workdir / ".env.functions")))
    names = ok(cli("secrets", "list"))
    assert "CLI_SECRET" in names and "FROM_FILE" in names and "QUOTED" in names and "s3cret" not in names
    ok(cli("secrets", "unset", "CLI_SECRET", "FROM_FILE", "QUOTED"))
    assert "CLI_SECRET" not in ok(cli("secrets", "list"))


def test_functions(cli: Cli, workdir: Path) -> None:
    folder = workdir / "supabase" / "functions" / "cli-hello"
    folder.mkdir(parents=True)
    (folder / "index.ts").write_text(
        "Deno.serve(async (req: Request) => new Response(JSON.stringify({ hello: 'world' }),"
        " { headers: { 'Content-Type': 'application/json' } }))\n")
    deployed = ok(cli("functions", "deploy", "cli-hello", "--no-verify-jwt"))
    assert "Deployed function cli-hello" in deployed
    assert "cli-hello" in ok(cli("functions", "list"))
    ok(cli("functions", "delete", "cli-hello"))
