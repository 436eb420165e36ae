"""The api-keys routes against a real server: list/reveal, new-style keys (created, used, revoked), their
use through the gateway exactly as Supabase's gateway treats them, RBAC and the audit trail."""

from __future__ import annotations

import time
import uuid

from madbase.core import apikeys
from tests.admin.conftest import control_sql
from tests.admin.keys.conftest import Keys
from tests.support.admins import admin_token


def audit_rows(env: Keys, since: int) -> list[dict[str, object]]:
    rows = control_sql(env.a, "select id, action, target, project_ref, details::text as details "
                              "from madbase_control.audit_log where id > $1 order by id", since, fetch=True)
    return [dict(r) for r in rows]


def last_audit_id(env: Keys) -> int:
    return int(control_sql(env.a, "select coalesce(max(id), 0) as n from madbase_control.audit_log",
                           fetch=True)[0]["n"])


def test_list_masks_unless_revealed(keys_env: Keys) -> None:
    env = keys_env
    r = env.admin("GET", "/api-keys")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    listed = {k["name"]: k for k in r.json() if k["type"] == "legacy"}
    assert set(listed) == {"anon", "service_role"}
    assert all(k["api_key"].endswith(apikeys.MASK) for k in listed.values())
    revealed = env.current_keys()
    assert revealed["anon"].startswith("eyJ") and revealed["service_role"].startswith("eyJ")
    assert env.role(revealed["anon"]) == "anon" and env.role(revealed["service_role"]) == "service_role"
    assert env.admin("GET", "/api-keys", params={"reveal": "maybe"}).status_code == 400


