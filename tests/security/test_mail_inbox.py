"""The mail catcher's inbox (`/admin/v1/projects/{ref}/inbox`) and sealed config secrets, probed across the
security server's two projects: only an admin with the right on that project reads its mail (no project key
does), hostile ids and limits get clear 4xx answers, and a secret written in clear is sealed and never echoed."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from madbase.core.jwt import sign_hs256
from tests.security.conftest import Project, no_500, run_sql
from tests.support.admins import admin_token


def _inbox(project: Project, ref: str | None = None) -> str:
    return f"{project.url}/admin/v1/projects/{ref or project.ref}/inbox"


def _mail_to(client: httpx.Client, project: Project) -> tuple[str, dict[str, object]]:
    email = f"inbox-{uuid.uuid4().hex[:10]}@example.com"
    r = no_500(client.post(project.url + "/auth/v1/otp", json={"email": email}, headers=project.headers()))
    assert r.status_code == 200, r.text
    deadline = time.time() + 15
    while time.time() < deadline:
        r = no_500(client.get(_inbox(project), params={"email": email}, headers=project.server.admin_headers()))
        assert r.status_code == 200, r.text
        if r.json()["messages"]:
            return email, r.json()["messages"][0]
        time.sleep(0.1)
    raise AssertionError("the mail never reached the inbox")


def test_inbox_needs_an_admin_with_the_right_on_that_project(client: httpx.Client, project_a: Project,
                                                             project_b: Project) -> None:
    email, message = _mail_to(client, project_a)
    own = _inbox(project_a)
    # project credentials are no admin credentials: anon key, user token, service_role key, forged JWT
    assert no_500(client.get(own, headers=project_a.headers())).status_code == 401
    user = project_a.user_token(str(uuid.uuid4()))
    assert no_500(client.get(own, headers=project_a.headers(token=user))).status_code == 401
    assert no_500(client.get(own, headers=project_a.headers("service_role"))).status_code == 401
    forged = sign_hs256({"role": "service_role", "exp": int(time.time()) + 60}, project_b.jwt_secret)
    assert no_500(client.get(own, headers=project_a.headers(token=forged))).status_code == 401
    # an owner of B asking for A's inbox by path: forbidden, nothing leaks (A's mail, or whether A exists)
    control = project_a.server.db_url
    owner_b = {"Authorization": "Bearer " + admin_token(control, "owner", project_b.ref)}
    for path in (own, f"{own}/{message['id']}", _inbox(project_a, "abcdefghijklmnopqrst")):
        r = no_500(client.get(path, headers=owner_b))
        assert r.status_code == 403 and email not in r.text, r.text
    r = no_500(client.get(_inbox(project_b), params={"email": email}, headers=owner_b))
    assert r.status_code == 200 and r.json()["messages"] == []
    # read_only on A reads, cannot clear; a token of a platform admin narrowed to B cannot read A
    reader = {"Authorization": "Bearer " + admin_token(control, "read_only", project_a.ref)}
    assert no_500(client.get(f"{own}/{message['id']}", headers=reader)).status_code == 200
    assert no_500(client.delete(own, headers=reader)).status_code == 403
    narrowed = {"Authorization": "Bearer " + admin_token(control, "platform_admin", projects=[project_b.ref])}
    assert no_500(client.get(own, headers=narrowed)).status_code == 403
    assert no_500(client.get(_inbox(project_b), headers=narrowed)).status_code == 200


def test_hostile_inbox_requests_get_clear_answers(client: httpx.Client, project_a: Project) -> None:
    own = _inbox(project_a)
    key = project_a.server.admin_headers()
    for path, status in ((own + "/abc", 404), (own + "/99999999999999999999999999", 404), (own + "/-1", 404),
                         (own + "/1/2", 404), (own + "/../../x", 404),
                         (f"{project_a.url}/admin/v1/nothing", 404), (f"{project_a.url}/admin/v1/", 404)):
        assert no_500(client.get(path, headers=key)).status_code == status, path
    for limit in ("-1", "abc", "1e9", "'; drop table x"):
        assert no_500(client.get(own, params={"limit": limit}, headers=key)).status_code == 400
    r = no_500(client.get(own, params={"limit": "999999999", "email": "' or 1=1 --"}, headers=key))
    assert r.status_code == 200 and r.json()["messages"] == []
    assert no_500(client.post(own, headers=key, json={})).status_code == 405


def test_secret_written_in_clear_is_sealed_and_never_echoed(client: httpx.Client, project_b: Project) -> None:
    secret = f"clear-{uuid.uuid4().hex}"
    project_b.set_config({"auth": {"smtp": {"host": "127.0.0.1", "port": 9, "password": secret},
                                   "external": {"github": {"client_id": "x", "secret": secret + "-gh"}}}})
    deadline = time.time() + 15
    while True:
        [row] = run_sql(project_b.server.db_url, "select config::text as c from madbase_control.projects "
                        "where ref = $1", project_b.ref, fetch=True)
        if secret not in row["c"] or time.time() > deadline:
            break
        time.sleep(0.2)
    assert secret not in row["c"], "the server did not seal a secret written in clear"
    stored = json.loads(row["c"])["auth"]
    assert set(stored["smtp"]["password"]) == {"$sealed"} and set(stored["external"]["github"]["secret"]) == {"$sealed"}
    # the settings endpoint shows providers, never their secrets; the server's log has none either
    r = no_500(client.get(project_b.url + "/auth/v1/settings", headers=project_b.headers()))
    assert secret not in r.text
    assert secret not in project_b.server.output()
    project_b.set_config({"auth": {}})
