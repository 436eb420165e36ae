"""OAuth and OpenID Connect sign-in against a real local provider: redirects, code exchange, id_token
signature, PKCE, GitHub/Google shapes, account linking by verified email, grant_type=id_token."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.auth.conftest import AuthEnv, new_email
from tests.auth.oidc_provider import OidcProvider
from tests.auth.test_clients import js

APP = "http://app.example.com/after"


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    provider = OidcProvider().start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="module")
async def oauth_auth(auth: AuthEnv, idp: OidcProvider) -> AsyncIterator[AuthEnv]:
    common = {"client_id": idp.client_id, "secret": idp.secret}
    await auth.set_config(external={
        "myoidc": {"kind": "oidc", "issuer": idp.base, **common},
        "github": {**common, "authorization_url": idp.base + "/login/oauth/authorize",
                   "token_url": idp.base + "/login/oauth/access_token", "userinfo_url": idp.base + "/api/user"},
        "google": {**common, "issuer": idp.base, "authorization_url": idp.base + "/authorize",
                   "token_url": idp.base + "/token", "userinfo_url": idp.base + "/userinfo",
                   "jwks_url": idp.base + "/jwks"},
    })
    try:
        yield auth
    finally:
        await auth.set_config()


def user(sub: str, email: str, *, verified: bool = True) -> dict[str, object]:
    return {"sub": sub, "email": email, "email_verified": verified, "name": "Grace Hopper",
            "picture": "http://img/" + sub}


async def run_redirects(auth: AuthEnv, start: str) -> str:
    """Follow real HTTP redirects (server → provider → server) until the app URL; return it."""
    url = start
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(5):
            r = await client.get(url, headers={"apikey": auth.server.anon_key} if url.startswith(auth.url) else {})
            assert r.status_code in (302, 303), (url, r.status_code, r.text)
            url = r.headers["location"]
            if url.startswith(APP):
                return url
    raise AssertionError("never reached the app")


def fragment(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()}


async def test_oidc_implicit_flow_creates_user(oauth_auth: AuthEnv, idp: OidcProvider) -> None:
    auth = oauth_auth
    email = new_email()
    idp.next_user = user("oidc-1", email)
    final = await run_redirects(auth, f"{auth.url}/authorize?provider=myoidc&redirect_to={APP}")
    sent = idp.authorize_requests[-1]
    assert sent["client_id"] == idp.client_id and sent["redirect_uri"] == auth.url + "/callback"
    assert sent["response_type"] == "code" and "openid" in sent["scope"] and sent["nonce"]
    frag = fragment(final)
    assert frag["token_type"] == "bearer" and frag["provider_token"] and frag["provider_refresh_token"]
    r = await auth.get("/user", frag["access_token"])
    body = r.json()
    assert body["email"] == email and body["email_confirmed_at"]
    assert body["app_metadata"] == {"provider": "myoidc", "providers": ["myoidc"]}
    [identity] = body["identities"]
    assert identity["provider"] == "myoidc" and identity["id"] == "oidc-1"
    assert identity["identity_data"]["email_verified"] is True
    assert body["user_metadata"]["full_name"] == "Grace Hopper"
    # Signing in again finds the same identity.
    final = await run_redirects(auth, f"{auth.url}/authorize?provider=myoidc&redirect_to={APP}")
    again = (await auth.get("/user", fragment(final)["access_token"])).json()
    assert again["id"] == body["id"]


async def test_links_identity_by_verified_email(oauth_auth: AuthEnv, idp: OidcProvider) -> None:
    auth = oauth_auth
    email = new_email()
    created = (await auth.post("/admin/users", {"email": email, "password": "secret-pass-1",
                                                "email_confirm": True}, service=True)).json()
    idp.next_user = user("4242", email)
    final = await run_redirects(auth, f"{auth.url}/authorize?provider=github&redirect_to={APP}")
    me = (await auth.get("/user", fragment(final)["access_token"])).json()
    assert me["id"] == created["id"]
    assert sorted(i["provider"] for i in me["identities"]) == ["email", "github"]
    gh = next(i for i in me["identities"] if i["provider"] == "github")
    assert gh["id"] == "4242" and gh["identity_data"]["user_name"] == "grace hopper"
    assert me["app_metadata"]["providers"] == ["email", "github"]
    # An unverified email does not take over an existing account.
    idp.next_user = user("oidc-evil", email, verified=False)
    final = await run_redirects(auth, f"{auth.url}/authorize?provider=myoidc&redirect_to={APP}")
    assert fragment(final)["error_code"] == "provider_email_needs_verification"


async def test_pkce_oauth_with_supabase_js(oauth_auth: AuthEnv, idp: OidcProvider, tmp_path: Path) -> None:
    auth = oauth_auth
    storage = str(tmp_path / "storage.json")
    email = new_email()
    idp.next_user = user("google-7", email)
    out = await js(auth, "oauthStart", provider="google", storage=storage, redirectTo=APP)
    assert out["error"] is None and "code_challenge=" in out["url"]
    final = await run_redirects(auth, out["url"])
    assert idp.authorize_requests[-1]["prompt"] == "consent"
    code = parse_qs(urlsplit(final).query)["code"][0]
    out = await js(auth, "exchange", code=code, storage=storage)
    assert out == {"error": None, "email": email, "hasSession": True}


async def test_id_token_grant_with_supabase_js(oauth_auth: AuthEnv, idp: OidcProvider) -> None:
    auth = oauth_auth
    email = new_email()
    nonce = "raw-nonce-123"
    token = idp.id_token(user("idt-1", email), nonce=hashlib.sha256(nonce.encode()).hexdigest())
    out = await js(auth, "idToken", provider="google", token=token, nonce=nonce)
    assert out == {"error": None, "email": email, "hasSession": True, "providers": ["google"]}
    bad = await js(auth, "idToken", provider="google", token=token, nonce="other")
    assert bad["error"]["code"] == "validation_failed"
    forged = idp.id_token(user("idt-1", email), aud="someone-else")
    r = await auth.post("/token?grant_type=id_token", {"provider": "google", "id_token": forged})
    assert r.status_code == 400 and "audience" in r.json()["message"].lower()


async def test_oauth_errors(oauth_auth: AuthEnv) -> None:
    auth = oauth_auth
    r = await auth.client.get("/callback?code=x&state=unknown")
    assert r.status_code == 302 and r.headers["location"].startswith("http://localhost:3000#")
    assert fragment(r.headers["location"])["error_code"] == "bad_oauth_state"
    r = await auth.client.get("/authorize?provider=nope")
    assert r.status_code == 400 and r.json()["error_code"] == "validation_failed"
    r = await auth.client.get("/settings")
    assert r.json()["external"]["github"] is True and r.json()["external"]["myoidc"] is True


async def test_manual_identity_linking_with_supabase_js(oauth_auth: AuthEnv, idp: OidcProvider) -> None:
    auth = oauth_auth
    r = await auth.client.get("/user/identities/authorize?provider=github",
                              headers=auth.headers((await auth.signup())["access_token"]))
    assert r.status_code == 404 and r.json()["code"] == "manual_linking_disabled"
    cfg_external = {"github": {"client_id": idp.client_id, "secret": idp.secret,
                               "authorization_url": idp.base + "/login/oauth/authorize",
                               "token_url": idp.base + "/login/oauth/access_token",
                               "userinfo_url": idp.base + "/api/user"}}
    await auth.set_config(external=cfg_external, security_manual_linking_enabled=True)
    try:
        email = new_email()
        idp.next_user = user("777", "other-" + email)  # a different address: linking is explicit
        out = await js(auth, "linkStart", email=email, password="secret-pass-1", provider="github", redirectTo=APP)
        assert out["error"] is None and out["url"].startswith(idp.base)
        final = await run_redirects(auth, out["url"])
        linked = (await auth.get("/user", fragment(final)["access_token"])).json()
        assert linked["email"] == email
        assert sorted(i["provider"] for i in linked["identities"]) == ["email", "github"]
        res = await js(auth, "unlink", accessToken=out["accessToken"], refreshToken=out["refreshToken"],
                       provider="github")
        assert res["before"] == ["email", "github"] and res["error"] is None and res["after"] == ["email"]
        assert res["last"]["code"] == "single_identity_not_deletable"
    finally:
        await auth.set_config(external=cfg_external)
