"""The admin dispatcher with a real server: who may call (local token, personal access tokens, nobody else),
401/403/404 in `{"message"}` shape, the project of `{ref}` (disabled ones included, deleted ones not), one
audit record per successful mutation, the append-only audit table, and the local token's file."""

from __future__ import annotations

import stat
import time
import uuid

import asyncpg
import httpx
import pytest

from tests.admin.conftest import audit_count, control_sql
from tests.support.admins import admin_token
from tests.support.servers import MadbaseProcess


def _inbox(server: MadbaseProcess, ref: str | None = None) -> str:
    return f"{server.url}/admin/v1/projects/{ref or server.project_ref}/inbox"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_local_token_file_is_private_and_a_platform_admin(admin_server: MadbaseProcess,
                                                               client: httpx.Client) -> None:
    path = admin_server.data_dir / "admin.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = admin_server.admin_token
    assert token.startswith("mbp_") and len(token) > 40
    # only its digest is stored
    rows = control_sql(admin_server, "select token_digest, hint, kind from madbase_control.access_tokens "
                       "where kind = 'local' and revoked_at is null", fetch=True)
    assert len(rows) == 1 and token.encode() not in bytes(rows[0]["token_digest"])
    r = client.get(_inbox(admin_server), headers=admin_server.admin_headers())
    assert r.status_code == 200, r.text


def test_no_or_bad_credentials_are_401(admin_server: MadbaseProcess, client: httpx.Client) -> None:
    url = _inbox(admin_server)
    for headers in ({}, _bearer("mbp_" + "x" * 43), _bearer(admin_server.anon_key),
                    _bearer(admin_server.service_role_key), {"apikey": admin_server.service_role_key},
                    _bearer("mbp_" + "x" * 5000), {"Authorization": "Basic abc"},
                    {"Cookie": "mb_admin_session=nope"}, {"Cookie": "mb_admin_session=" + "x" * 9000}):
        r = client.get(url, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert set(r.json()) == {"message"} and r.json()["message"].startswith("Unauthorized")


def test_expired_and_revoked_tokens_are_401(admin_server: MadbaseProcess, client: httpx.Client) -> None:
    token = admin_token(admin_server.db_url, "owner", admin_server.project_ref)
    assert client.get(_inbox(admin_server), headers=_bearer(token)).status_code == 200
    control_sql(admin_server, "update madbase_control.access_tokens set expires_at = now() - interval '1 second' "
                "where hint = $1", token[:8])
    assert client.get(_inbox(admin_server), headers=_bearer(token)).status_code == 401
    control_sql(admin_server, "update madbase_control.access_tokens set expires_at = null, revoked_at = now() "
                "where hint = $1", token[:8])
    assert client.get(_inbox(admin_server), headers=_bearer(token)).status_code == 401


def test_rights_are_checked_before_the_project_is_looked_up(admin_server: MadbaseProcess,
                                                            client: httpx.Client) -> None:
    stranger = _bearer(admin_token(admin_server.db_url, "read_only", admin_server.project_ref))
    unknown = "abcdefghijklmnopqrst"
    r = client.get(_inbox(admin_server, unknown), headers=stranger)
    assert r.status_code == 403 and r.json() == {
        "message": f"Forbidden: this requires the right auth.read on project {unknown}"}
    r = client.delete(_inbox(admin_server), headers=stranger)
    assert r.status_code == 403 and "auth.write" in r.json()["message"]
    r = client.get(_inbox(admin_server, unknown), headers=admin_server.admin_headers())
    assert r.status_code == 404 and r.json() == {"message": "Project not found"}


def test_disabled_projects_are_managed_deleted_ones_are_not(admin_server: MadbaseProcess,
                                                            client: httpx.Client) -> None:
    ref = admin_server.project_ref
    try:
        for status, expected in (("disabled", 200), ("deleted", 404)):
            control_sql(admin_server, "update madbase_control.projects set status = $1 where ref = $2", status, ref)
            deadline = time.time() + 10
            while True:  # the server learns of it through NOTIFY
                rest = client.get(admin_server.url + "/rest/v1/", headers=admin_server.headers())
                if rest.status_code in (403, 404) or time.time() > deadline:
                    break
                time.sleep(0.05)
            r = client.get(_inbox(admin_server), headers=admin_server.admin_headers())
            assert r.status_code == expected, (status, r.text)
    finally:
        control_sql(admin_server, "update madbase_control.projects set status = 'active' where ref = $1", ref)
        deadline = time.time() + 10
        while client.get(admin_server.url + "/rest/v1/", headers=admin_server.headers()).status_code != 200:
            assert time.time() < deadline
            time.sleep(0.05)


def test_a_mutation_writes_exactly_one_audit_record(admin_server: MadbaseProcess, client: httpx.Client) -> None:
    before = audit_count(admin_server)
    request_id = str(uuid.uuid4())
    r = client.delete(_inbox(admin_server), headers=admin_server.admin_headers(**{"x-request-id": request_id}))
    assert r.status_code == 204, r.text
    assert audit_count(admin_server) == before + 1
    [row] = control_sql(admin_server, "select * from madbase_control.audit_log where request_id = $1", request_id,
                        fetch=True)
    assert row["action"] == "inbox.clear" and row["project_ref"] == admin_server.project_ref
    assert row["actor_method"] == "local" and row["actor_email"] == "local-admin@madbase.invalid"
    assert row["source_ip"] == "127.0.0.1" and row["target"] == f"projects/{admin_server.project_ref}/inbox"
    # reads and refusals write nothing
    client.get(_inbox(admin_server), headers=admin_server.admin_headers())
    client.delete(_inbox(admin_server))
    client.delete(_inbox(admin_server, "abcdefghijklmnopqrst"), headers=admin_server.admin_headers())
    assert audit_count(admin_server) == before + 1


@pytest.mark.parametrize("statement", [
    "update madbase_control.audit_log set action = 'x'",
    "delete from madbase_control.audit_log",
    "truncate madbase_control.audit_log",
])
def test_the_audit_log_is_append_only(admin_server: MadbaseProcess, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        control_sql(admin_server, statement)


def test_a_new_start_makes_a_new_local_token(admin_server: MadbaseProcess, client: httpx.Client) -> None:
    old = admin_server.admin_token
    admin_server.stop()
    admin_server.start()
    new = admin_server.admin_token
    assert new != old
    assert client.get(_inbox(admin_server), headers=_bearer(old)).status_code == 401
    assert client.get(_inbox(admin_server), headers=_bearer(new)).status_code == 200
