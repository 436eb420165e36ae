"""Rotation without downtime, on two server processes under load: the legacy anon/service_role keys, the
HS256 JWT secret, and an asymmetric signing key with its JWKS. Zero failed requests that carried a valid key;
old keys refused once the grace window is over."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime
from typing import Any

import jwt
import pytest

from tests.admin.conftest import control_sql
from tests.admin.keys.conftest import Keys
from tests.admin.keys.load import Load

GRACE = 4


def _wait_until(iso: str) -> None:
    delay = datetime.fromisoformat(iso).timestamp() - time.time()
    if delay > 0:
        time.sleep(delay + 0.05)


def _roles(env: Keys, apikey: str, bearer: str | None = None) -> set[str | int]:
    return {env.role(apikey, bearer, server=s) for s in (env.a, env.b)}


def test_legacy_keys_rotate_under_load(keys_env: Keys) -> None:
    env = keys_env
    old = env.current_keys()
    holder: dict[str, Any] = {"new": None}

    def credentials(index: int, n: int) -> tuple[str, str | None, str]:
        new = holder["new"]
        # some requests keep the old keys for the whole grace window, the others switch as soon as they can
        keys = new if new is not None and n % 2 == 0 else old
        if n % 3 == 0:
            return keys["service_role"], keys["service_role"], "service_role"
        return keys["anon"], keys["anon"], "anon"

    with Load((env.a, env.b), credentials) as load:
        time.sleep(1.0)
        before = load.statuses["ok"]
        r = env.admin("POST", "/api-keys/legacy/rotate", {"grace_seconds": GRACE})
        assert r.status_code == 200, r.text
        body = r.json()
        holder["new"] = {"anon": body["anon_key"], "service_role": body["service_role_key"]}
        grace_until = body["grace_until"]
        time.sleep(GRACE - 1.5)
    print(f"legacy key rotation under load: {dict(load.statuses)}")
    assert load.failures == [] and load.statuses["failed"] == 0
    assert load.statuses["ok"] > before + 20, load.statuses
    new = holder["new"]
    assert new["anon"] != old["anon"] and new["service_role"] != old["service_role"]
    assert env.current_keys() == new
    _wait_until(grace_until)
    # after the window: the old keys are refused everywhere, as apikey and as bearer
    assert _roles(env, old["anon"]) == {401}
    assert _roles(env, old["service_role"]) == {401}
    assert _roles(env, new["anon"], old["service_role"]) == {401}
    assert _roles(env, new["anon"], old["anon"]) == {401}
    assert _roles(env, new["anon"]) == {"anon"} and _roles(env, new["service_role"]) == {"service_role"}
    # the retired pair is no longer listed
    assert {k["name"] for k in env.admin("GET", "/api-keys").json() if k["type"] == "legacy"} == \
        {"anon", "service_role"}


def _signed_url(env: Keys, service_key: str) -> str:
    """A signed download URL (path below the server URL) of a new object, made with the keys of now."""
    headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
    bucket = f"rot-{uuid.uuid4().hex[:6]}"
    base = f"{env.a.url}/storage/v1"
    assert env.http.post(f"{base}/bucket", json={"name": bucket}, headers=headers).status_code == 200
    r = env.http.post(f"{base}/object/{bucket}/a.txt", content=b"signed", headers={**headers,
                                                                                    "content-type": "text/plain"})
    assert r.status_code == 200, r.text
    r = env.http.post(f"{base}/object/sign/{bucket}/a.txt", json={"expiresIn": 600}, headers=headers)
    assert r.status_code == 200, r.text
    return "/storage/v1" + str(r.json()["signedURL"])


def _sign_in(env: Keys, email: str, anon: str, password: str = "correct-horse-9") -> dict[str, Any]:
    r = env.http.post(f"{env.a.url}/auth/v1/token?grant_type=password", json={"email": email, "password": password},
                      headers={"apikey": anon})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_jwt_secret_rotates_under_load(keys_env: Keys) -> None:
    env = keys_env
    old = env.current_keys()
    email = f"rot-{uuid.uuid4().hex[:8]}@example.com"
    user = env.sign_up(email)
    old_token = user["access_token"]
    assert jwt.decode(old_token, env.a.jwt_secret, algorithms=["HS256"], audience="authenticated")
    holder: dict[str, Any] = {"anon": old["anon"]}
    signed_url = _signed_url(env, old["service_role"])

    def credentials(index: int, n: int) -> tuple[str, str | None, str]:
        # a signed-in client: its session token (signed with the old secret) and the key it has now
        return (holder["anon"] if n % 2 else old["anon"]), old_token, "authenticated"

    with Load((env.a, env.b), credentials) as load:
        time.sleep(1.0)
        r = env.admin("POST", "/jwt-secret/rotate", {"grace_seconds": GRACE})
        assert r.status_code == 200, r.text
        body = r.json()
        holder["anon"] = body["anon_key"]
        # tokens are signed with the new secret from the first request on
        fresh = _sign_in(env, email, body["anon_key"])["access_token"]
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(fresh, env.a.jwt_secret, algorithms=["HS256"], audience="authenticated")
        assert _roles(env, body["anon_key"], fresh) == {"authenticated"}
        time.sleep(1.0)
    print(f"JWT secret rotation under load: {dict(load.statuses)}")
    assert load.failures == [] and load.statuses["failed"] == 0 and load.statuses["ok"] > 20
    assert body["alg"] == "HS256" and len(body["key_id"]) == 16
    # the secret itself is never in the audit log; symmetric keys are not published
    assert env.http.get(f"{env.a.url}/auth/v1/.well-known/jwks.json").json() == {"keys": []}
    # a signed URL made before the rotation works during the window, not after (the object's file is on the
    # first server's disk: the second one accepts the token and then finds no file)
    r = env.http.get(env.a.url + signed_url)
    assert r.status_code == 200 and r.content == b"signed"
    assert env.http.get(env.b.url + signed_url).json()["code"] == "NoSuchKey"
    _wait_until(body["grace_until"])
    for server in (env.a, env.b):
        r = env.http.get(server.url + signed_url)
        assert r.status_code == 400 and r.json()["message"] == "invalid signature", r.text
    assert _roles(env, body["anon_key"], old_token) == {401}
    assert _roles(env, old["anon"]) == {401}
    assert _roles(env, body["anon_key"], fresh) == {"authenticated"}
    # a refresh token issued before the rotation still works (refresh tokens are not JWTs)
    r = env.http.post(f"{env.a.url}/auth/v1/token?grant_type=refresh_token",
                      json={"refresh_token": user["refresh_token"]}, headers={"apikey": body["anon_key"]})
    assert r.status_code == 200, r.text
    assert _roles(env, body["anon_key"], r.json()["access_token"]) == {"authenticated"}


def _set_alg(env: Keys, alg: str | None) -> None:
    if alg is None:
        control_sql(env.a, "update madbase_control.projects set config = config #- '{auth,jwt_signing_alg}' "
                           "where ref = $1", env.ref)
    else:
        control_sql(env.a, "update madbase_control.projects set config = jsonb_set(config, "
                           "'{auth,jwt_signing_alg}', to_jsonb($2::text)) where ref = $1", env.ref, alg)
    time.sleep(0.6)


def _jwks_kids(env: Keys) -> list[str]:
    return [k["kid"] for k in env.http.get(f"{env.a.url}/auth/v1/.well-known/jwks.json").json()["keys"]]


def test_signing_key_rotates_with_jwks(keys_env: Keys) -> None:
    env = keys_env
    email = f"es-{uuid.uuid4().hex[:8]}@example.com"
    env.sign_up(email)
    _set_alg(env, "ES256")
    try:
        anon = env.current_keys()["anon"]
        first = _sign_in(env, email, anon)["access_token"]
        kid1 = jwt.get_unverified_header(first)["kid"]
        assert _jwks_kids(env) == [kid1]
        r = env.admin("POST", "/jwt-secret/rotate", {"grace_seconds": GRACE})
        assert r.status_code == 200, r.text
        body = r.json()
        kid2 = body["key_id"]
        assert body["alg"] == "ES256" and kid2 != kid1
        anon = body["anon_key"]
        assert _jwks_kids(env) == [kid2, kid1]
        second = _sign_in(env, email, anon)["access_token"]
        assert jwt.get_unverified_header(second)["kid"] == kid2
        assert _roles(env, anon, first) == {"authenticated"} and _roles(env, anon, second) == {"authenticated"}
        _wait_until(body["grace_until"])
        assert _jwks_kids(env) == [kid2]
        assert _roles(env, anon, first) == {401}
        assert _roles(env, anon, second) == {"authenticated"}
    finally:
        _set_alg(env, None)


def test_rotation_input_and_audit(keys_env: Keys) -> None:
    env = keys_env
    for body in ({"grace_seconds": -1}, {"grace_seconds": "60"}, {"grace_seconds": 10**9}, {"grace_seconds": True}):
        for path in ("/api-keys/legacy/rotate", "/jwt-secret/rotate"):
            r = env.admin("POST", path, body)
            assert r.status_code == 400 and "grace_seconds" in r.json()["message"]
    since = int(control_sql(env.a, "select coalesce(max(id), 0) as n from madbase_control.audit_log",
                            fetch=True)[0]["n"])
    before = env.current_keys()
    r1 = env.admin("POST", "/api-keys/legacy/rotate", {"grace_seconds": 0}).json()
    # grace 0: the previous keys are refused at once, on both processes
    assert _roles(env, before["anon"]) == {401} and _roles(env, r1["anon_key"]) == {"anon"}
    r2 = env.admin("POST", "/jwt-secret/rotate", {}).json()
    assert datetime.fromisoformat(r2["grace_until"]).timestamp() == pytest.approx(time.time() + 3600, abs=60)
    rows = control_sql(env.a, "select action, details::text as details from madbase_control.audit_log "
                              "where id > $1 order by id", since, fetch=True)
    assert [r["action"] for r in rows] == ["api_keys.legacy.rotate", "jwt_secret.rotate"]
    assert '"grace_seconds": 0' in rows[0]["details"] and '"grace_seconds": 3600' in rows[1]["details"]
    text = " ".join(r["details"] for r in rows)
    for secret in (r1["anon_key"], r1["service_role_key"], r2["anon_key"], r2["service_role_key"]):
        assert secret not in text
    # the default grace keeps the keys of r1 working beside r2's
    assert _roles(env, r1["anon_key"]) == {"anon"} and _roles(env, r2["anon_key"]) == {"anon"}


def test_otp_code_mailed_before_a_rotation_still_verifies(keys_env: Keys) -> None:
    env = keys_env
    email = f"otp-{uuid.uuid4().hex[:8]}@example.com"
    env.sign_up(email)
    anon = env.current_keys()["anon"]
    r = env.http.post(f"{env.a.url}/auth/v1/otp", json={"email": email, "create_user": False},
                      headers={"apikey": anon})
    assert r.status_code == 200, r.text
    inbox = f"{env.a.url}/admin/v1/projects/{env.ref}/inbox"
    headers = {"Authorization": f"Bearer {env.a.admin_token}"}
    deadline = time.monotonic() + 10
    while not (messages := env.http.get(inbox, params={"email": email}, headers=headers).json()["messages"]):
        assert time.monotonic() < deadline, "no mail in the inbox"
        time.sleep(0.2)
    html = env.http.get(f"{inbox}/{messages[0]['id']}", headers=headers).json()["html"]
    code = re.search(r"\b(\d{6})\b", html)
    assert code is not None, html
    rotated = env.admin("POST", "/jwt-secret/rotate", {"grace_seconds": 60}).json()
    r = env.http.post(f"{env.b.url}/auth/v1/verify", json={"type": "email", "email": email, "token": code.group(1)},
                      headers={"apikey": rotated["anon_key"]})
    assert r.status_code == 200, r.text
    assert _roles(env, rotated["anon_key"], r.json()["access_token"]) == {"authenticated"}
