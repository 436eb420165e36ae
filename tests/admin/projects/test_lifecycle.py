"""Projects through /admin/v1: create on the default cluster or on a database URL tested first, list, get,
rename, pause (refused at once on every process), soft delete and restore, hard delete after the grace period
(the database dropped only when asked); one audit record per mutation; rights per project."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.admin.projects.conftest import (
    GRACE,
    Admin,
    audit_count,
    project_env,
    project_headers,
    sql,
    wait_for,
)
from tests.support.admins import admin_token
from tests.support.servers import MadbaseProcess, create_database


def _create(admin: Admin, **body: object) -> dict[str, object]:
    r = admin("POST", "/projects", json={"name": "p-" + uuid.uuid4().hex[:6], **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_create_on_the_default_cluster_bootstraps_and_serves(pm_server: MadbaseProcess, admin: Admin) -> None:
    before = audit_count(pm_server)
    project = _create(admin, name="Shop")
    assert audit_count(pm_server) == before + 1
    ref = str(project["ref"])
    assert project["name"] == "Shop" and project["status"] == "active"
    assert project["database"]["kind"] == "cluster"  # type: ignore[index]
    assert project["database"]["name"] == f"mb_{ref}"  # type: ignore[index]
    keys = project["api_keys"]
    assert isinstance(keys, dict) and keys["anon"] and keys["service_role"]
    # the new database got Supabase's schemas (bootstrap + migrations), and the project serves requests
    db = pm_server.db_url.rsplit("/", 1)[0] + f"/mb_{ref}"
    schemas = {r["nspname"] for r in sql(db, "select nspname from pg_namespace", fetch=True)}
    assert {"auth", "storage", "realtime", "extensions"} <= schemas
    r = httpx.post(pm_server.url + "/auth/v1/signup", json={"email": "a@example.com", "password": "secret-pw-1"},
                   headers=project_headers(ref, keys["anon"]))
    assert r.status_code == 200, r.text
    r = httpx.get(pm_server.url + "/rest/v1/", headers=project_headers(ref, keys["anon"]))
    assert r.status_code == 200, r.text
    # get, list, rename
    assert admin("GET", f"/projects/{ref}").json()["name"] == "Shop"
    listed = admin("GET", "/projects").json()
    assert ref in [p["ref"] for p in listed["projects"]] and "next_cursor" in listed
    r = admin("PATCH", f"/projects/{ref}", json={"name": "Shop 2"})
    assert r.status_code == 200 and r.json()["name"] == "Shop 2"
    assert admin("PATCH", f"/projects/{ref}", json={"status": "x"}).status_code == 400
    assert audit_count(pm_server) == before + 2
    records = admin("GET", f"/projects/{ref}/audit").json()["records"]
    assert [r["action"] for r in records] == ["project.update", "project.create"]


def test_create_with_a_database_url_and_ref(pm_server: MadbaseProcess, pg_cluster: PgCluster, admin: Admin) -> None:
    url = asyncio.run(create_database(pg_cluster, "byo"))
    ref = "byo-" + uuid.uuid4().hex[:8]
    project = _create(admin, ref=ref, database_url=url)
    assert project["ref"] == ref and project["database"]["kind"] == "byo"  # type: ignore[index]
    assert all(c["ok"] for c in project["checks"] if c["required"])  # type: ignore[union-attr]
    assert "password" not in str(project["database"]) and "postgres:postgres" not in str(project)
    r = admin("POST", "/projects", json={"name": "again", "ref": ref})
    assert r.status_code == 409 and ref in r.json()["message"]
    for bad in ({"name": ""}, {"name": "x", "ref": "A!"}, {"name": "x", "database_url": "mysql://x/y"},
                {"name": "x", "extra": 1}, {"name": "x", "database_url": 5}):
        r = admin("POST", "/projects", json=bad)
        assert r.status_code == 400 and r.json()["message"], bad


def test_test_connection_reports_what_is_missing(pm_server: MadbaseProcess, pg_cluster: PgCluster,
                                                  admin: Admin) -> None:
    url = asyncio.run(create_database(pg_cluster, "weak"))
    role = "weak_" + uuid.uuid4().hex[:8]
    sql(url, f"create role {role} login password 'pw-weak'")
    weak = url.replace("postgres:postgres@", f"{role}:pw-weak@", 1)
    assert weak != url
    r = admin("POST", "/projects/test-connection", json={"database_url": weak})
    assert r.status_code == 200, r.text
    out = r.json()
    checks = {c["name"]: c for c in out["checks"]}
    assert out["ok"] is False
    assert checks["connection"]["ok"] and checks["version"]["ok"] and checks["wal_level"]["ok"]
    assert not checks["create_roles"]["ok"] and "createrole" in checks["create_roles"]["detail"]
    assert not checks["replication"]["ok"] and "replication" in checks["replication"]["detail"]
    assert not checks["create_schemas"]["ok"]
    # creating a project on it is refused with the same report, and nothing is created
    before = admin("GET", "/projects").json()["projects"]
    r = admin("POST", "/projects", json={"name": "weak", "database_url": weak})
    assert r.status_code == 400 and "create_roles" in r.json()["message"] and r.json()["checks"]
    assert admin("GET", "/projects").json()["projects"] == before
    # a wrong password and an unreachable server: one clear line each
    r = admin("POST", "/projects/test-connection", json={"database_url": weak.replace("pw-weak", "nope")})
    assert r.json()["checks"] == [{"name": "connection", "ok": False, "required": True,
                                   "detail": "cannot connect: the server refused the user name or password"}]
    r = admin("POST", "/projects/test-connection", json={"database_url": "postgresql://u:p@127.0.0.1:1/db"})
    assert r.json()["ok"] is False and r.json()["checks"][0]["detail"].startswith("cannot connect")
    # hostile or odd URLs are reports too, never a 500
    for odd in ("postgresql://u:p@127.0.0.1:1/db?sslmode=bogus", "postgresql://u:p@[::1/db",
                "postgresql://u:p@127.0.0.1:1/db?options=-c%20x"):
        r = admin("POST", "/projects/test-connection", json={"database_url": odd})
        assert r.status_code in (200, 400), (odd, r.text)
        assert r.json()["message"] if r.status_code == 400 else r.json()["ok"] is False, odd
    # the superuser URL passes
    r = admin("POST", "/projects/test-connection", json={"database_url": url})
    assert r.json()["ok"] is True, r.json()


def test_pause_is_refused_on_every_process_within_a_second(pm_server: MadbaseProcess, admin: Admin,
                                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    project = _create(admin)
    ref, anon = str(project["ref"]), project["api_keys"]["anon"]  # type: ignore[index]
    other = MadbaseProcess(tmp_path_factory.mktemp("pm-second"), project_env(pm_server.db_url)).start()
    try:
        servers = (pm_server, other)
        for s in servers:  # warm-up (the first request builds the project's pool and schema cache): not timed
            assert httpx.get(s.url + "/rest/v1/", headers=project_headers(ref, anon), timeout=60).status_code == 200

        clients = {s.url: httpx.Client(base_url=s.url, headers=project_headers(ref, anon)) for s in servers}

        def refused(s: MadbaseProcess) -> bool:
            r = clients[s.url].get("/rest/v1/")
            return r.status_code == 403 and r.json()["message"] == "Project is disabled"

        sent = time.monotonic()
        r = admin("POST", f"/projects/{ref}/pause")
        assert r.status_code == 200 and r.json()["status"] == "paused"
        # The change is committed (and notified to every process) before the answer; from the answer on, each
        # process must refuse within a second. (The answer itself waited for this process's own refresh.)
        answered = time.monotonic()
        for s in servers:
            wait_for(lambda s=s: refused(s), timeout=5, interval=0.01)  # type: ignore[misc]
        took = time.monotonic() - answered
        print(f"pause answered after {answered - sent:.3f} s, refused by both processes {took:.3f} s later")
        assert took < 1.0
        # paused projects can still be managed
        assert admin("GET", f"/projects/{ref}").json()["status"] == "paused"
        r = admin("POST", f"/projects/{ref}/restore")
        assert r.status_code == 200 and r.json()["status"] == "active"
        for s in servers:
            wait_for(lambda s=s: clients[s.url].get("/rest/v1/").status_code == 200, timeout=5)  # type: ignore[misc]
        for c in clients.values():
            c.close()
    finally:
        other.stop()


def test_soft_delete_restore_and_hard_delete_after_the_grace_period(pm_server: MadbaseProcess,
                                                                    pg_cluster: PgCluster, admin: Admin) -> None:
    kept_url = asyncio.run(create_database(pg_cluster, "kept"))
    kept = _create(admin, database_url=kept_url)
    dropped = _create(admin)
    for p in (kept, dropped):
        ref = p["ref"]
        before = audit_count(pm_server)
        r = admin("DELETE", f"/projects/{ref}")
        assert r.status_code == 200 and r.json()["status"] == "deleted", r.text
        assert audit_count(pm_server) == before + 1
        assert admin("GET", f"/projects/{ref}").status_code == 404
        r = httpx.get(pm_server.url + "/rest/v1/", headers=project_headers(str(ref), p["api_keys"]["anon"]))  # type: ignore[index]
        assert r.status_code == 404
        assert ref not in [x["ref"] for x in admin("GET", "/projects").json()["projects"]]
        listed = admin("GET", "/projects?include_deleted=true").json()["projects"]
        assert [x["status"] for x in listed if x["ref"] == ref] == ["deleted"]
        r = admin("DELETE", f"/projects/{ref}?hard=true")
        assert r.status_code == 409 and "grace period" in r.json()["message"]
    # restore brings one back, with its data
    r = admin("POST", f"/projects/{kept['ref']}/restore")
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert admin("DELETE", f"/projects/{kept['ref']}?hard=true").status_code == 409  # not deleted
    assert admin("DELETE", f"/projects/{kept['ref']}").status_code == 200
    time.sleep(GRACE + 0.5)
    assert admin("DELETE", f"/projects/{kept['ref']}?drop_database=true").status_code == 400
    r = admin("DELETE", f"/projects/{kept['ref']}?hard=true")
    assert r.status_code == 200 and r.json() == {"ref": kept["ref"], "status": "removed", "database_dropped": False}
    assert sql(kept_url, "select 1") == "SELECT 1"  # the database stays
    r = admin("DELETE", f"/projects/{dropped['ref']}?hard=true&drop_database=true")
    assert r.status_code == 200 and r.json()["database_dropped"] is True, r.text
    names = {r["datname"] for r in sql(pm_server.db_url, "select datname from pg_database", fetch=True)}
    assert f"mb_{dropped['ref']}" not in names
    for p in (kept, dropped):
        assert admin("DELETE", f"/projects/{p['ref']}").status_code == 404
        assert admin("POST", f"/projects/{p['ref']}/restore").status_code == 404


def test_rights_per_project(pm_server: MadbaseProcess, admin: Admin) -> None:
    mine, theirs = _create(admin), _create(admin)
    reader = Admin(pm_server, admin_token(pm_server.db_url, "read_only", str(mine["ref"])))
    developer = Admin(pm_server, admin_token(pm_server.db_url, "developer", str(mine["ref"])))
    assert [p["ref"] for p in reader("GET", "/projects").json()["projects"]] == [mine["ref"]]
    assert reader("GET", f"/projects/{mine['ref']}").status_code == 200
    assert reader("GET", f"/projects/{theirs['ref']}").status_code == 403
    assert reader("POST", f"/projects/{mine['ref']}/pause").status_code == 403
    assert reader("POST", "/projects", json={"name": "x"}).status_code == 403
    assert developer("POST", "/projects", json={"name": "x"}).status_code == 403  # creation is platform-wide
    assert developer("POST", f"/projects/{mine['ref']}/pause").status_code == 200
    assert developer("POST", f"/projects/{mine['ref']}/restore").status_code == 200
    # developers may not delete; an unknown ref answers 403 before 404 (nothing learnt about which refs exist)
    r = developer("DELETE", f"/projects/{mine['ref']}")
    assert r.status_code == 403 and "projects.delete" in r.json()["message"]
    assert developer("DELETE", "/projects/nosuchproject").status_code == 403
    assert developer("POST", "/projects/nosuchproject/restore").status_code == 403
    assert admin("DELETE", "/projects/nosuchproject").status_code == 404