def test_new_keys_created_used_and_revoked(keys_env: Keys) -> None:
    env = keys_env
    before = last_audit_id(env)
    r = env.admin("POST", "/api-keys", {"type": "publishable", "name": "web"})
    assert r.status_code == 201, r.text
    pub = r.json()
    assert pub["type"] == "publishable" and pub["name"] == "web" and pub["role"] == "anon"
    assert pub["api_key"].startswith("sb_publishable_") and apikeys.well_formed(pub["api_key"])
    sec1 = env.admin("POST", "/api-keys", {"type": "secret", "name": "backend"}).json()
    sec2 = env.admin("POST", "/api-keys", {"type": "secret", "name": "worker"}).json()
    assert sec1["api_key"].startswith("sb_secret_") and sec1["api_key"] != sec2["api_key"]
    # the apikey decides the role (both server processes know the keys at once)
    for server in (env.a, env.b):
        assert env.role(pub["api_key"], server=server) == "anon"
        assert env.role(sec1["api_key"], server=server) == "service_role"
        # supabase-js without a session sends the key as bearer too: the apikey still decides
        assert env.role(pub["api_key"], pub["api_key"], server=server) == "anon"
        assert env.role(sec2["api_key"], pub["api_key"], server=server) == "service_role"
    # a user's JWT in Authorization decides, whatever the key
    user = env.sign_up(f"k-{uuid.uuid4().hex[:8]}@example.com", apikey=pub["api_key"])
    who = env.whoami(sec1["api_key"], user["access_token"]).json()
    assert who["role"] == "authenticated" and who["sub"] == user["user"]["id"]
    # garbage and look-alikes are refused with Supabase's message
    fake = apikeys.new_key("secret")
    for bad in (fake, pub["api_key"][:-1], "sb_secret_", "sb_publishable_x"):
        r = env.whoami(bad)
        assert r.status_code == 401 and r.json()["message"] == "Invalid API key"
    # listing: masked, publishable revealed on request, a secret key never (only its digest is stored)
    listed = {k["id"]: k for k in env.admin("GET", "/api-keys").json()}
    assert listed[pub["id"]]["api_key"] == apikeys.hint(pub["api_key"])
    assert listed[sec1["id"]]["api_key"] == apikeys.hint(sec1["api_key"])
    revealed = {k["id"]: k for k in env.admin("GET", "/api-keys", params={"reveal": "true"}).json()}
    assert revealed[pub["id"]]["api_key"] == pub["api_key"]
    assert revealed[sec1["id"]]["api_key"] == apikeys.hint(sec1["api_key"])
    stored = control_sql(env.a, "select encode(digest, 'hex') as d, key_enc is null as sealed_none "
                                "from madbase_control.api_keys where id = $1::uuid", sec1["id"], fetch=True)[0]
    assert stored["d"] == apikeys.digest(sec1["api_key"]).hex() and stored["sealed_none"]
    # names are unique among live keys; bad input is a clear 400
    assert env.admin("POST", "/api-keys", {"type": "secret", "name": "backend"}).status_code == 409
    for body in ({"type": "legacy", "name": "x"}, {"type": "secret", "name": "Bad Name"}, {"type": "secret"},
                 [1, 2], {"type": "secret", "name": "a" * 65}):
        r = env.admin("POST", "/api-keys", body)
        assert r.status_code == 400 and "message" in r.json()
    # revoking one secret key: refused at once on this process and within a second on the other
    r = env.admin("DELETE", f"/api-keys/{sec1['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert env.role(sec1["api_key"]) == 401
    deadline = time.monotonic() + 1.0
    while env.role(sec1["api_key"], server=env.b) != 401:
        assert time.monotonic() < deadline, "the second process still accepts a revoked key after 1 s"
        time.sleep(0.02)
    assert env.role(sec2["api_key"]) == "service_role" and env.role(sec2["api_key"], server=env.b) == "service_role"
    assert env.admin("DELETE", f"/api-keys/{sec1['id']}").status_code == 404
    assert env.admin("DELETE", "/api-keys/not-a-uuid").status_code == 404
    assert env.admin("DELETE", "/api-keys/anon").status_code == 400
    # exactly one audit record per successful mutation, none holding a key
    rows = audit_rows(env, before)
    assert [r["action"] for r in rows] == ["api_keys.create"] * 3 + ["api_keys.revoke"]
    assert all(r["project_ref"] == env.ref for r in rows)
    text = " ".join(str(r) for r in rows)
    for key in (pub["api_key"], sec1["api_key"], sec2["api_key"]):
        assert key not in text
    env.admin("DELETE", f"/api-keys/{sec2['id']}")
    env.admin("DELETE", f"/api-keys/{pub['id']}")


def test_rbac(keys_env: Keys) -> None:
    env = keys_env
    dsn = env.a.db_url
    developer = admin_token(dsn, "developer", env.ref)
    reader = admin_token(dsn, "read_only", env.ref)
    outsider = admin_token(dsn, "owner", None, projects=["someotherproject"])
    before = last_audit_id(env)
    for token in (developer, reader):
        assert env.admin("GET", "/api-keys", token=token).status_code == 200
        for method, path, body in (("POST", "/api-keys", {"type": "secret", "name": "nope"}),
                                   ("DELETE", f"/api-keys/{uuid.uuid4()}", None),
                                   ("POST", "/api-keys/legacy/rotate", {}),
                                   ("POST", "/jwt-secret/rotate", {})):
            r = env.admin(method, path, body, token=token)
            assert r.status_code == 403 and "keys.write" in r.json()["message"], (method, path, r.text)
    # reveal: the anon key, never the service_role key, to an admin who may not change keys
    shown = {k["name"]: k["api_key"] for k in
             env.admin("GET", "/api-keys", token=reader, params={"reveal": "true"}).json()}
    assert shown["anon"].startswith("eyJ") and shown["service_role"].endswith(apikeys.MASK)
    assert env.admin("GET", "/api-keys", token=outsider).status_code == 403
    assert audit_rows(env, before) == []
    # an owner of the project may
    owner = admin_token(dsn, "owner", env.ref)
    r = env.admin("POST", "/api-keys", {"type": "secret", "name": "owners"}, token=owner)
    assert r.status_code == 201
    assert env.admin("DELETE", f"/api-keys/{r.json()['id']}", token=owner).status_code == 200
    assert [r["action"] for r in audit_rows(env, before)] == ["api_keys.create", "api_keys.revoke"]
