"""The dashboard's project pages end to end, each against the real admin API it uses: SQL editor, table
editor, policies from a template, storage, projects, keys, users, overview charts, logs, realtime, functions.
A page whose admin routes are not on this server yet (built on another branch) is skipped while its route
answers 404 "no route matched" — no mocks."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.dashboard.conftest import Watched, admin_api, make_admin, route_missing, shot, sign_in
from tests.support.servers import MadbaseProcess, create_database

JS = Path(__file__).resolve().parents[1] / "js"  # tests/js: supabase-js, installed by ./dev
# a 2x2 PNG (red, green / blue, white)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxAAEDAwMDAAAJgIFAHFX8a0AAAAASUVORK5CYII=")


def need(server: MadbaseProcess, path: str) -> None:
    if route_missing(server, path):
        pytest.skip(f"{path} is not on this server yet")


def sql(server: MadbaseProcess, text: str, role: str = "postgres") -> dict[str, Any]:
    r = admin_api(server, "POST", f"/projects/{server.project_ref}/database/query", json={"query": text, "role": role})
    assert r.status_code == 200, r.text
    return dict(r.json())


def supabase_js_select(url: str, key: str, ref: str, table: str) -> Any:
    """`select *` on `table` with the real supabase-js (tests/js's install) and `key`."""
    script = ("import { createClient } from '@supabase/supabase-js';"
              "const [url, key, ref, table] = process.argv.slice(1);"
              "const sb = createClient(url, key, { auth: { persistSession: false }, realtime: { transport: class {} },"
              " global: { headers: { 'x-project-ref': ref } } });"
              "const r = await sb.from(table).select('*');"
              "console.log(JSON.stringify(r.error ? { error: r.error } : r.data));")
    if not (JS / "node_modules").exists():  # ./dev installs it; a bare pytest run may not have
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True, timeout=600)
    done = subprocess.run(["node", "--input-type=module", "-e", script, url, key, ref, table], cwd=JS,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    answers = [line for line in done.stdout.splitlines() if line.startswith(("[", "{"))]  # not its warnings
    return json.loads(answers[-1])


def go(p: Any, server: MadbaseProcess, hash_: str) -> None:
    p.goto(f"{server.url}/_/{hash_}")
    p.get_by_role("heading", level=1).first.wait_for()


@pytest.fixture
def signed_in(dash_server: MadbaseProcess, page: Watched) -> Watched:
    sign_in(page.page, dash_server, make_admin(dash_server))
    return page


def test_sql_editor_runs_the_selection_and_places_errors(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    need(dash_server, f"/projects/{dash_server.project_ref}/database/query")
    p = signed_in.page
    go(p, dash_server, f"#/p/{dash_server.project_ref}/sql")
    editor = p.get_by_label("SQL", exact=True)
    editor.fill("select 41 + 1 as answer;\nselect nope from nowhere;")
    editor.evaluate("el => el.setSelectionRange(0, 24)")  # the first statement only
    editor.press("Control+Enter")
    p.get_by_role("cell", name="42").wait_for()
    assert p.get_by_role("columnheader", name="answer").is_visible()
    editor.evaluate("el => el.setSelectionRange(0, 0)")
    p.get_by_role("button", name="Run", exact=True).click()
    alert = p.get_by_role("alert")
    alert.wait_for()
    assert "line 2" in alert.inner_text() and "nowhere" in alert.inner_text()
    p.get_by_text("History", exact=True).click()
    assert p.get_by_role("button", name="select 41 + 1 as answer;", exact=True).is_visible()
    shot(p, "desktop-sql-editor")
    assert signed_in.script_errors() == []


def test_table_editor_edits_inserts_and_deletes(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    need(dash_server, f"/projects/{dash_server.project_ref}/database/tables")
    table = f"items_{uuid.uuid4().hex[:6]}"
    sql(dash_server, f"create table public.{table} (id int primary key, title text); "
                     f"insert into public.{table} values (1, 'first'), (2, 'second')")
    p = signed_in.page
    go(p, dash_server, f"#/p/{dash_server.project_ref}/tables?table=public.{table}")
    p.get_by_role("button", name="first").click()
    dialog = p.get_by_role("dialog")
    dialog.get_by_label("Value").fill("edited")
    dialog.get_by_role("button", name="Save").click()
    p.get_by_role("button", name="edited").wait_for()
    p.get_by_role("button", name="Insert row").click()
    dialog = p.get_by_role("dialog")
    dialog.get_by_label("id").fill("3")
    dialog.get_by_label("title").fill("third")
    dialog.get_by_role("button", name="Insert").click()
    p.get_by_role("button", name="third").wait_for()
    p.get_by_role("row").filter(has_text="second").get_by_role("button", name="Delete").click()
    p.get_by_role("dialog").get_by_role("button", name="Delete row").click()
    p.get_by_role("button", name="second").wait_for(state="detached")
    rows = sql(dash_server, f"select id, title from public.{table} order by id")["rows"]
    assert rows == [[1, "edited"], [3, "third"]]
    assert signed_in.script_errors() == []


def test_policy_from_a_template_shows_its_sql_then_runs_it(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    need(dash_server, f"/projects/{dash_server.project_ref}/database/tables")
    table = f"notes_{uuid.uuid4().hex[:6]}"
    sql(dash_server, f"create table public.{table} (id int primary key, user_id uuid, body text)")
    p = signed_in.page
    go(p, dash_server, f"#/p/{dash_server.project_ref}/policies?table=public.{table}")
    p.get_by_label("Template", exact=True).select_option("owner")
    shown = p.get_by_label("Policy SQL")
    text = shown.input_value()
    assert text.startswith(f'alter table "public"."{table}" enable row level security;')
    assert '(select auth.uid()) = "user_id"' in text
    p.get_by_role("button", name="Run SQL").click()
    p.get_by_role("cell", name=f"Owners manage their {table}").wait_for()
    r = admin_api(dash_server, "GET", f"/projects/{dash_server.project_ref}/database/tables/public/{table}/policies")
    assert r.json()["rls_enabled"] is True
    assert [x["name"] for x in r.json()["policies"]] == [f"Owners manage their {table}"]
    assert signed_in.script_errors() == []


def test_storage_upload_preview_and_delete(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    need(dash_server, f"/projects/{dash_server.project_ref}/buckets")
    p = signed_in.page
    bucket = f"pics-{uuid.uuid4().hex[:6]}"
    go(p, dash_server, f"#/p/{dash_server.project_ref}/storage")
    p.get_by_role("button", name="New bucket").click()
    dialog = p.get_by_role("dialog")
    dialog.get_by_label("Name").fill(bucket)
    dialog.get_by_label("Allowed MIME types (comma separated)").fill("image/*")
    dialog.get_by_role("button", name="Create").click()
    p.get_by_role("navigation", name="Buckets").get_by_role("link", name=bucket).wait_for()
    p.get_by_label("Files to upload").set_input_files({"name": "dot.png", "mimeType": "image/png", "buffer": PNG})
    p.get_by_role("button", name="dot.png").click()
    image = p.get_by_role("img", name="Preview of dot.png")
    image.wait_for()
    p.wait_for_function("() => document.querySelector('.preview img').naturalWidth === 2")
    shot(p, "desktop-storage-preview")
    p.get_by_role("row").filter(has_text="dot.png").get_by_role("button", name="Delete").click()
    p.get_by_role("dialog").get_by_role("button", name="Delete file").click()
    p.get_by_text("This folder is empty.").wait_for()
    assert signed_in.script_errors() == []


def test_keys_reveal_copy_and_rotate_with_grace(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    ref = dash_server.project_ref
    need(dash_server, f"/projects/{ref}/api-keys")
    p = signed_in.page
    p.context.grant_permissions(["clipboard-read", "clipboard-write"])
    go(p, dash_server, f"#/p/{ref}/api")
    row = p.get_by_role("row").filter(has_text="service_role")
    row.get_by_role("button", name="Reveal").click()
    row.get_by_role("button", name="Reveal").wait_for(state="detached")
    revealed = row.locator("code").inner_text()
    assert revealed.count(".") == 2  # a whole JWT, not a masked one
    r = httpx.get(dash_server.url + "/rest/v1/", headers={"apikey": revealed, "x-project-ref": ref})
    assert r.status_code == 200
    p.get_by_role("row").filter(has_text="anon").get_by_role("button", name="Copy").click()
    p.get_by_text("Copied").wait_for()
    anon = p.evaluate("navigator.clipboard.readText()")
    assert "createClient(\n  '" in p.get_by_label("createClient snippet").inner_text()
    p.get_by_label("Grace window (seconds)").fill("600")
    p.get_by_role("button", name="Rotate legacy keys").click()
    p.get_by_role("dialog").get_by_text("keep working for 10 min").wait_for()
    p.get_by_role("dialog").get_by_role("button", name="Rotate legacy keys").click()
    p.get_by_text("legacy keys rotated").wait_for()
    old = httpx.get(dash_server.url + "/rest/v1/", headers={"apikey": anon, "x-project-ref": ref})
    assert old.status_code == 200  # still accepted during the grace window
    assert signed_in.script_errors() == []


def test_users_create_then_listed(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    ref = dash_server.project_ref
    need(dash_server, f"/projects/{ref}/users")
    email = f"u-{uuid.uuid4().hex[:6]}@example.com"
    p = signed_in.page
    go(p, dash_server, f"#/p/{ref}/users")
    p.get_by_role("button", name="Create user").click()
    dialog = p.get_by_role("dialog")
    dialog.get_by_label("E-mail").fill(email)
    dialog.get_by_label("Password").fill("a-long-password-1")
    dialog.get_by_role("button", name="Create").click()
    p.get_by_role("cell", name=email).wait_for()
    assert signed_in.script_errors() == []


def test_overview_draws_usage_charts(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    ref = dash_server.project_ref
    need(dash_server, f"/projects/{ref}/usage")
    for _ in range(5):
        httpx.get(dash_server.url + "/rest/v1/", headers={**dash_server.headers(), "x-project-ref": ref})
    p = signed_in.page
    go(p, dash_server, f"#/p/{ref}/overview")
    p.get_by_role("heading", name="Usage").wait_for()
    assert p.locator("figure").count() == 7
    p.get_by_role("button", name="Last day").click()
    p.get_by_role("button", name="Last day", pressed=True).wait_for()
    assert signed_in.script_errors() == []


def test_request_logs_filter(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    ref = dash_server.project_ref
    need(dash_server, f"/projects/{ref}/logs")
    httpx.get(dash_server.url + "/rest/v1/no_such_table_here", headers={**dash_server.headers(), "x-project-ref": ref})
    p = signed_in.page
    go(p, dash_server, f"#/p/{ref}/logs")
    p.get_by_label("Path").fill("/rest/v1/no_such_table_here")
    p.get_by_role("button", name="Filter").click()
    p.get_by_role("cell", name="/rest/v1/no_such_table_here").first.wait_for()
    assert signed_in.script_errors() == []


def test_realtime_live_view_shows_a_broadcast(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    ref = dash_server.project_ref
    need(dash_server, f"/projects/{ref}/realtime/connections")
    need(dash_server, f"/projects/{ref}/api-keys")
    p = signed_in.page
    go(p, dash_server, f"#/p/{ref}/realtime")
    p.get_by_label("Channel").fill("dash-room")
    p.get_by_role("button", name="Listen").click()
    p.get_by_text("Listening on dash-room").wait_for()
    r = httpx.post(dash_server.url + "/realtime/v1/api/broadcast",
                   headers={**dash_server.headers(key=dash_server.service_role_key), "x-project-ref": ref},
                   json={"messages": [{"topic": "dash-room", "event": "hello", "payload": {"n": 1}}]})
    assert r.status_code in (200, 202), r.text
    p.get_by_text('"n": 1').wait_for()
    # a database change on a table the admin picks
    table = f"live_{uuid.uuid4().hex[:6]}"
    sql(dash_server, f"create table public.{table} (id int primary key, title text); "
                     f"grant select on public.{table} to anon, authenticated; "
                     f"alter publication supabase_realtime add table public.{table}")
    p.get_by_role("button", name="Stop").click()
    p.get_by_text("Not listening.").wait_for()
    p.get_by_label("Table", exact=True).fill(table)
    p.get_by_role("button", name="Listen").click()
    p.get_by_text("Listening on dash-room").wait_for()
    sql(dash_server, f"insert into public.{table} values (1, 'arrived live')")
    p.get_by_text('"title": "arrived live"').wait_for(timeout=30_000)
    assert signed_in.script_errors() == []


WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Content-Type: text/plain\\r\\n\\r\\nhello from the dashboard")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 52))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


def test_functions_deploy_invoke_and_logs(dash_server: MadbaseProcess, signed_in: Watched,
                                          tmp_path: Path) -> None:
    ref = dash_server.project_ref
    need(dash_server, f"/projects/{ref}/functions")
    need(dash_server, f"/projects/{ref}/api-keys")
    wat2wasm = shutil.which("wat2wasm")
    if wat2wasm is None:
        pytest.fail("Debian's wabt (wat2wasm) is required to build the test function")
    (tmp_path / "hello.wat").write_text(WAT)
    subprocess.run([wat2wasm, str(tmp_path / "hello.wat"), "-o", str(tmp_path / "hello.wasm")], check=True)
    slug = f"hello-{uuid.uuid4().hex[:4]}"
    p = signed_in.page
    go(p, dash_server, f"#/p/{ref}/functions")
    form = p.get_by_role("form", name="Deploy a function")
    form.get_by_label("Slug").fill(slug)
    form.get_by_label("Or upload a file (.ts, .js, .wasm)").set_input_files(str(tmp_path / "hello.wasm"))
    form.get_by_role("button", name="Deploy").click()
    p.get_by_role("heading", name=slug).first.wait_for(timeout=60_000)
    p.get_by_role("button", name="Invoke").click()
    p.get_by_text("hello from the dashboard").wait_for(timeout=60_000)
    deadline = time.time() + 30
    while "→ 200" not in p.get_by_label("Logs").inner_text():  # the live logs (polled)
        assert time.time() < deadline, "the invocation never reached the logs"
        time.sleep(0.5)
    shot(p, "desktop-functions")
    assert signed_in.script_errors() == []


def test_functions_deploy_from_the_in_browser_editor(dash_server: MadbaseProcess, signed_in: Watched) -> None:
    ref = dash_server.project_ref
    need(dash_server, f"/projects/{ref}/functions")
    need(dash_server, f"/projects/{ref}/api-keys")
    slug = f"greet-{uuid.uuid4().hex[:4]}"
    p = signed_in.page
    go(p, dash_server, f"#/p/{ref}/functions")
    form = p.get_by_role("form", name="Deploy a function")
    form.get_by_label("Slug").fill(slug)
    assert "Deno.serve" in form.get_by_label("Function source").input_value()  # the starter function
    form.get_by_role("button", name="Deploy").click()
    p.get_by_role("heading", name=slug).first.wait_for(timeout=120_000)
    p.get_by_role("button", name="Invoke").click()
    p.get_by_text('"message":"Hello MadBase!"').wait_for(timeout=60_000)
    assert signed_in.script_errors() == []


# last: a second project means public API calls must name theirs (x-project-ref), and a browser WebSocket
# cannot (the realtime live view then needs the project's subdomain)
def test_create_a_project_on_a_second_database(dash_server: MadbaseProcess, signed_in: Watched,
                                              pg_cluster: PgCluster) -> None:
    need(dash_server, "/projects")
    # Playwright's sync API runs an event loop in this thread: make the database from another one
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(asyncio.run, create_database(pg_cluster, "dash2")).result()
    p = signed_in.page
    go(p, dash_server, "#/projects")
    form = p.get_by_role("form", name="New project")
    form.get_by_label("Name").fill("Second project")
    form.get_by_label("Database", exact=True).select_option("byo")
    form.get_by_label("Database URL").fill(second)
    form.get_by_role("button", name="Test connection").click()
    p.get_by_text("connection ok").wait_for(timeout=60_000)
    form.get_by_role("button", name="Create project").click()
    p.get_by_role("heading", name="API & keys").wait_for(timeout=120_000)
    ref = p.url.split("#/p/")[1].split("/")[0]
    listed = admin_api(dash_server, "GET", "/projects").json()["projects"]
    assert any(x["ref"] == ref and x["name"] == "Second project" for x in listed)
    # its anon key, copied from the page, works from supabase-js
    r = admin_api(dash_server, "POST", f"/projects/{ref}/database/query", json={"role": "postgres", "query": (
        "create table public.hello (id int); insert into public.hello values (7); "
        "grant select on public.hello to anon")})
    assert r.status_code == 200, r.text
    p.context.grant_permissions(["clipboard-read", "clipboard-write"])
    p.get_by_role("row").filter(has_text="anon").get_by_role("button", name="Copy").click()
    p.get_by_text("Copied").wait_for()
    anon = p.evaluate("navigator.clipboard.readText()")
    assert supabase_js_select(dash_server.url, anon, ref, "hello") == [{"id": 7}]
    assert signed_in.script_errors() == []
