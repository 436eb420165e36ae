"""OAuth sign-in: GET /authorize → provider → GET|POST /callback, and POST /token?grant_type=id_token.

State lives in auth.madbase_oauth_state (random id sent as `state`), with the client's PKCE flow state
when it sent a code_challenge. Accounts are linked as GoTrue does: a known (provider, provider user id)
signs in its user; otherwise a user with the same email, when the provider says the email is verified,
gets the identity linked; otherwise a new user is created.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

from madbase.auth import audit, flows, providers, redirects, sessions, users
from madbase.auth.config import OAuthProvider
from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp, json_resp, redirect
from madbase.auth.repo import flowstate, userupdates
from madbase.auth.repo import identities as identity_repo
from madbase.auth.repo import users as user_repo
from madbase.core.db import internal_transaction
from madbase.core.types import DbConn

_OWN_PARAMS = {"provider", "redirect_to", "scopes", "code_challenge", "code_challenge_method", "apikey",
               "skip_http_redirect"}


def _provider(req: Req, name: str) -> OAuthProvider:
    p = req.config.providers.get(name)
    if p is None:
        raise AuthError("validation_failed", f"Unsupported provider: provider {name} could not be found")
    return p


async def authorize(req: Req) -> Resp:
    return redirect(await _authorize_url(req, None), status=302)


async def link_authorize(req: Req) -> Resp:
    """GET /user/identities/authorize: like /authorize, but the identity is linked to the signed-in user."""
    _require_manual_linking(req)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid, _, _ = await sessions.require_session(conn, req)
    url = await _authorize_url(req, uid)
    if req.query.get("skip_http_redirect") == "true":
        return json_resp({"url": url})
    return redirect(url, status=302)


def _require_manual_linking(req: Req) -> None:
    if not req.config.security_manual_linking_enabled:
        raise AuthError("manual_linking_disabled", "Manual linking is disabled")


async def _authorize_url(req: Req, link_user: uuid.UUID | None) -> str:
    name = req.query.get("provider", "")
    p = _provider(req, name)
    ep = await providers.endpoints(p)
    target = redirects.choose(req.query.get("redirect_to"), req.config)
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(16) if p.kind != "github" else None
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        flow_id = await flows.create_flow_state_from(conn, req.query.get("code_challenge"),
                                                     req.query.get("code_challenge_method"), "oauth", name)
        await flowstate.insert_oauth_state(conn, state, name, target, flow_id, nonce, link_user)
    scopes = " ".join(x for x in (ep.scopes, req.query.get("scopes", "").replace(",", " ")) if x)
    params = {"client_id": p.client_id, "redirect_uri": p.redirect_uri or req.external_url + "/callback",
              "response_type": "code", "scope": scopes, "state": state}
    if nonce:
        params["nonce"] = nonce
    for key, value in req.query.items():
        if key not in _OWN_PARAMS and key not in params:
            params[key] = value
    sep = "&" if "?" in ep.authorization_url else "?"
    return ep.authorization_url + sep + urlencode(params)


def _error_redirect(target: str, error: str, code: str, description: str) -> Resp:
    return redirect(target + "#" + urlencode({"error": error, "error_code": code, "error_description": description}),
                    status=302)


async def callback(req: Req) -> Resp:
    params = dict(req.query)
    if req.method == "POST" and req.body:
        from urllib.parse import parse_qsl
        params.update(dict(parse_qsl(req.body.decode("latin-1"))))
    state_id = params.get("state", "")
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        state = await flowstate.take_oauth_state(conn, state_id)
    if state is None:
        # A browser is waiting: send it to the site URL with the error, as GoTrue's callback does.
        return _error_redirect(req.config.site_url, "invalid_request", "bad_oauth_state",
                               "OAuth callback with invalid state")
    target: str = state["redirect_to"]
    if params.get("error"):
        return _error_redirect(target, params["error"], "provider_error",
                               params.get("error_description") or "Provider returned an error")
    code = params.get("code", "")
    if not code:
        return _error_redirect(target, "invalid_request", "bad_oauth_callback", "OAuth callback without a code")
    p = _provider(req, state["provider"])
    try:
        ep = await providers.endpoints(p)
        tokens = await providers.exchange_code(p, ep, code, p.redirect_uri or req.external_url + "/callback", None)
        data = await providers.user_data(p, ep, tokens, state["nonce"])
        async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
            if state["link_user_id"] is not None:
                uid = await link_to_user(conn, p.name, data, state["link_user_id"])
            else:
                uid = await link_account(conn, req, p.name, data)
            if state["flow_state_id"] is not None:
                auth_code = await flowstate.issue_code_for_oauth(
                    conn, state["flow_state_id"], uid, tokens.get("access_token"), tokens.get("refresh_token"))
                sep = "&" if "?" in target else "?"
                return redirect(f"{target}{sep}{urlencode({'code': auth_code})}", status=302)
            s = await sessions.create_session(conn, req, uid, "oauth")
    except AuthError as err:
        return _error_redirect(target, "server_error" if err.status >= 500 else "access_denied", err.code,
                               err.message)
    frag: dict[str, Any] = {"access_token": s["access_token"], "expires_at": s["expires_at"],
                            "expires_in": s["expires_in"], "provider_token": tokens.get("access_token", ""),
                            "refresh_token": s["refresh_token"], "token_type": "bearer"}
    if tokens.get("refresh_token"):
        frag["provider_refresh_token"] = tokens["refresh_token"]
    return redirect(f"{target}#{urlencode(frag)}", status=302)


async def _add_provider(conn: DbConn, uid: uuid.UUID, provider: str) -> None:
    await userupdates.add_provider(conn, uid, provider)


async def link_to_user(conn: DbConn, provider: str, data: providers.UserData, uid: uuid.UUID) -> uuid.UUID:
    """Manual linking: attach the provider identity to `uid` (never to an identity owned by someone else)."""
    owner = await identity_repo.owner(conn, data.provider_id, provider)
    if owner is not None and owner != uid:
        raise AuthError("identity_already_exists", "Identity is already linked to another user")
    if owner is None:
        await identity_repo.insert(conn, uid, data.provider_id, provider, data.claims)
        await _add_provider(conn, uid, provider)
    return uid


async def unlink(req: Req) -> Resp:
    """DELETE /user/identities/{identity_id}."""
    _require_manual_linking(req)
    identity_id = users.parse_uuid(req.params["identity_id"])
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid, _, _ = await sessions.require_session(conn, req)
        await user_repo.lock(conn, uid)
        rows = await identity_repo.of_user(conn, uid)
        target = next((r for r in rows if r["id"] == identity_id), None)
        if target is None:
            raise AuthError("identity_not_found", "Identity doesn't exist")
        if len(rows) <= 1:
            raise AuthError("single_identity_not_deletable", "User must have at least 1 identity after unlinking")
        await identity_repo.delete(conn, target["id"])
        await userupdates.providers_from_identities(conn, uid)
        await audit.log(conn, req, "identity_unlinked", uid, "", {"provider": target["provider"]})
    return json_resp({})


async def link_account(conn: DbConn, req: Req, provider: str, data: providers.UserData) -> uuid.UUID:
    """GoTrue's account linking: existing identity, else verified-email match, else a new user."""
    owner = await identity_repo.owner(conn, data.provider_id, provider)
    if owner is not None:
        uid: uuid.UUID = owner
        await identity_repo.refresh_data(conn, data.provider_id, provider, data.claims)
        user = await user_repo.load(conn, uid)
        if user is None or user["deleted_at"] is not None:
            raise AuthError("user_not_found", "User not found")
        if users.is_banned(user):
            raise AuthError("user_banned", "User is banned")
        return uid
    existing = await user_repo.find_by_email(conn, data.email) if data.email else None
    if existing is not None:
        if not data.email_verified:
            raise AuthError("provider_email_needs_verification",
                            f"Unverified email with {provider}. Verify the email with {provider} first")
        if users.is_banned(existing):
            raise AuthError("user_banned", "User is banned")
        uid = existing["id"]
        await identity_repo.insert(conn, uid, data.provider_id, provider, data.claims)
        await _add_provider(conn, uid, provider)
        await userupdates.confirm_email_if_unconfirmed(conn, uid)
        return uid
    if req.config.disable_signup:
        raise AuthError("signup_disabled", "Signups not allowed for this instance")
    meta = {k: v for k, v in data.claims.items() if k not in ("provider_id",)}
    return await user_repo.create(conn, email=data.email or None, phone=None, password_hash=None, provider=provider,
                              user_metadata=meta, email_confirmed=data.email_verified and bool(data.email),
                              identity_data=data.claims, provider_id=data.provider_id)


