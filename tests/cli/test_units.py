"""Pure pieces of the CLI and of db push: the migration splitter, `config set` pairs, what `functions deploy`
reads from a Supabase project folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from madbase.admin.migrationsql import fingerprint, split
from madbase.clicmds.client import CliError
from madbase.clicmds.functions import all_slugs, bundle_of
from madbase.clicmds.settings import patch_body


def test_split_keeps_quotes_comments_and_bodies_whole() -> None:
    sql = """
    -- heading; not a statement
    create table t (a text default 'x;y', "we;ird" int);
    /* block; /* nested; */ still comment; */
    insert into t values (E'it\\'s; fine', 1);
    create function f() returns int language plpgsql as $body$ begin return 1; end $body$;
    create function g() returns int language sql begin atomic select case when true then 1 end; select 2; end;
    select $$;$$ ;;
    """
    statements = split(sql)
    assert len(statements) == 5
    assert statements[0].startswith("-- heading; not a statement\n    create table t")
    assert statements[1].startswith("/* block;") and statements[1].endswith("1)")
    assert statements[3].endswith("select 2; end")
    assert statements[4] == "select $$;$$"
    assert split("-- only a comment\n") == []


def test_fingerprint_ignores_whitespace_and_semicolons() -> None:
    ours = split("create table a (id int)\n;select 1")
    assert fingerprint(["create table a (id int);", "select 1;"]) == fingerprint(ours)
    assert fingerprint(["select 1"]) != fingerprint(["select 2"])


def test_config_pairs() -> None:
    assert patch_body(["site_url=https://x.test", "mailer_autoconfirm=true", "smtp.port=587", "smtp.host=mail",
                       'schemas=["public","api"]']) == {
        "site_url": "https://x.test", "mailer_autoconfirm": True, "smtp": {"port": 587, "host": "mail"},
        "schemas": ["public", "api"]}
    with pytest.raises(CliError):
        patch_body(["novalue"])


def _function(root: Path, name: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / "supabase" / "functions" / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_deploy_reads_functions_like_supabase(tmp_path: Path) -> None:
    _function(tmp_path, "hello", {"index.ts": "import { cors } from '../_shared/cors.ts'\n",
                                  "deno.json": '{"imports": {"lodash": "npm:lodash@4"}, // a comment\n}'})
    _function(tmp_path, "hook", {"index.js": "export default {}", ".env.local": "SECRET=1"})
    _function(tmp_path, "echo", {"echo.wasm": "\0asm"})
    _function(tmp_path, "_shared", {"cors.ts": "export const cors = {}"})
    (tmp_path / "supabase" / "config.toml").write_text('[functions.hook]\nverify_jwt = false\n'
                                                       '[functions.off]\nenabled = false\n')
    _function(tmp_path, "off", {"index.ts": ""})
    assert all_slugs(tmp_path) == ["echo", "hello", "hook"]
    hello = bundle_of(tmp_path, "hello")
    assert hello.entrypoint == "hello/index.ts" and hello.verify_jwt
    assert hello.import_map == {"imports": {"lodash": "npm:lodash@4"}}
    assert [p for p, _ in hello.files] == ["hello/deno.json", "hello/index.ts", "_shared/cors.ts"]
    hook = bundle_of(tmp_path, "hook")
    assert not hook.verify_jwt and [p for p, _ in hook.files if "hook/" in p] == ["hook/index.js"]
    assert bundle_of(tmp_path, "hello", no_verify_jwt=True).verify_jwt is False
    assert bundle_of(tmp_path, "echo").entrypoint == "echo/echo.wasm"
    meta = bundle_of(tmp_path, "hello").metadata()
    assert json.loads(json.dumps(meta))["slug"] == "hello"
    with pytest.raises(CliError, match="no function"):
        bundle_of(tmp_path, "missing")
