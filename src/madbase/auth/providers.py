"""External identity providers (GitHub, Google, generic OpenID Connect): endpoints, code exchange, user data.

Provider settings come from `auth.external.<name>` in the project config. OIDC endpoints are discovered
from `<issuer>/.well-known/openid-configuration` unless given; ID tokens are verified against the
provider's JWKS (signature, issuer, audience = client id, expiry, nonce). Network I/O uses httpx.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt as pyjwt

from madbase.auth.config import OAuthProvider
from madbase.auth.errors import AuthError

_GITHUB = {"authorization_url": "https://github.com/login/oauth/authorize",
           "token_url": "https://github.com/login/oauth/access_token",
           "userinfo_url": "https://api.github.com/user", "scopes": "user:email"}
_GOOGLE = {"issuer": "https://accounts.google.com",
           "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth",
           "token_url": "https://oauth2.googleapis.com/token",
           "userinfo_url": "https://openidconnect.googleapis.com/v1/userinfo",
           "jwks_url": "https://www.googleapis.com/oauth2/v3/certs", "scopes": "openid email profile"}

_http: httpx.AsyncClient | None = None
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks: dict[str, tuple[float, pyjwt.PyJWKSet]] = {}
_TTL = 600.0


def client() -> httpx.AsyncClient:
    global _http
    if _http is None:
        _http = httpx.AsyncClient(timeout=10, follow_redirects=False)
    return _http


async def close() -> None:
    global _http
    if _http is not None:
        await _http.aclose()
        _http = None


@dataclass(frozen=True, slots=True)
class Endpoints:
    authorization_url: str
    token_url: str
    userinfo_url: str
    jwks_url: str
    issuer: str
    scopes: str


@dataclass(slots=True)
class UserData:
    """What a provider says about the user, in GoTrue's identity_data names."""

    provider_id: str
    email: str
    email_verified: bool
    claims: dict[str, Any] = field(default_factory=dict)


async def _get_json(url: str, **kw: Any) -> Any:
    try:
        resp = await client().get(url, **kw)
    except httpx.HTTPError as exc:
        raise AuthError("bad_oauth_callback", f"Error contacting the provider: {exc}", status=500) from None
    if resp.status_code != 200:
        raise AuthError("bad_oauth_callback", f"Provider answered {resp.status_code} for {url}", status=500)
    return resp.json()


async def endpoints(p: OAuthProvider) -> Endpoints:
    defaults: dict[str, str] = {"github": _GITHUB, "google": _GOOGLE}.get(p.kind, {})
    values = {k: getattr(p, k) or defaults.get(k, "") for k in
              ("authorization_url", "token_url", "userinfo_url", "jwks_url", "issuer", "scopes")}
    if p.kind == "oidc" and p.issuer and not (values["authorization_url"] and values["token_url"]
                                              and values["jwks_url"]):
        doc = await discover(p.issuer)
        for key, name in (("authorization_url", "authorization_endpoint"), ("token_url", "token_endpoint"),
                          ("userinfo_url", "userinfo_endpoint"), ("jwks_url", "jwks_uri")):
            values[key] = values[key] or str(doc.get(name) or "")
    if p.kind == "oidc" and not values["scopes"]:
        values["scopes"] = "openid email profile"
    return Endpoints(**values)


async def discover(issuer: str) -> dict[str, Any]:
    hit = _discovery.get(issuer)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    doc = await _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if not isinstance(doc, dict):
        raise AuthError("bad_oauth_callback", "Invalid OpenID configuration", status=500)
    _discovery[issuer] = (time.monotonic() + _TTL, doc)
    return doc


async def _keyset(url: str, *, refresh: bool = False) -> pyjwt.PyJWKSet:
    hit = _jwks.get(url)
    if hit is not None and hit[0] > time.monotonic() and not refresh:
        return hit[1]
    data = await _get_json(url)
    keyset = pyjwt.PyJWKSet.from_dict(data)
    _jwks[url] = (time.monotonic() + _TTL, keyset)
    return keyset


