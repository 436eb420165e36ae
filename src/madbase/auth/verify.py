"""GET /verify (email links, 303 redirect) and POST /verify (OTP codes and token hashes, JSON)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg

from madbase.auth import flows, ratelimit, redirects, sessions, tokens, users
from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp, json_resp, redirect
from madbase.auth.repo import flowstate, userupdates
from madbase.auth.repo import users as user_repo
from madbase.auth.signup import validate_phone
from madbase.core.db import internal_transaction
from madbase.core.types import DbConn

_COLUMNS = {
    "signup": ("confirmation_token",),
    "invite": ("confirmation_token",),
    "magiclink": ("recovery_token",),
    "recovery": ("recovery_token",),
    "email": ("confirmation_token", "recovery_token"),
    "email_change": ("email_change_token_new", "email_change_token_current"),
    "sms": ("confirmation_token",),
    "phone_change": ("phone_change_token",),
}
_SENT_AT = {"confirmation_token": "confirmation_sent_at", "recovery_token": "recovery_sent_at",
            "phone_change_token": "phone_change_sent_at",
            "email_change_token_new": "email_change_sent_at", "email_change_token_current": "email_change_sent_at"}
_AMR = {"signup": "otp", "email": "otp", "invite": "invite", "magiclink": "magiclink", "recovery": "recovery",
        "email_change": "email_change", "sms": "otp", "phone_change": "phone_change"}
_FLOW_METHOD = {"signup": "email/signup", "invite": "invite", "magiclink": "magiclink", "recovery": "recovery",
                "email_change": "email_change", "email": "email/signup"}
_EXPIRED = "Token has expired or is invalid"


class Outcome:
    def __init__(self, session: dict[str, Any] | None = None, message: str | None = None,
                 auth_code: str | None = None) -> None:
        self.session = session
        self.message = message
        self.auth_code = auth_code


async def _find(conn: DbConn, verify_type: str, token_hash: str) -> tuple[asyncpg.Record, str] | None:
    for column in _COLUMNS[verify_type]:
        user = await user_repo.find_by_column(conn, column, token_hash)
        if user is not None:
            return user, column
    return None


async def run(conn: DbConn, req: Req, verify_type: str, *, token: str = "", token_hash: str = "",
              email: str = "", phone: str = "", for_redirect: bool = False) -> Outcome:
    if verify_type not in _COLUMNS:
        raise AuthError("validation_failed", "Verify requires a verification type")
    found: tuple[asyncpg.Record, str] | None = None
    if token_hash:
        found = await _find(conn, verify_type, token_hash)
    elif token and phone and verify_type in ("sms", "phone_change"):
        for secret in flows.otp_secrets(req):
            found = await _find(conn, verify_type, tokens.otp_hash(phone, token, secret))
            if found:
                break
    elif token and email:
        for secret in flows.otp_secrets(req):
            for address in (email.lower(), email):
                digest = tokens.otp_hash(address, token, secret)
                found = await _find(conn, verify_type, digest) or await _find(conn, verify_type, "pkce_" + digest)
                if found:
                    break
            if found:
                break
    else:
        raise AuthError("validation_failed", "Verify requires either a token or a token hash")
    if found is None:
        raise AuthError("otp_expired", _EXPIRED)
    user, column = found
    sent = user[_SENT_AT[column]]
    lifetime = req.config.sms_otp_exp if verify_type in ("sms", "phone_change") else req.config.mailer_otp_exp
    if sent is None or sent + timedelta(seconds=lifetime) < users.now():
        raise AuthError("otp_expired", _EXPIRED)
    if users.is_banned(user):
        raise AuthError("user_banned", "User is banned")
    uid: uuid.UUID = user["id"]
    stored: str = user[column]
    await user_repo.lock(conn, uid)
    if verify_type == "sms":
        await userupdates.confirm_phone(conn, uid)
    elif verify_type == "phone_change":
        await userupdates.apply_phone_change(conn, uid)
    elif column == "confirmation_token" or column == "recovery_token":
        await userupdates.confirm_email(conn, uid, column)
    else:
        other = "email_change_token_current" if column == "email_change_token_new" else "email_change_token_new"
        await userupdates.count_email_change_link(conn, uid, column)
        if req.config.mailer_secure_email_change_enabled and user[other]:
            return Outcome(message="Confirmation link accepted. Please proceed to confirm link sent to the other "
                                   "email")
        await userupdates.apply_email_change(conn, uid, user["email_change"])
    if stored.startswith("pkce_") and for_redirect:
        # The link leads back with ?code=; the client exchanges it with its verifier (grant_type=pkce).
        # A code entered in the app (POST /verify) gets the session directly, as GoTrue does.
        code = await flowstate.issue_code_for_user(conn, uid, _FLOW_METHOD[verify_type])
        if code is None:
            raise AuthError("flow_state_not_found", "invalid flow state, no valid flow state found")
        return Outcome(auth_code=code)
    session = await sessions.create_session(conn, req, uid, _AMR[verify_type])
    return Outcome(session=session)


async def _limit_code_attempts(req: Req, email: str, phone: str) -> None:
    """A 6-digit code entered with its address is tried at most `verify_per_address` times per window, from
    any IP; past that the address's outstanding codes are invalidated (a new one must be requested), so no
    code can be guessed by spreading attempts over many addresses of the attacker's."""
    # Hashed: the key is stored in the control database, and the address is the client's text of any length.
    address = hashlib.sha256((phone or email.lower()).encode()).hexdigest()[:32]
    retry = ratelimit.hit(req, f"verify_code:{address}", req.config.rate_limits.verify_per_address,
                          req.config.rate_limits.window_seconds)
    if retry is None:
        return
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        await userupdates.burn_codes(conn, email=email.lower(), phone=phone)
    raise AuthError("over_request_rate_limit", "Too many attempts for this address, request a new code",
                    headers={"retry-after": str(retry)})


