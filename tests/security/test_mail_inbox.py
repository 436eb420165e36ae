"""The mail catcher's inbox (`/admin/v1/projects/{ref}/inbox`) and sealed config secrets, probed across the
security server's two projects: one project's keys never read the other's mail, hostile ids and limits get
clear 4xx answers, and a secret written in clear is sealed and never echoed."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from madbase.core.jwt import sign_hs256
from tests.security.conftest import Project, no_500, run_sql


def _inbox(project: Project, ref: str | None = None) -> str:
    return f"{project.url}/admin/v1/projects/{ref or project.ref}/inbox"


def _mail_to(client: httpx.Client, project: Project) -> tuple[str, dict[str, object]]:
    email = f"inbox-{uuid.uuid4().hex[:10]}@example.com"
    r = no_500(client.post(project.url + "/auth/v1/otp", json={"email": email}, headers=project.headers()))
    assert r.status_code == 200, r.text
    deadline = time.time() + 15
    while time.time() < deadline:
        r = no_500(client.get(_inbox(project), params={"email": email}, headers=project.headers("service_role")))
        assert r.status_code == 200, r.text
        if r.json()["messages"]:
            return email, r.json()["messages"][0]
        time.sleep(0.1)
    raise AssertionError("the mail never reached the inbox")


def test_inbox_is_per_project_and_needs_service_role(client: httpx.Client, project_a: Project,
                                                     project_b: Project) -> None:
    email, message = _mail_to(client, project_a)
    own = _inbox(project_a)
    # anon key, user token, other project's key, a service_role JWT signed with the other project's secret
    assert no_500(client.get(own, headers=project_a.headers())).status_code == 401
    user = project_a.user_token(str(uuid.uuid4()))
    assert no_500(client.get(own, headers=project_a.headers(token=user))).status_code == 401
    r = no_500(client.get(own, headers={**project_b.headers("service_role"), "x-project-ref": project_a.ref}))
    assert r.status_code == 401
    forged = sign_hs256({"role": "service_role", "exp": int(time.time()) + 60}, project_b.jwt_secret)
    r = no_500(client.get(own, headers=project_a.headers(token=forged)))
    assert r.status_code == 401
    # B's own service key, asking for A's inbox by path: not found, nothing leaks
    r = no_500(client.get(own, headers=project_b.headers("service_role")))
    assert r.status_code == 404 and email not in r.text
    r = no_500(client.get(f"{own}/{message['id']}", headers=project_b.headers("service_role")))
    assert r.status_code == 404 and email not in r.text
    r = no_500(client.get(_inbox(project_b), params={"email": email}, headers=project_b.headers("service_role")))
    assert r.status_code == 200 and r.json()["messages"] == []


def test_hostile_inbox_requests_get_clear_answers(client: httpx.Client, project_a: Project) -> None:
    own = _inbox(project_a)
    key = project_a.headers("service_role")
    for path, status in ((own + "/abc", 404), (own + "/99999999999999999999999999", 404), (own + "/-1", 404),
                         (own + "/1/2", 404), (own + "/../../x", 404),
                         (f"{project_a.url}/admin/v1/projects", 404), (f"{project_a.url}/admin/v1/", 404)):
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