async def verify_id_token(p: OAuthProvider, ep: Endpoints, token: str, nonce: str | None) -> dict[str, Any]:
    """Signature (provider JWKS), issuer, audience, expiry and nonce (raw or SHA-256 hex, as GoTrue accepts)."""
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError:
        raise AuthError("validation_failed", "Bad ID token: malformed") from None
    if not ep.jwks_url:
        raise AuthError("validation_failed", "Provider has no JWKS configured")
    kid = header.get("kid")
    keyset = await _keyset(ep.jwks_url)
    key = next((k for k in keyset.keys if k.key_id == kid), None)
    if key is None:
        keyset = await _keyset(ep.jwks_url, refresh=True)
        key = next((k for k in keyset.keys if k.key_id == kid or kid is None), None)
    if key is None:
        raise AuthError("validation_failed", "Bad ID token: unknown signing key")
    try:
        claims: dict[str, Any] = pyjwt.decode(token, key.key, algorithms=[str(header.get("alg", "RS256"))],
                                              audience=p.client_id, issuer=ep.issuer or None, leeway=30)
    except pyjwt.PyJWTError as exc:
        raise AuthError("validation_failed", f"Bad ID token: {exc}") from None
    token_nonce = claims.get("nonce")
    if not p.skip_nonce_check and (token_nonce or nonce):
        hashed = hashlib.sha256((nonce or "").encode()).hexdigest()
        if not nonce or token_nonce not in (nonce, hashed):
            raise AuthError("validation_failed", "Nonces mismatch")
    return claims


def from_oidc_claims(claims: dict[str, Any]) -> UserData:
    email = str(claims.get("email") or "")
    verified = claims.get("email_verified")
    data = {k: v for k, v in claims.items() if k not in ("aud", "exp", "iat", "nonce", "at_hash", "auth_time",
                                                         "azp", "c_hash", "sid")}
    data.setdefault("email", email)
    data["email_verified"] = verified is True or verified == "true"
    data.setdefault("phone_verified", False)
    if "name" in claims:
        data.setdefault("full_name", claims["name"])
    if "picture" in claims:
        data.setdefault("avatar_url", claims["picture"])
    data["provider_id"] = str(claims["sub"])
    return UserData(str(claims["sub"]), email.lower(), bool(data["email_verified"]), data)


async def exchange_code(p: OAuthProvider, ep: Endpoints, code: str, redirect_uri: str,
                        code_verifier: str | None) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": p.client_id, "client_secret": p.secret}
    if code_verifier:
        form["code_verifier"] = code_verifier
    try:
        resp = await client().post(ep.token_url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise AuthError("bad_oauth_callback", f"Error exchanging the code: {exc}", status=500) from None
    if resp.status_code != 200:
        raise AuthError("bad_oauth_callback", f"Provider refused the code ({resp.status_code})", status=500)
    body = resp.json()
    if not isinstance(body, dict) or "access_token" not in body:
        raise AuthError("bad_oauth_callback", "Provider answered without an access token", status=500)
    return body


async def user_data(p: OAuthProvider, ep: Endpoints, tokens: dict[str, Any], nonce: str | None) -> UserData:
    access = str(tokens["access_token"])
    auth = {"Authorization": f"Bearer {access}", "Accept": "application/json"}
    if p.kind == "github":
        user = await _get_json(ep.userinfo_url, headers=auth)
        emails = await _get_json(ep.userinfo_url.rstrip("/") + "/emails", headers=auth)
        primary = next((e for e in emails if e.get("primary")), None) if isinstance(emails, list) else None
        email = str((primary or {}).get("email") or user.get("email") or "")
        verified = bool((primary or {}).get("verified"))
        base = ep.userinfo_url.rsplit("/user", 1)[0]
        claims = {"iss": base, "sub": str(user["id"]), "name": user.get("name") or "", "email": email,
                  "email_verified": verified, "phone_verified": False, "full_name": user.get("name") or "",
                  "user_name": user.get("login"), "preferred_username": user.get("login"),
                  "avatar_url": user.get("avatar_url"), "picture": user.get("avatar_url"),
                  "provider_id": str(user["id"])}
        return UserData(str(user["id"]), email.lower(), verified, claims)
    id_token = tokens.get("id_token")
    if isinstance(id_token, str) and id_token:
        return from_oidc_claims(await verify_id_token(p, ep, id_token, nonce))
    info = await _get_json(ep.userinfo_url, headers=auth)
    if not isinstance(info, dict) or "sub" not in info:
        raise AuthError("bad_oauth_callback", "Provider returned no user id", status=500)
    return from_oidc_claims(info)
