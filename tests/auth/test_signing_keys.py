"""Asymmetric access tokens (RS256/ES256): JWKS, verification by the gateway and by supabase-js, rotation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import jwt
import pytest

from tests.auth.conftest import AuthEnv
from tests.auth.test_clients import js


@pytest.fixture(scope="module")
async def rs_auth(auth: AuthEnv) -> AsyncIterator[AuthEnv]:
    await auth.set_config(jwt_signing_alg="RS256")
    try:
        yield auth
    finally:
        await auth.set_config()


def verify_with_jwks(token: str, jwks: dict[str, object]) -> dict[str, object]:
    header = jwt.get_unverified_header(token)
    keyset = jwt.PyJWKSet.from_dict(jwks)
    key = next(k for k in keyset.keys if k.key_id == header["kid"])
    claims: dict[str, object] = jwt.decode(token, key.key, algorithms=[header["alg"]], audience="authenticated")
    return claims


async def test_rs256_tokens_verify_everywhere_and_rotate(rs_auth: AuthEnv) -> None:
    auth = rs_auth
    s = await auth.signup()
    header = jwt.get_unverified_header(s["access_token"])
    assert header["alg"] == "RS256" and header["kid"]
    jwks = (await auth.client.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [header["kid"]] and "d" not in jwks["keys"][0]
    assert verify_with_jwks(s["access_token"], jwks)["sub"] == s["user"]["id"]
    # The gateway accepts it (GET /user) and supabase-js verifies it locally through the JWKS.
    assert (await auth.get("/user", s["access_token"])).status_code == 200
    out = await js(auth, "claimsFor", accessToken=s["access_token"], refreshToken=s["refresh_token"])
    assert out["error"] is None and out["sub"] == s["user"]["id"] and out["alg"] == "RS256"
    # Rotate: new tokens use the new key; the old key still verifies until revoked.
    r = await auth.post("/admin/signing_keys", {"alg": "ES256"}, service=True)
    assert r.status_code == 200, r.text
    new_kid = r.json()["kid"]
    await auth.set_config(jwt_signing_alg="ES256")
    s2 = (await auth.post("/token?grant_type=refresh_token", {"refresh_token": s["refresh_token"]})).json()
    h2 = jwt.get_unverified_header(s2["access_token"])
    assert h2["alg"] == "ES256" and h2["kid"] == new_kid
    jwks = (await auth.client.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, header["kid"]]
    assert (await auth.get("/user", s2["access_token"])).status_code == 200
    assert (await auth.get("/user", s["access_token"])).status_code == 200
    r = await auth.client.request("DELETE", f"/admin/signing_keys/{header['kid']}", headers=auth.headers(service=True))
    assert r.status_code == 200 and [k["kid"] for k in r.json()["keys"]] == [new_kid]
    r = await auth.get("/user", s["access_token"])
    assert r.status_code == 403 and r.json()["code"] == "bad_jwt"