async def id_token_grant(req: Req) -> Resp:
    name = req.str_field("provider")
    id_token = req.str_field("id_token")
    if not id_token:
        raise AuthError("validation_failed", "id_token required")
    p = req.config.providers.get(name)
    if p is None or p.kind == "github":
        raise AuthError("validation_failed", f'Custom OIDC provider "{name}" not allowed')
    ep = await providers.endpoints(p)
    nonce = req.str_field("nonce") or None
    claims = await providers.verify_id_token(p, ep, id_token, nonce)
    access_token = req.str_field("access_token")
    at_hash = claims.get("at_hash")
    if access_token and isinstance(at_hash, str):
        digest = hashlib.sha256(access_token.encode()).digest()
        import base64
        expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).decode().rstrip("=")
        if expected != at_hash:
            raise AuthError("validation_failed", "Invalid access token hash")
    data = providers.from_oidc_claims(claims)
    link = req.json().get("link_identity") is True
    if link:
        _require_manual_linking(req)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        if link:
            if not isinstance(req.ctx.auth.claims.get("sub"), str):
                raise AuthError("no_authorization", "Linking an identity requires a signed-in user's Bearer token")
            me, _, _ = await sessions.require_session(conn, req)
            uid = await link_to_user(conn, name, data, me)
        else:
            uid = await link_account(conn, req, name, data)
        return json_resp(await sessions.create_session(conn, req, uid, "oauth"))
