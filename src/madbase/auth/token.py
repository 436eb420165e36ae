"""POST /token: grant_type=password, refresh_token and pkce (id_token lives in oauth.py)."""

from __future__ import annotations

from typing import Any

from madbase.auth import passwords, ratelimit, sessions, tokens, users
from madbase.auth.errors import AuthError, OAuthError
from madbase.auth.http import Req, Resp, json_resp
from madbase.auth.repo import flowstate, userupdates
from madbase.auth.repo import users as user_repo
from madbase.auth.signup import validate_phone
from madbase.core.db import internal_transaction


async def token(req: Req) -> Resp:
    grant = req.query.get("grant_type", "")
    handler = _GRANTS.get(grant)
    if handler is None:
        raise AuthError("validation_failed", "unsupported_grant_type")
    limits = req.config.rate_limits
    if grant == "refresh_token":
        ratelimit.enforce_ip(req, "refresh", limits.token_refresh)
    else:
        ratelimit.enforce_ip(req, "signin", limits.sign_in_sign_ups)
    return await handler(req)


async def _password(req: Req) -> Resp:
    email = req.str_field("email")
    phone = req.str_field("phone")
    password = req.str_field("password")
    cfg = req.config
    if email and not cfg.external_email_enabled:
        raise AuthError("email_provider_disabled", "Email logins are disabled", status=400)
    if not email and not phone:
        raise AuthError("validation_failed", "missing email or phone")
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        if email:
            user = await user_repo.find_by_email(conn, email)
        else:
            try:
                phone = validate_phone(phone)
            except AuthError:
                raise AuthError("invalid_credentials", "Invalid login credentials") from None
            user = await user_repo.find_by_phone(conn, phone)
    if user is None:
        # Spend the same time as a real check, so response times do not reveal which addresses exist.
        await passwords.verify_password(_DUMMY_HASH.get(cfg.argon2), password, cfg.argon2)
        raise AuthError("invalid_credentials", "Invalid login credentials")
    if users.is_banned(user):
        raise AuthError("user_banned", "User is banned")
    ok, rehash = await passwords.verify_password(user["encrypted_password"], password, cfg.argon2)
    if not ok:
        raise AuthError("invalid_credentials", "Invalid login credentials")
    if email and user["email_confirmed_at"] is None:
        raise AuthError("email_not_confirmed", "Email not confirmed")
    if phone and not email and user["phone_confirmed_at"] is None:
        raise AuthError("phone_not_confirmed", "Phone not confirmed")
    new_hash = await passwords.hash_password(password, cfg.argon2) if rehash else None
    extra: dict[str, Any] | None = None
    reasons = passwords.check_strength(password, cfg)
    if reasons:
        extra = {"weak_password": {"reasons": reasons, "message": passwords.weak_message(reasons, cfg)}}
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        if new_hash is not None:
            await userupdates.rehash_password(conn, user["id"], new_hash, user["encrypted_password"])
        return json_resp(await sessions.create_session(conn, req, user["id"], "password", extra=extra))


class _Dummy:
    def __init__(self) -> None:
        self._by: dict[object, str] = {}

    def get(self, params: object) -> str:
        value = self._by.get(params)
        if value is None:
            from madbase.auth.config import Argon2Params
            assert isinstance(params, Argon2Params)
            value = passwords.hash_sync(tokens.random_token(), params)
            self._by[params] = value
        return value


_DUMMY_HASH = _Dummy()


async def _refresh(req: Req) -> Resp:
    body = req.json()
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token:
        raise OAuthError("invalid_request", "refresh_token required")
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        result = await sessions.refresh(conn, req, token)
    if isinstance(result, AuthError):
        raise result
    return json_resp(result)


async def _pkce(req: Req) -> Resp:
    body = req.json()
    auth_code = body.get("auth_code")
    verifier = body.get("code_verifier")
    if not isinstance(auth_code, str) or not auth_code or not isinstance(verifier, str) or not verifier:
        raise AuthError("validation_failed", "invalid request: both auth code and code verifier should be non-empty")
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        flow = await flowstate.lock_by_code(conn, auth_code)
        if flow is None:
            raise AuthError("flow_state_not_found", "invalid flow state, no valid flow state found")
        issued = flow["auth_code_issued_at"] or flow["created_at"]
        if issued is None or (users.now() - issued).total_seconds() > 300:
            raise AuthError("flow_state_expired", "invalid flow state, flow state has expired")
        if not tokens.pkce_matches(flow["code_challenge_method"], flow["code_challenge"], verifier):
            raise AuthError("bad_code_verifier", "code challenge does not match previously saved code verifier",
                            status=403)
        user_id = flow["user_id"]
        if user_id is None:
            raise AuthError("flow_state_not_found", "invalid flow state, no valid flow state found")
        user = await user_repo.load(conn, user_id)
        if user is None:
            raise AuthError("user_not_found", "User not found")
        if users.is_banned(user):
            raise AuthError("user_banned", "User is banned")
        await flowstate.delete(conn, flow["id"])
        extra: dict[str, Any] = {}
        if flow["provider_access_token"]:
            extra["provider_token"] = flow["provider_access_token"]
        if flow["provider_refresh_token"]:
            extra["provider_refresh_token"] = flow["provider_refresh_token"]
        method = _amr_for(flow["authentication_method"])
        return json_resp(await sessions.create_session(conn, req, user_id, method, extra=extra or None))


def _amr_for(authentication_method: str) -> str:
    return {"email/signup": "otp", "magiclink": "magiclink", "recovery": "recovery", "invite": "invite",
            "email_change": "email_change", "oauth": "oauth", "otp": "otp"}.get(authentication_method,
                                                                               authentication_method)


async def _id_token(req: Req) -> Resp:
    from madbase.auth import oauth  # deferred: oauth pulls in HTTP client code
    return await oauth.id_token_grant(req)


_GRANTS = {"password": _password, "refresh_token": _refresh, "pkce": _pkce, "id_token": _id_token}
