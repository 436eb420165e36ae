"""Per-project settings through /admin/v1/projects/{ref}/config/{section}: validated, secrets sealed at rest and
answered masked, applied live on every process; the SMTP test mail with the server's real answer; the storage
backend tested on save (moto's S3 server)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from madbase.core.pgcluster import PgCluster
from tests.admin.projects.conftest import Admin, audit_count, project_env, project_headers, sql, wait_for
from tests.storage.conftest import make_s3_bucket, moto_endpoint  # noqa: F401 - the S3 server fixture
from tests.support.servers import MadbaseProcess, create_database, free_port

SMTP_USER, SMTP_PASS = "mailer", "smtp-pass-" + uuid.uuid4().hex[:8]


class Box:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued as MB42"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        # handled=False: aiosmtpd then answers a refusal itself (535), as a real server does
        return AuthResult(success=isinstance(data, LoginPassword) and data.login == SMTP_USER.encode()
                          and data.password == SMTP_PASS.encode(), handled=False)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Box, int]]:
    box, port = Box(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def project(pm_server: MadbaseProcess) -> dict[str, Any]:
    r = Admin(pm_server)("POST", "/projects", json={"name": "settings"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _stored_config(server: MadbaseProcess, ref: str) -> str:
    rows = sql(server.db_url, "select config::text as c from madbase_control.projects where ref = $1", ref,
               fetch=True)
    return str(rows[0]["c"])


def test_auth_settings_are_validated_sealed_and_masked(pm_server: MadbaseProcess, admin: Admin,
                                                       project: dict[str, Any], smtp: tuple[Box, int]) -> None:
    box, port = smtp
    ref = project["ref"]
    before = audit_count(pm_server)
    r = admin("PATCH", f"/projects/{ref}/config/auth", json={
        "site_url": "https://app.example.com", "uri_allow_list": ["https://app.example.com/**"],
        "smtp": {"host": "127.0.0.1", "port": port, "user": SMTP_USER, "password": SMTP_PASS,
                 "sender": "noreply@example.com"},
        "external": {"github": {"client_id": "gh-id", "secret": "gh-secret-value"}}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["site_url"] == "https://app.example.com"
    assert out["smtp"]["password"] == "********" and out["external"]["github"]["secret"] == "********"
    assert audit_count(pm_server) == before + 1
    stored = _stored_config(pm_server, ref)
    assert SMTP_PASS not in stored and "gh-secret-value" not in stored and "$sealed" in stored
    records = admin("GET", f"/projects/{ref}/audit").json()["records"]
    assert records[0]["action"] == "config.update" and SMTP_PASS not in json.dumps(records)
    got = admin("GET", f"/projects/{ref}/config/auth").json()
    assert got["smtp"]["password"] == "********" and got["smtp"]["user"] == SMTP_USER
    # a form saving what it read keeps the stored secret (the test mail still logs in)
    r = admin("PATCH", f"/projects/{ref}/config/auth", json={"smtp": got["smtp"]})
    assert r.status_code == 200
    r = admin("POST", f"/projects/{ref}/config/auth/smtp/test", json={"to": "ada@example.com"})
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "step": "data", "reply": "250 2.0.0 Ok: queued as MB42"}
    assert box.messages[-1][1] == ["ada@example.com"] and b"test mail" in box.messages[-1][2]
    # a refused login: the server's own answer
    assert admin("PATCH", f"/projects/{ref}/config/auth", json={"smtp": {"password": "wrong"}}).status_code == 200
    r = admin("POST", f"/projects/{ref}/config/auth/smtp/test", json={"to": "ada@example.com"})
    assert r.json()["ok"] is False and r.json()["step"] == "login"
    assert r.json()["reply"].startswith("535 "), r.json()
    # an unreachable server
    admin("PATCH", f"/projects/{ref}/config/auth", json={"smtp": {"port": free_port()}})
    r = admin("POST", f"/projects/{ref}/config/auth/smtp/test", json={"to": "ada@example.com"})
    assert r.json()["ok"] is False and r.json()["step"] == "connect"
    assert admin("POST", f"/projects/{ref}/config/auth/smtp/test", json={"to": "nope"}).status_code == 400
    # refusals name the setting, store nothing and write no audit record
    count = audit_count(pm_server)
    for bad, words in (({"jwt_exp": "soon"}, "jwt_exp"), ({"nope": 1}, "unknown setting nope"),
                       ({"smtp": {"port": 70000}}, "smtp.port"), ({"mailer_autoconfirm": "yes"}, "true or false"),
                       ({"external": {"x": {"secret": 5}}}, "external.x.secret"), ([1], "JSON object")):
        r = admin("PATCH", f"/projects/{ref}/config/auth", json=bad)
        assert r.status_code == 400 and words in r.json()["message"], (bad, r.text)
    assert admin("GET", f"/projects/{ref}/config/bogus").status_code == 404
    assert audit_count(pm_server) == count + 0
    # null removes a key
    r = admin("PATCH", f"/projects/{ref}/config/auth", json={"external": None, "smtp": {"port": port}})
    assert "external" not in r.json() and r.json()["smtp"]["port"] == port


def test_settings_apply_live_on_every_process(pm_server: MadbaseProcess, admin: Admin, project: dict[str, Any],
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    ref, keys = project["ref"], project["api_keys"]
    db = pm_server.db_url.rsplit("/", 1)[0] + f"/mb_{ref}"
    sql(db, "create table items (id int primary key); insert into items values (1), (2), (3); "
            "grant select on items to anon; notify pgrst, 'reload schema'")
    other = MadbaseProcess(tmp_path_factory.mktemp("pm-settings"), project_env(pm_server.db_url)).start()
    try:
        def rows(s: MadbaseProcess) -> int:
            r = httpx.get(s.url + "/rest/v1/items?select=id", headers=project_headers(ref, keys["anon"]))
            return len(r.json()) if r.status_code == 200 else -1

        wait_for(lambda: rows(other) == 3, timeout=10)
        r = admin("PATCH", f"/projects/{ref}/config/api", json={"max_rows": 1})
        assert r.status_code == 200 and r.json()["max_rows"] == 1, r.text
        assert wait_for(lambda: rows(other) == 1, timeout=2) < 1.0
        r = admin("PATCH", f"/projects/{ref}/config/jwt", json={"expiry": "2m", "audience": "authenticated"})
        assert r.status_code == 200 and r.json()["expiry"] == 120, r.text

        def expires_in() -> int:
            r = httpx.post(other.url + "/auth/v1/signup", headers=project_headers(ref, keys["anon"]),
                           json={"email": f"u{uuid.uuid4().hex[:8]}@example.com", "password": "secret-pw-1"})
            assert r.status_code == 200, r.text
            return int(r.json().get("expires_in") or 0)

        admin("PATCH", f"/projects/{ref}/config/auth", json={"mailer_autoconfirm": True})
        wait_for(lambda: expires_in() == 120, timeout=3)
        assert admin("GET", f"/projects/{ref}/config/api").json()["db_schema"] == "public,graphql_public"
        assert admin("PATCH", f"/projects/{ref}/config/api", json={"db_schema": []}).status_code == 400
        r = admin("PATCH", f"/projects/{ref}/config/realtime", json={"max_events_per_second": 5})
        assert r.status_code == 200 and r.json() == {"max_events_per_second": 5}
        r = admin("PATCH", f"/projects/{ref}/config/functions", json={"cpu_time_ms": 500, "memory_mb": 64})
        assert r.status_code == 200 and r.json() == {"cpu_time_ms": 500, "memory_mb": 64}
        assert admin("PATCH", f"/projects/{ref}/config/functions", json={"cpu_time_ms": -1}).status_code == 400
    finally:
        other.stop()


def test_storage_backend_is_tested_on_save(pm_server: MadbaseProcess, admin: Admin, project: dict[str, Any],
                                          moto_endpoint: str) -> None:  # noqa: F811
    ref, keys = project["ref"], project["api_keys"]
    bucket = make_s3_bucket(moto_endpoint)
    s3 = {"bucket": bucket, "endpoint": moto_endpoint, "region": "us-east-1", "access_key_id": "test",
          "secret_access_key": "s3-secret-" + uuid.uuid4().hex[:6]}
    r = admin("PATCH", f"/projects/{ref}/config/storage", json={"backend": "s3", "s3": s3})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["check"]["ok"] is True and out["s3"]["secret_access_key"] == "********"
    assert s3["secret_access_key"] not in _stored_config(pm_server, ref)
    # the storage service now writes to that bucket
    h = project_headers(ref, keys["service_role"])
    assert httpx.post(pm_server.url + "/storage/v1/bucket", json={"id": "docs", "name": "docs"},
                      headers=h).status_code == 200
    r = httpx.post(pm_server.url + "/storage/v1/object/docs/a.txt", content=b"hello", headers=h)
    assert r.status_code == 200, r.text
    listing = httpx.get(f"{moto_endpoint}/{bucket}?list-type=2").text
    assert ref in listing
    # a bucket that does not exist: refused with the store's error, the stored settings unchanged
    r = admin("PATCH", f"/projects/{ref}/config/storage", json={"s3": {"bucket": "no-such-bucket-" + ref}})
    assert r.status_code == 400 and "failed its test" in r.json()["message"], r.text
    assert r.json()["check"]["ok"] is False
    assert admin("GET", f"/projects/{ref}/config/storage").json()["s3"]["bucket"] == bucket
    # back to the filesystem
    r = admin("PATCH", f"/projects/{ref}/config/storage", json={"backend": "fs", "s3": None})
    assert r.status_code == 200 and r.json()["check"]["ok"] is True and r.json()["backend"] == "fs"
    assert admin("PATCH", f"/projects/{ref}/config/storage", json={"backend": "ftp"}).status_code == 400


def test_database_section(pm_server: MadbaseProcess, pg_cluster: PgCluster, admin: Admin) -> None:
    url = asyncio.run(create_database(pg_cluster, "dbsec"))
    r = admin("POST", "/projects", json={"name": "dbsec", "database_url": url})
    ref, keys = r.json()["ref"], r.json()["api_keys"]
    got = admin("GET", f"/projects/{ref}/config/database").json()
    assert got["kind"] == "byo" and "********" in got["url"] and "postgres:postgres@" not in got["url"]
    assert admin("PATCH", f"/projects/{ref}/config/database", json={"url": "nope"}).status_code == 400
    # move the project to another database: tested, bootstrapped, then served from there
    moved = asyncio.run(create_database(pg_cluster, "dbmoved"))
    sql(moved, "create table here (x int); grant select on here to anon")
    r = admin("PATCH", f"/projects/{ref}/config/database", json={"url": moved})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == moved.rsplit("/", 1)[1]
    sql(moved, "notify pgrst, 'reload schema'")
    wait_for(lambda: httpx.get(pm_server.url + "/rest/v1/here",
                               headers=project_headers(ref, keys["anon"])).status_code == 200, timeout=10)
