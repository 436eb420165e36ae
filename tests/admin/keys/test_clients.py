"""The official clients with the new key style: supabase-js 2.119.0 (REST, auth, storage, realtime broadcast
and postgres_changes) and supabase-py (REST, auth, storage), each given an `sb_publishable_…` key for the
app and an `sb_secret_…` key for the backend, exactly as a Supabase project hands them out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from supabase import ClientOptions, create_client

from tests.admin.conftest import control_sql
from tests.admin.keys.conftest import Keys

JS = Path(__file__).resolve().parents[2] / "js"
TABLE = "keys_notes"

SETUP = f"""
create table public.{TABLE} (id bigint generated always as identity primary key,
                             owner uuid default auth.uid(), body text not null);
alter table public.{TABLE} enable row level security;
grant select, insert on public.{TABLE} to anon, authenticated, service_role;
create policy anon_public on public.{TABLE} for select to anon using (body like 'public%');
create policy own_select on public.{TABLE} for select to authenticated using (owner = auth.uid());
create policy own_insert on public.{TABLE} for insert to authenticated with check (owner = auth.uid());
insert into public.{TABLE} (body) values ('public one'), ('secret two');
alter publication supabase_realtime add table public.{TABLE};
notify pgrst, 'reload schema';
"""


@pytest.fixture(scope="module")
def new_keys(keys_env: Keys) -> Iterator[dict[str, str]]:
    env = keys_env
    control_sql(env.a, SETUP)
    time.sleep(1.0)
    made = {kind: env.admin("POST", "/api-keys", {"type": kind, "name": f"clients_{kind}"}).json()
            for kind in ("publishable", "secret")}
    yield {kind: k["api_key"] for kind, k in made.items()}
    for k in made.values():
        env.admin("DELETE", f"/api-keys/{k['id']}")


@pytest.mark.skipif(shutil.which("node") is None or not (JS / "node_modules").is_dir(),
                    reason="node or tests/js/node_modules missing")
def test_supabase_js_with_new_keys(keys_env: Keys, new_keys: dict[str, str]) -> None:
    env = keys_env
    args = {"table": TABLE, "email": f"js-{uuid.uuid4().hex[:8]}@example.com", "password": "correct-horse-9",
            "bucket": f"keys-{uuid.uuid4().hex[:6]}"}
    proc = subprocess.run(
        ["node", "--experimental-websocket", str(JS / "keys" / "newkeys.mjs"), json.dumps(args)],
        capture_output=True, text=True, timeout=120, check=False, cwd=str(JS),
        env={**os.environ, "SUPABASE_URL": env.a.url, "PUB_KEY": new_keys["publishable"],
             "SECRET_KEY": new_keys["secret"]})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["restAnon"] == {"error": None, "rows": ["public one"]}
    assert out["restService"]["error"] is None and {"public one", "secret two"} <= set(out["restService"]["rows"])
    assert out["broadcastJoin"] == "SUBSCRIBED" and out["changesJoin"] == "SUBSCRIBED"
    assert out["broadcast"] == {"status": "RECEIVED", "payload": {"n": 1}}
    assert out["signUp"] == {"error": None, "hasSession": True}
    assert out["signIn"]["error"] is None and out["getUser"]["id"] == out["signIn"]["userId"]
    assert out["restUserInsert"] == {"error": None, "row": {"body": "mine", "owner": out["signIn"]["userId"]}}
    assert out["restUser"] == {"error": None, "rows": ["mine"]}
    assert out["changes"]["status"] == "RECEIVED" and out["changes"]["bodies"][-1] == "for you"
    assert "not yours" not in out["changes"]["bodies"]
    assert out["storage"] == {"create": None, "upload": None, "text": "hello keys", "downloadError": None,
                              "userDenied": True}


def test_supabase_py_with_new_keys(keys_env: Keys, new_keys: dict[str, str]) -> None:
    env = keys_env
    with httpx.Client(timeout=30) as http:
        app = create_client(env.a.url, new_keys["publishable"], ClientOptions(httpx_client=http))
        backend = create_client(env.a.url, new_keys["secret"], ClientOptions(httpx_client=http))
        assert [r["body"] for r in app.table(TABLE).select("body").eq("body", "public one").execute().data] == \
            ["public one"]
        assert app.table(TABLE).select("body").eq("body", "secret two").execute().data == []
        assert [r["body"] for r in backend.table(TABLE).select("body").eq("body", "secret two").execute().data] == \
            ["secret two"]
        email = f"py-{uuid.uuid4().hex[:8]}@example.com"
        signed = app.auth.sign_up({"email": email, "password": "correct-horse-9"})
        assert signed.session is not None and signed.user is not None
        inserted = app.table(TABLE).insert({"body": "py mine"}).execute().data
        assert inserted[0]["owner"] == signed.user.id
        assert [r["body"] for r in app.table(TABLE).select("body").execute().data] == ["py mine"]
        bucket = f"py-{uuid.uuid4().hex[:6]}"
        backend.storage.create_bucket(bucket)
        backend.storage.from_(bucket).upload("a.txt", b"from python", {"content-type": "text/plain"})
        assert backend.storage.from_(bucket).download("a.txt") == b"from python"
        # a revoked key stops the client at once
        listed = {k["name"]: k["id"] for k in env.admin("GET", "/api-keys").json()}
        spare = env.admin("POST", "/api-keys", {"type": "secret", "name": "py_spare"}).json()
        other = create_client(env.a.url, spare["api_key"], ClientOptions(httpx_client=http))
        assert other.table(TABLE).select("body").eq("body", "secret two").execute().data
        env.admin("DELETE", f"/api-keys/{spare['id']}")
        with pytest.raises(Exception, match="Invalid API key"):
            other.table(TABLE).select("body").execute()
        assert "clients_secret" in listed