async def verify_post(req: Req) -> Resp:
    ratelimit.enforce_ip(req, "verify", req.config.rate_limits.verify)
    verify_type = req.str_field("type")
    phone = req.str_field("phone")
    if phone:
        phone = validate_phone(phone)
    email = req.str_field("email")
    token = req.str_field("token")
    token_hash = req.str_field("token_hash")
    if token and not token_hash and (email or phone):
        await _limit_code_attempts(req, email, phone)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        outcome = await run(conn, req, verify_type, token=token, token_hash=token_hash, email=email, phone=phone)
    if outcome.message is not None:
        return json_resp({"msg": outcome.message, "code": 200})
    return json_resp(outcome.session)


async def verify_get(req: Req) -> Resp:
    target = redirects.choose(req.query.get("redirect_to"), req.config)
    verify_type = req.query.get("type", "")
    try:
        ratelimit.enforce_ip(req, "verify", req.config.rate_limits.verify)
        async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
            outcome = await run(conn, req, verify_type, token_hash=req.query.get("token", ""), for_redirect=True)
    except AuthError as err:
        error = "access_denied" if err.status < 500 else "server_error"
        description = "Email link is invalid or has expired" if err.code == "otp_expired" else err.message
        fragment = urlencode({"error": error, "error_code": err.code, "error_description": description})
        return redirect(f"{target}#{fragment}")
    if outcome.auth_code is not None:
        sep = "&" if "?" in target else "?"
        return redirect(f"{target}{sep}{urlencode({'code': outcome.auth_code})}")
    if outcome.message is not None:
        return redirect(f"{target}#{urlencode({'message': outcome.message})}")
    assert outcome.session is not None
    s = outcome.session
    fragment = urlencode({"access_token": s["access_token"], "expires_at": s["expires_at"],
                          "expires_in": s["expires_in"], "refresh_token": s["refresh_token"],
                          "token_type": "bearer", "type": verify_type, "sb": ""})
    return redirect(f"{target}#{fragment}")
