"""Two projects created through /admin/v1 on two separate PostgreSQL clusters (one the server's default
cluster, one started here and given as a database URL), each driven with supabase-js at its own URL: a key,
user, table row, bucket object and realtime event of one are never visible from the other, and a user JWT of
one is refused by the other."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from madbase.core.pgcluster import PgCluster
from tests.admin.projects.conftest import Admin, sql
from tests.support.servers import MadbaseProcess, create_database, free_port

JS = Path(__file__).resolve().parents[2] / "js"
TABLE = "notes"
SETUP = f"""
create table public.{TABLE} (id bigint generated always as identity primary key, body text not null,
                             owner uuid default auth.uid());
alter table public.{TABLE} enable row level security;
create policy own_rows on public.{TABLE} for all to authenticated using (owner = auth.uid())
  with check (owner = auth.uid());
grant select, insert on public.{TABLE} to anon, authenticated;
grant all on public.{TABLE} to service_role;
alter publication supabase_realtime add table public.{TABLE};
notify pgrst, 'reload schema';
"""


@pytest.fixture(scope="module")
def second_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="madbase-test-pg2-")), free_port(), "postgres", fsync=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def _project(admin: Admin, **body: Any) -> tuple[str, dict[str, str]]:
    r = admin("POST", "/projects", json=body)
    assert r.status_code == 201, r.text
    ref = r.json()["ref"]
    assert admin("PATCH", f"/projects/{ref}/config/auth", json={"mailer_autoconfirm": True}).status_code == 200
    return ref, r.json()["api_keys"]


def test_two_projects_on_two_clusters_are_isolated(pm_server: MadbaseProcess, admin: Admin,
                                                   second_cluster: PgCluster) -> None:
    ref_a, keys_a = _project(admin, name="iso-a")
    url_b = asyncio.run(create_database(second_cluster, "iso"))
    ref_b, keys_b = _project(admin, name="iso-b", database_url=url_b)
    projects = {p["ref"]: p for p in admin("GET", "/projects").json()["projects"]}
    assert projects[ref_a]["database"]["port"] != projects[ref_b]["database"]["port"]  # two clusters
    sql(pm_server.db_url.rsplit("/", 1)[0] + f"/mb_{ref_a}", SETUP)
    sql(url_b, SETUP)
    port = pm_server.port
    env = {"URL_A": f"http://{ref_a}.madbase.localhost:{port}", "ANON_A": keys_a["anon"],
           "SERVICE_A": keys_a["service_role"], "URL_B": f"http://{ref_b}.madbase.localhost:{port}",
           "ANON_B": keys_b["anon"], "SERVICE_B": keys_b["service_role"], "TABLE": TABLE}
    proc = subprocess.run(["node", "--experimental-websocket", str(JS / "projects" / "isolation.mjs")],
                          env={**os.environ, **env}, cwd=JS, capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # keys
    assert out["ownKey"] is None
    assert out["anonKeyOfAOnB"]["message"] == "Invalid API key", out
    assert out["serviceKeyOfAOnB"] is not None
    # users and JWTs
    assert out["signUpA"] == {"error": None, "session": True}
    assert out["signInOnB"] is not None and out["getUserOnB"] is not None
    assert "JWT" in out["jwtOfAOnBRest"]["message"] and "JWT" in out["getUserOnB"]["message"], out
    assert out["jwtOfAOnBStorage"] is not None and out["jwtOfAOnA"] is None
    # rows
    assert out["insertA"] == {"error": None, "rows": 1}
    assert out["rowsOnB"] == [] and out["rowsOnA"] == ["secret-of-a"] and out["insertB"] is None
    # buckets and objects
    assert out["bucketA"] is None and out["uploadA"] is None
    assert "iso-bucket" not in out["bucketsOnB"] and out["downloadOnB"] is not None
    assert out["sameNameBucketOnB"] is None and out["listOnB"] == []
    assert out["downloadOnA"] == "hello from A"
    # realtime: each project's subscribers saw their own change and broadcast only
    seen_a, seen_b = ([tuple(x) for x in out["realtime"][k]] for k in ("A", "B"))
    assert ("change", "secret-of-a") in seen_a and ("broadcast", "A") in seen_a, out["realtime"]
    assert ("change", "row-of-b") in seen_b, out["realtime"]
    assert ("change", "row-of-b") not in seen_a
    assert ("change", "secret-of-a") not in seen_b and ("broadcast", "A") not in seen_b
