"""GET /user's one-statement User JSON (auth/repo/userjson.py) against the Python-built one (users.user_json,
which PUT /user returns): same fields, values and key order, omitempty fields left out, nulls inside metadata
kept, timestamps with and without microseconds, identities and factors; and GoTrue's errors."""

from __future__ import annotations

import json
import uuid

import asyncpg

from madbase.core.jwt import sign_hs256
from tests.auth.conftest import AuthEnv, new_email


async def _both(auth: AuthEnv, token: str) -> tuple[str, str]:
    got = await auth.get("/user", token)
    assert got.status_code == 200, got.text
    put = await auth.client.put("/user", json={}, headers=auth.headers(token))
    assert put.status_code == 200, put.text
    return got.text, put.text


async def test_get_user_json_matches_python_shape(auth: AuthEnv) -> None:
    email = new_email()
    s = await auth.signup(email, data={"name": "Ada \u00e9\u2603", "nested": {"gone": None, "n": 1.5}, "list": [None]})
    token = s["access_token"]
    enrolled = await auth.post("/factors", {"factor_type": "totp", "friendly_name": "phone"}, token)
    assert enrolled.status_code == 200, enrolled.text
    conn = await asyncpg.connect(auth.server.db_url)
    try:  # a timestamp with zero microseconds (Python's isoformat then leaves them out), a pending email change
        await conn.execute("update auth.users set invited_at = '2024-01-02 03:04:05+00', "
                           "email_change = 'next@example.com', email_change_sent_at = now() where email = $1", email)
    finally:
        await conn.close()
    got, put = await _both(auth, token)
    got_json, put_json = json.loads(got), json.loads(put)
    assert got_json == put_json
    assert list(got_json) == list(put_json)  # same key order
    assert got_json["invited_at"] == "2024-01-02T03:04:05Z"
    assert got_json["new_email"] == "next@example.com"
    assert got_json["user_metadata"]["nested"] == {"gone": None, "n": 1.5}
    assert got_json["factors"][0]["friendly_name"] == "phone"
    assert "banned_until" not in got_json and "new_phone" not in got_json


async def test_get_user_json_without_factors_and_anonymous(auth: AuthEnv) -> None:
    s = await auth.signup()
    got, put = await _both(auth, s["access_token"])
    assert json.loads(got) == json.loads(put) and "factors" not in json.loads(got)


async def test_get_user_errors(auth: AuthEnv) -> None:
    secret = auth.server.jwt_secret
    base = {"aud": "authenticated", "role": "authenticated", "exp": 4102444800}
    unknown = sign_hs256({**base, "sub": str(uuid.uuid4())}, secret)
    r = await auth.get("/user", unknown)
    assert r.status_code == 403 and r.json()["code"] == "user_not_found"
    s = await auth.signup()
    sub = s["user"]["id"]
    gone = sign_hs256({**base, "sub": sub, "session_id": str(uuid.uuid4())}, secret)
    r = await auth.get("/user", gone)
    assert r.status_code in (403, 404) and r.json()["code"] == "session_not_found"
    junk = sign_hs256({**base, "sub": sub, "session_id": "not-a-uuid"}, secret)
    r = await auth.get("/user", junk)
    assert r.json()["code"] == "session_not_found"
    no_session = sign_hs256({**base, "sub": sub}, secret)
    r = await auth.get("/user", no_session)
    assert r.status_code == 200 and r.json()["id"] == sub
