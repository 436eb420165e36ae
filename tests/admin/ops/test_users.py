"""Auth users through /admin/v1 (auth/adminroutes.py, GoTrue's own admin handlers underneath): list and search
with a cursor, create, invite (the mail reaches the inbox), get, update, ban and unban, revoke sessions, list
and reset MFA factors, delete — one audit record per change, GoTrue's refusals in the `{"message"}` shape."""

from __future__ import annotations

import uuid

import httpx

from tests.admin.ops.conftest import Admin, audit_count
from tests.support.servers import MadbaseProcess

U = "/projects/{ref}/users"


def _email() -> str:
    return f"u-{uuid.uuid4().hex[:10]}@example.com"


def _sign_in(server: MadbaseProcess, email: str, password: str) -> httpx.Response:
    return httpx.post(server.url + "/auth/v1/token?grant_type=password", headers=server.headers(),
                      json={"email": email, "password": password}, timeout=30)


def test_user_lifecycle(platform: Admin, ops_server: MadbaseProcess) -> None:
    email = _email()
    before = audit_count(ops_server)
    r = platform.post(U, json={"email": email, "password": "a-long-password-1", "email_confirm": True,
                               "user_metadata": {"name": "Ada"}})
    assert r.status_code == 201, r.text
    user = r.json()
    uid = user["id"]
    assert user["email"] == email and user["user_metadata"] == {"name": "Ada"}
    assert audit_count(ops_server) == before + 1
    # GoTrue's own checks answer in the control plane's shape
    r = platform.post(U, json={"email": email, "password": "a-long-password-1"})
    assert r.status_code == 422 and set(r.json()) == {"message"} and "already" in r.json()["message"]
    assert platform.post(U, json={"email": "not-an-email"}).status_code == 400
    assert platform.get(U + "/" + uid).json()["email"] == email
    # search
    found = platform.get(U, params={"search": email.split("@")[0]}).json()
    assert [u["id"] for u in found["users"]] == [uid] and found["total"] == 1 and found["next_cursor"] is None
    # sign-in works, then sessions are revoked: the refresh token is dead
    session = _sign_in(ops_server, email, "a-long-password-1").json()
    before = audit_count(ops_server)
    assert platform.delete(U + f"/{uid}/sessions").status_code == 204
    refresh = httpx.post(ops_server.url + "/auth/v1/token?grant_type=refresh_token", headers=ops_server.headers(),
                         json={"refresh_token": session["refresh_token"]}, timeout=30)
    assert refresh.status_code == 400
    # update, ban, unban
    r = platform.patch(U + "/" + uid, json={"user_metadata": {"team": "x"}})
    assert r.status_code == 200 and r.json()["user_metadata"] == {"name": "Ada", "team": "x"}
    r = platform.post(U + f"/{uid}/ban", json={"duration": "24h"})
    assert r.status_code == 200 and r.json()["banned_until"], r.text
    assert _sign_in(ops_server, email, "a-long-password-1").status_code == 400
    assert platform.post(U + f"/{uid}/ban", json={"duration": "none"}).status_code == 200
    assert _sign_in(ops_server, email, "a-long-password-1").status_code == 200
    assert platform.post(U + f"/{uid}/ban", json={"duration": "soon"}).status_code == 400
    assert platform.post(U + f"/{uid}/ban", json={}).status_code == 400
    assert platform.post(U + f"/{uid}/ban", content=b"  ").status_code == 400
    # MFA: no factors; reset is still fine
    assert platform.get(U + f"/{uid}/factors").json() == {"factors": [], "next_cursor": None}
    assert platform.delete(U + f"/{uid}/factors").status_code == 204
    assert audit_count(ops_server) == before + 5  # sessions, update, ban, unban, mfa reset
    # delete
    assert platform.delete(U + "/" + uid).status_code == 204
    assert platform.get(U + "/" + uid).status_code == 404
    assert platform.delete(U + "/" + uid).status_code == 404
    assert audit_count(ops_server) == before + 6


def test_mfa_factors_are_listed_and_reset(platform: Admin, ops_server: MadbaseProcess) -> None:
    email = _email()
    uid = platform.post(U, json={"email": email, "password": "a-long-password-1", "email_confirm": True}).json()["id"]
    token = _sign_in(ops_server, email, "a-long-password-1").json()["access_token"]
    enrol = httpx.post(ops_server.url + "/auth/v1/factors", headers=ops_server.headers(token),
                       json={"factor_type": "totp", "friendly_name": "phone"}, timeout=30)
    assert enrol.status_code == 200, enrol.text
    factors = platform.get(U + f"/{uid}/factors").json()["factors"]
    assert [f["friendly_name"] for f in factors] == ["phone"]
    assert platform.delete(U + f"/{uid}/factors").status_code == 204
    assert platform.get(U + f"/{uid}/factors").json()["factors"] == []
    assert platform.delete(U + f"/{uid}/factors/{uuid.uuid4()}").status_code == 404


def test_invite_sends_the_mail(platform: Admin) -> None:
    email = _email()
    r = platform.post(U + "/invite", json={"email": email})
    assert r.status_code == 201, r.text
    assert r.json()["email"] == email and r.json()["invited_at"]
    inbox = platform.get("/projects/{ref}/inbox", params={"email": email}).json()
    assert inbox["messages"], inbox


def test_pages_with_a_cursor(platform: Admin) -> None:
    tag = uuid.uuid4().hex[:8]
    for i in range(3):
        assert platform.post(U, json={"email": f"page-{tag}-{i}@example.com", "password": "a-long-password-1"}
                             ).status_code == 201
    first = platform.get(U, params={"search": f"page-{tag}", "per_page": "2"}).json()
    assert len(first["users"]) == 2 and first["total"] == 3 and first["next_cursor"] == "2"
    second = platform.get(U, params={"search": f"page-{tag}", "per_page": "2", "cursor": first["next_cursor"]}
                          ).json()
    assert len(second["users"]) == 1 and second["next_cursor"] is None
    assert {u["id"] for u in first["users"]}.isdisjoint(u["id"] for u in second["users"])
    assert platform.get(U, params={"per_page": "x"}).status_code == 400


def test_hostile_user_requests(platform: Admin) -> None:
    for bad in ("not-a-uuid", "'%20or%201=1", "0" * 500, "%00"):
        assert platform.get(U + "/" + bad).status_code == 404, bad
        assert platform.delete(U + "/" + bad).status_code == 404, bad
    big = {"email": _email(), "password": "a-long-password-1", "user_metadata": {"x": "y" * (2 * 1024 * 1024)}}
    r = platform.post(U, json=big)
    assert r.status_code == 413 and set(r.json()) == {"message"}
    assert platform.post(U, content=b"[1, 2]").status_code == 400
    assert platform.post(U, content=b"{oops").status_code == 400
