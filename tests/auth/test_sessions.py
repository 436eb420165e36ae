"""Signup, password and refresh grants, /user, logout, anonymous sign-in, claims and error shapes."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import bcrypt
import jwt
import pytest

from madbase.core.db import SET_GUCS_SQL, request_gucs, settings_json
from madbase.core.jwt import sign_hs256
from tests.auth.conftest import AuthEnv, new_email

PASSWORD = "secret-pass-1"


def claims(auth: AuthEnv, token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, auth.server.jwt_secret, algorithms=["HS256"],
                                         options={"verify_aud": False})
    return decoded


async def test_signup_autoconfirm_returns_session_with_gotrue_claims(auth: AuthEnv) -> None:
    email = new_email()
    before = int(time.time())
    s = await auth.signup(email, data={"name": "Ada"})
    assert s["token_type"] == "bearer" and s["expires_in"] == 3600
    assert s["expires_at"] >= before + 3600
    user = s["user"]
    assert user["email"] == email and user["phone"] == "" and user["aud"] == "authenticated"
    assert user["role"] == "authenticated" and user["is_anonymous"] is False
    assert user["user_metadata"] == {"name": "Ada"}
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert user["email_confirmed_at"] and user["confirmed_at"] and user["last_sign_in_at"]
    [identity] = user["identities"]
    assert identity["provider"] == "email" and identity["id"] == user["id"] and identity["user_id"] == user["id"]
    assert identity["identity_data"]["email"] == email and identity["identity_id"] != user["id"]
    c = claims(auth, s["access_token"])
    assert list(c) == ["aud", "exp", "iat", "iss", "sub", "email", "phone", "app_metadata", "user_metadata",
                       "role", "aal", "amr", "session_id", "is_anonymous"]
    assert c["aud"] == "authenticated" and c["sub"] == user["id"] and c["role"] == "authenticated"
    assert c["aal"] == "aal1" and c["amr"][0]["method"] == "password" and c["is_anonymous"] is False
    assert c["iss"] == auth.url and c["exp"] - c["iat"] == 3600
    assert jwt.get_unverified_header(s["access_token"])["alg"] == "HS256"


async def test_error_shapes_new_and_legacy(auth: AuthEnv) -> None:
    email = new_email()
    await auth.signup(email)
    r = await auth.post("/signup", {"email": email, "password": PASSWORD})
    assert r.status_code == 422
    assert r.json() == {"code": "user_already_exists", "message": "User already registered"}
    assert r.headers["x-supabase-api-version"] == "2024-01-01"
    legacy = await auth.client.post("/signup", json={"email": email, "password": PASSWORD},
                                    headers=auth.headers(legacy=True))
    assert legacy.status_code == 422
    assert legacy.json() == {"code": 422, "error_code": "user_already_exists", "msg": "User already registered"}
    assert legacy.headers["x-sb-error-code"] == "user_already_exists"
    bad = await auth.client.post("/signup", content=b"{nope", headers=auth.headers())
    assert bad.status_code == 400 and bad.json()["code"] == "bad_json"


async def test_weak_password_and_validation(auth: AuthEnv) -> None:
    r = await auth.post("/signup", {"email": new_email(), "password": "123"})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "weak_password" and body["weak_password"] == {"reasons": ["length"]}
    r = await auth.post("/signup", {"email": "not-an-email", "password": PASSWORD})
    assert r.status_code == 400 and r.json()["code"] == "validation_failed"
    r = await auth.post("/signup", {"email": new_email()})
    assert r.status_code == 400 and r.json()["message"] == "Signup requires a valid password"


async def test_password_rules_per_project(auth: AuthEnv) -> None:
    await auth.set_config(password_min_length=10,
                          password_required_characters=["0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"])
    try:
        r = await auth.post("/signup", {"email": new_email(), "password": "abcdefghijk"})
        assert r.status_code == 422 and r.json()["weak_password"]["reasons"] == ["characters"]
        r = await auth.post("/signup", {"email": new_email(), "password": "abc"})
        assert r.json()["weak_password"]["reasons"] == ["length", "characters"]
        await auth.signup(password="Abcdefghij1")
    finally:
        await auth.set_config()


async def test_password_grant(auth: AuthEnv) -> None:
    email = new_email()
    await auth.signup(email)
    r = await auth.post("/token?grant_type=password", {"email": email.upper(), "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == email and "weak_password" not in r.json()
    for body in ({"email": email, "password": "wrong-password"}, {"email": new_email(), "password": PASSWORD}):
        r = await auth.post("/token?grant_type=password", body)
        assert r.status_code == 400
        assert r.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
    r = await auth.post("/token?grant_type=nope", {})
    assert r.status_code == 400


async def test_bcrypt_hash_verifies_and_is_rehashed(auth: AuthEnv) -> None:
    email = new_email()
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    r = await auth.post("/admin/users", {"email": email, "password_hash": legacy, "email_confirm": True},
                        service=True)
    assert r.status_code == 200, r.text
    r = await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        stored = await conn.fetchval("select encrypted_password from auth.users where email = $1", email)
    finally:
        await conn.close()
    assert stored.startswith("$argon2id$")
    r = await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})
    assert r.status_code == 200


async def test_refresh_rotation_and_reuse(auth: AuthEnv) -> None:
    s = await auth.signup()
    first = s["refresh_token"]
    r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": first})
    assert r.status_code == 200, r.text
    second = r.json()["refresh_token"]
    assert second != first
    assert claims(auth, r.json()["access_token"])["session_id"] == claims(auth, s["access_token"])["session_id"]
    # The parent reused inside the interval while its child is still current: the same child again.
    again = await auth.post("/token?grant_type=refresh_token", {"refresh_token": first})
    assert again.status_code == 200 and again.json()["refresh_token"] == second
    # Rotate once more, then reuse the first token after the reuse interval: the whole session is revoked.
    third = (await auth.post("/token?grant_type=refresh_token", {"refresh_token": second})).json()["refresh_token"]
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        await conn.execute("update auth.refresh_tokens set updated_at = now() - interval '1 hour' where revoked")
    finally:
        await conn.close()
    r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": first})
    assert r.status_code == 400 and r.json() == {"code": "refresh_token_already_used",
                                                  "message": "Invalid Refresh Token: Already Used"}
    r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": third})
    assert r.status_code == 400 and r.json()["code"] == "refresh_token_not_found"
    assert (await auth.get("/user", s["access_token"])).json()["code"] == "session_not_found"
    r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": "not-a-token"})
    assert r.status_code == 400 and r.json()["code"] == "refresh_token_not_found"
    r = await auth.post("/token?grant_type=refresh_token", {})
    assert r.status_code == 400 and r.json() == {"error": "invalid_request",
                                                  "error_description": "refresh_token required"}


async def test_concurrent_refresh_yields_one_live_token(auth: AuthEnv) -> None:
    s = await auth.signup()
    results = await asyncio.gather(*[
        auth.post("/token?grant_type=refresh_token", {"refresh_token": s["refresh_token"]}) for _ in range(8)])
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert len({r.json()["refresh_token"] for r in results}) == 1
    sid = claims(auth, s["access_token"])["session_id"]
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        live = await conn.fetchval("select count(*) from auth.refresh_tokens where session_id = $1 and not revoked",
                                   sid)
        sessions = await conn.fetchval("select count(*) from auth.sessions where user_id = $1::uuid",
                                       s["user"]["id"])
    finally:
        await conn.close()
    assert live == 1 and sessions == 1


async def test_one_statement_rotation_and_its_race(auth: AuthEnv) -> None:
    """repo.sessions._FAST_REFRESH_SQL on its own: a live token is rotated in one statement (child, session touch,
    audit row); of two transactions running it on one token at once, the second rotates nothing (it waits on
    the session lock, then skips the revoked row) and leaves the reuse rules to the general path."""
    from madbase.auth import tokens
    from madbase.auth.repo import sessions
    s = await auth.signup()
    digest = tokens.token_digest(s["refresh_token"])
    child = tokens.token_digest(tokens.child_refresh_token(auth.server.jwt_secret, digest))
    uid = s["user"]["id"]
    a, b = await asyncpg.connect(auth.server.db_url), await asyncpg.connect(auth.server.db_url)
    try:
        ta, tb = a.transaction(), b.transaction()
        await ta.start()
        await tb.start()
        args = (digest, child, "bench-agent", uuid.uuid4(), '{"actor_id":"{actor}","action":"token_refreshed"}', "")
        first = await a.fetchrow(sessions._FAST_REFRESH_SQL, *args)
        assert first is not None and first["_rotated"] == 3 and str(first["id"]) == uid
        assert first["_s_aal"] == "aal1" and first["_session_ok"] and first["_identities"]
        second = asyncio.ensure_future(b.fetchrow(sessions._FAST_REFRESH_SQL, digest, child, "other",
                                                  uuid.uuid4(), '{"actor_id":"{actor}"}', ""))
        await asyncio.sleep(0.3)
        assert not second.done()  # waiting for the session row lock
        await ta.commit()
        row = await second
        assert row is not None and row["_rotated"] == 0
        await tb.rollback()
        live = await a.fetch("select token, parent from auth.refresh_tokens where session_id = $1 and not revoked",
                             first["_s_id"])
        assert [(r["token"], r["parent"]) for r in live] == [(child, digest)]
        session = await a.fetchrow("select user_agent, refreshed_at from auth.sessions where id = $1",
                                   first["_s_id"])
        assert session["user_agent"] == "bench-agent" and session["refreshed_at"] is not None
        actors = await a.fetchval("select count(*) from auth.audit_log_entries where payload->>'actor_id' = $1 "
                                  "and payload->>'action' = 'token_refreshed'", uid)
        assert actors == 1
    finally:
        await a.close()
        await b.close()
    # The presented token is now rotated: through HTTP it is a retry of the parent and gets the same child.
    r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": s["refresh_token"]})
    assert r.status_code == 200
    assert tokens.token_digest(r.json()["refresh_token"]) == child


async def test_get_and_update_user(auth: AuthEnv) -> None:
    s = await auth.signup(data={"a": 1, "b": 2})
    token = s["access_token"]
    r = await auth.get("/user", token)
    assert r.status_code == 200 and r.json()["id"] == s["user"]["id"]
    r = await auth.client.put("/user", json={"data": {"b": None, "c": 3}}, headers=auth.headers(token))
    assert r.status_code == 200 and r.json()["user_metadata"] == {"a": 1, "c": 3}
    r = await auth.client.put("/user", json={"password": PASSWORD}, headers=auth.headers(token))
    assert r.status_code == 422 and r.json()["code"] == "same_password"
    r = await auth.client.put("/user", json={"password": "another-pass-2"}, headers=auth.headers(token))
    assert r.status_code == 200
    r = await auth.post("/token?grant_type=password", {"email": s["user"]["email"], "password": "another-pass-2"})
    assert r.status_code == 200
    new = new_email()
    r = await auth.client.put("/user", json={"email": new}, headers=auth.headers(token))
    assert r.status_code == 200 and r.json()["email"] == new  # autoconfirm: applied at once


async def test_user_endpoint_auth_errors(auth: AuthEnv) -> None:
    r = await auth.client.get("/user", headers={"apikey": auth.server.anon_key, "X-Supabase-Api-Version": "2024-01-01"})
    assert r.status_code == 401 and r.json()["code"] == "no_authorization"
    r = await auth.get("/user")
    assert r.status_code == 403 and r.json()["code"] == "bad_jwt"
    s = await auth.signup()
    c = claims(auth, s["access_token"])
    expired = sign_hs256({**c, "exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
                         auth.server.jwt_secret)
    r = await auth.get("/user", expired)
    assert r.status_code == 403 and r.json()["code"] == "bad_jwt"
    assert r.headers["x-supabase-api-version"] == "2024-01-01"
    bogus = sign_hs256({**c, "session_id": "00000000-0000-0000-0000-000000000001"}, auth.server.jwt_secret)
    r = await auth.get("/user", bogus)
    assert r.status_code == 403 and r.json()["code"] == "session_not_found"


@pytest.mark.parametrize("scope", ["local", "others", "global"])
async def test_logout_scopes(auth: AuthEnv, scope: str) -> None:
    email = new_email()
    a = await auth.signup(email)
    b = (await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})).json()
    r = await auth.post(f"/logout?scope={scope}", {}, token=a["access_token"])
    assert r.status_code == 204 and r.content == b""
    a_alive = (await auth.get("/user", a["access_token"])).status_code == 200
    b_alive = (await auth.get("/user", b["access_token"])).status_code == 200
    assert (a_alive, b_alive) == {"local": (False, True), "others": (True, False), "global": (False, False)}[scope]
    if not a_alive:
        r = await auth.get("/user", a["access_token"])
        assert r.status_code == 403 and r.json()["code"] == "session_not_found"
        r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": a["refresh_token"]})
        assert r.status_code == 400 and r.json()["code"] in ("refresh_token_not_found", "session_not_found")


async def test_anonymous_sign_in(auth: AuthEnv) -> None:
    r = await auth.post("/signup", {"data": {"k": "v"}, "gotrue_meta_security": {}})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["user"]["is_anonymous"] is True and s["user"]["email"] == "" and s["user"]["identities"] == []
    c = claims(auth, s["access_token"])
    assert c["is_anonymous"] is True and c["role"] == "authenticated" and c["amr"][0]["method"] == "anonymous"
    await auth.set_config(external_anonymous_users_enabled=False)
    try:
        r = await auth.post("/signup", {"data": {}})
        assert r.status_code == 422 and r.json()["code"] == "anonymous_provider_disabled"
    finally:
        await auth.set_config()


async def test_settings_and_health(auth: AuthEnv) -> None:
    r = await auth.client.get("/settings")
    assert r.status_code == 200
    body = r.json()
    assert body["external"]["email"] is True and body["mailer_autoconfirm"] is True
    assert body["disable_signup"] is False and "phone_autoconfirm" in body and body["saml_enabled"] is False
    r = await auth.client.get("/health")
    assert r.status_code == 200 and r.json()["name"] == "GoTrue"
    r = await auth.client.get("/.well-known/jwks.json")
    assert r.status_code == 200 and r.json() == {"keys": []}


async def test_rls_policy_sees_signed_in_user(auth: AuthEnv) -> None:
    a = await auth.signup()
    b = await auth.signup()
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        await conn.execute("""
            create table if not exists public.auth_notes (id serial primary key, owner uuid not null, body text);
            alter table public.auth_notes enable row level security;
            drop policy if exists own_notes on public.auth_notes;
            create policy own_notes on public.auth_notes for select using (owner = auth.uid());
            grant select on public.auth_notes to authenticated;""")
        await conn.execute("insert into public.auth_notes (owner, body) values ($1::uuid, 'a'), ($2::uuid, 'b')",
                           a["user"]["id"], b["user"]["id"])
        token_claims = claims(auth, a["access_token"])
        gucs = request_gucs("authenticated", token_claims, __import__("json").dumps(token_claims))
        async with conn.transaction():
            await conn.execute(SET_GUCS_SQL, settings_json(gucs.names, gucs.values))
            rows = await conn.fetch("select body, auth.uid()::text as uid from public.auth_notes")
        assert [(r["body"], r["uid"]) for r in rows] == [("a", a["user"]["id"])]
    finally:
        await conn.close()


async def test_anonymous_user_becomes_permanent_with_email(auth: AuthEnv) -> None:
    s = (await auth.post("/signup", {"data": {}})).json()
    email = new_email()
    r = await auth.client.put("/user", json={"email": email, "password": "perm-pass-1"},
                              headers=auth.headers(s["access_token"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["email"] == email and body["is_anonymous"] is False
    assert body["app_metadata"]["providers"] == ["email"] and body["identities"][0]["provider"] == "email"
    r = await auth.post("/token?grant_type=password", {"email": email, "password": "perm-pass-1"})
    assert r.status_code == 200 and claims(auth, r.json()["access_token"])["is_anonymous"] is False


async def test_admin_soft_and_hard_delete(auth: AuthEnv) -> None:
    email = new_email()
    created = (await auth.post("/admin/users", {"email": email, "password": PASSWORD, "email_confirm": True},
                               service=True)).json()
    s = (await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})).json()
    r = await auth.client.request("DELETE", f"/admin/users/{created['id']}", json={"should_soft_delete": True},
                                  headers=auth.headers(service=True))
    assert r.status_code == 200
    got = (await auth.get(f"/admin/users/{created['id']}", service=True)).json()
    assert got["deleted_at"] and got["email"] != email and got["identities"] == []
    assert (await auth.get("/user", s["access_token"])).json()["code"] == "session_not_found"
    r = await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})
    assert r.json()["code"] == "invalid_credentials"
    r = await auth.client.request("DELETE", f"/admin/users/{created['id']}", json={},
                                  headers=auth.headers(service=True))
    assert r.status_code == 200
    r = await auth.get(f"/admin/users/{created['id']}", service=True)
    assert r.status_code == 404 and r.json()["code"] == "user_not_found"


async def test_admin_list_pagination_headers(auth: AuthEnv) -> None:
    for _ in range(3):
        await auth.post("/admin/users", {"email": new_email(), "password": PASSWORD}, service=True)
    r = await auth.get("/admin/users?page=&per_page=", service=True)
    assert r.status_code == 200 and int(r.headers["x-total-count"]) >= 3
    r = await auth.get("/admin/users?page=1&per_page=2", service=True)
    total = int(r.headers["x-total-count"])
    last = -(-total // 2)
    assert len(r.json()["users"]) == 2 and r.json()["aud"] == "authenticated"
    assert r.headers["link"] == (f'<{auth.url}/admin/users?page=2&per_page=2>; rel="next", '
                                 f'<{auth.url}/admin/users?page={last}&per_page=2>; rel="last"')
    r = await auth.get("/admin/users", token=(await auth.signup())["access_token"])
    assert r.status_code == 403 and r.json() == {"code": "not_admin", "message": "User not allowed"}


async def test_audit_log_entries(auth: AuthEnv) -> None:
    s = await auth.signup()
    await auth.post("/token?grant_type=refresh_token", {"refresh_token": s["refresh_token"]})
    await auth.post("/logout", {}, token=s["access_token"])
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        rows = await conn.fetch("select payload::jsonb as p from auth.audit_log_entries "
                                "where payload->>'actor_id' = $1 order by created_at", s["user"]["id"])
    finally:
        await conn.close()
    import json as _json
    payloads = [_json.loads(r["p"]) for r in rows]
    assert [p["action"] for p in payloads] == ["user_signedup", "login", "token_refreshed", "logout"]
    assert payloads[1]["log_type"] == "account" and payloads[1]["actor_username"] == s["user"]["email"]


async def test_custom_access_token_hook(auth: AuthEnv) -> None:
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        await conn.execute("""
            create or replace function public.custom_access_token_hook(event jsonb) returns jsonb
            language plpgsql stable as $$
            declare claims jsonb := event->'claims';
            begin
              claims := jsonb_set(claims, '{plan}', to_jsonb(coalesce(
                (select raw_user_meta_data->>'plan' from auth.users where id = (event->>'user_id')::uuid), 'none')));
              claims := jsonb_set(claims, '{via}', to_jsonb(event->>'authentication_method'));
              return jsonb_build_object('claims', claims);
            end $$;
            grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;""")
    finally:
        await conn.close()
    await auth.set_config(hook_custom_access_token={
        "uri": "pg-functions://postgres/public/custom_access_token_hook"})
    try:
        s = await auth.signup(data={"plan": "gold"})
        c = claims(auth, s["access_token"])
        assert c["plan"] == "gold" and c["via"] == "password" and c["role"] == "authenticated"
        r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": s["refresh_token"]})
        assert claims(auth, r.json()["access_token"])["via"] == "token_refresh"
        await auth.set_config(hook_custom_access_token={"uri": "pg-functions://postgres/public/missing_hook"})
        r = await auth.post("/signup", {"email": new_email(), "password": PASSWORD})
        assert r.status_code == 500 and r.json()["code"] == "unexpected_failure"
    finally:
        await auth.set_config()


async def test_session_timebox_inactivity_and_single_session(auth: AuthEnv) -> None:
    email = new_email()
    first = await auth.signup(email)
    second = (await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})).json()
    await auth.set_config(sessions_single_per_user=True)
    try:
        r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": first["refresh_token"]})
        assert r.status_code == 400 and r.json()["code"] == "session_expired"
        r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": second["refresh_token"]})
        assert r.status_code == 200
        latest = r.json()["refresh_token"]
    finally:
        await auth.set_config()
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        await conn.execute("update auth.sessions set created_at = now() - interval '2 hours', "
                           "refreshed_at = (now() - interval '2 hours') at time zone 'utc' where user_id = $1::uuid",
                           first["user"]["id"])
    finally:
        await conn.close()
    await auth.set_config(sessions_inactivity_timeout=3600)
    try:
        r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": latest})
        assert r.status_code == 400 and r.json()["message"].endswith("(Inactivity)")
    finally:
        await auth.set_config()
    await auth.set_config(sessions_timebox=60)
    try:
        r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": latest})
        assert r.status_code == 400 and r.json()["code"] == "session_expired"
    finally:
        await auth.set_config()


async def test_mfa_rules_over_http(auth: AuthEnv) -> None:
    import pyotp
    email = new_email()
    s = await auth.signup(email)
    h = auth.headers(s["access_token"])
    enrolled = (await auth.client.post("/factors", json={"factor_type": "totp", "friendly_name": "app"},
                                       headers=h)).json()
    r = await auth.client.post("/factors", json={"factor_type": "totp", "friendly_name": "app"}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "mfa_factor_name_conflict"
    fid = enrolled["id"]
    chal = (await auth.client.post(f"/factors/{fid}/challenge", json={}, headers=h)).json()
    code = pyotp.TOTP(enrolled["totp"]["secret"]).now()
    r = await auth.client.post(f"/factors/{fid}/verify", json={"challenge_id": chal["id"], "code": code}, headers=h)
    assert r.status_code == 200
    aal2 = r.json()
    c = claims(auth, aal2["access_token"])
    assert c["aal"] == "aal2" and [m["method"] for m in c["amr"]] == ["totp", "password"]
    # The challenge is single-use.
    r = await auth.client.post(f"/factors/{fid}/verify", json={"challenge_id": chal["id"], "code": code}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "mfa_challenge_expired"
    # A fresh aal1 session may not change the password nor drop the factor.
    aal1 = (await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})).json()
    h1 = auth.headers(aal1["access_token"])
    r = await auth.client.put("/user", json={"password": "changed-pass-1"}, headers=h1)
    assert r.status_code == 401 and r.json()["code"] == "insufficient_aal"
    r = await auth.client.delete(f"/factors/{fid}", headers=h1)
    assert r.status_code == 403 and r.json()["code"] == "insufficient_aal"
    # Refreshing an aal2 session keeps aal2.
    r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": aal2["refresh_token"]})
    assert claims(auth, r.json()["access_token"])["aal"] == "aal2"
    listed = (await auth.get(f"/admin/users/{s['user']['id']}/factors", service=True)).json()
    assert [f["id"] for f in listed] == [fid] and listed[0]["status"] == "verified"
    r = await auth.client.delete(f"/admin/users/{s['user']['id']}/factors/{fid}", headers=auth.headers(service=True))
    assert r.status_code == 200 and r.json()["id"] == fid
    r = await auth.client.put("/user", json={"password": "changed-pass-1"}, headers=h1)
    assert r.status_code == 200


async def test_supabase_style_trigger_on_auth_users(auth: AuthEnv) -> None:
    """The usual Supabase pattern: a security-definer trigger on auth.users fills public.profiles."""
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        await conn.execute("""
            create table if not exists public.profiles (id uuid primary key references auth.users on delete cascade,
                                                        full_name text);
            create or replace function public.handle_new_user() returns trigger
            language plpgsql security definer set search_path = '' as $$
            begin
              insert into public.profiles (id, full_name) values (new.id, new.raw_user_meta_data->>'full_name');
              return new;
            end $$;
            drop trigger if exists on_auth_user_created on auth.users;
            create trigger on_auth_user_created after insert on auth.users
              for each row execute procedure public.handle_new_user();""")
        s = await auth.signup(data={"full_name": "Ada Lovelace"})
        name = await conn.fetchval("select full_name from public.profiles where id = $1::uuid", s["user"]["id"])
        assert name == "Ada Lovelace"
        await conn.execute("drop trigger on_auth_user_created on auth.users")
    finally:
        await conn.close()


async def test_refresh_reuse_inside_interval_of_an_older_token(auth: AuthEnv) -> None:
    s = await auth.signup()
    t1 = s["refresh_token"]
    t2 = (await auth.post("/token?grant_type=refresh_token", {"refresh_token": t1})).json()["refresh_token"]
    t3 = (await auth.post("/token?grant_type=refresh_token", {"refresh_token": t2})).json()["refresh_token"]
    r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": t1})
    assert r.status_code == 200, r.text
    t4 = r.json()["refresh_token"]
    assert t4 not in (t1, t2, t3)
    r = await auth.post("/token?grant_type=refresh_token", {"refresh_token": t4})
    assert r.status_code == 200
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        live = await conn.fetchval("select count(*) from auth.refresh_tokens where session_id = $1::uuid "
                                   "and not revoked", claims(auth, s["access_token"])["session_id"])
    finally:
        await conn.close()
    assert live == 1
