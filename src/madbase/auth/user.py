"""The signed-in user's endpoints: GET/PUT /user, POST /logout, GET /reauthenticate."""

from __future__ import annotations

import hmac
from datetime import timedelta

import asyncpg

from madbase.auth import audit, flows, passwords, ratelimit, sessions, sms, tokens, users
from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp, json_resp, no_content
from madbase.auth.repo import sessions as session_repo
from madbase.auth.repo import userjson, userupdates
from madbase.auth.repo import users as user_repo
from madbase.auth.signup import check_password, validate_email, validate_phone
from madbase.core import jsonutil
from madbase.core.db import internal_transaction


async def get_user(req: Req) -> Resp:
    """The bearer's user in one round trip (repo.userjson): PostgreSQL builds the JSON; GoTrue's checks of
    `sessions.require_session` (the user must exist; a session the token names must exist)."""
    uid, sid, named = sessions.bearer_id_texts(req)
    if req.stages is not None:
        req.stages.mark("request")
    found = await userjson.get_user_json(req.pool, uid, sid)
    if req.stages is not None:
        req.stages.mark("db")
    if found is None:
        raise AuthError("user_not_found", "User from sub claim in JWT does not exist", status=403)
    session_ok, body = found
    if named and not session_ok:
        raise AuthError("session_not_found", "Session from session_id claim in JWT does not exist")
    return Resp(200, body)


async def update_user(req: Req) -> Resp:
    cfg = req.config
    body = req.json()
    email = req.str_field("email")
    phone = req.str_field("phone")
    password = body.get("password")
    nonce = req.str_field("nonce")
    data = req.obj_field("data")
    if data is not None:
        users.check_metadata(data, cfg.metadata_max_bytes, "data")
    if password is not None and not isinstance(password, str):
        raise AuthError("validation_failed", "password must be a string")
    new_hash: str | None = None
    if password:
        check_password(password, req)
    if nonce:
        await _limit_nonce_attempts(req)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid, sid, user = await sessions.require_session(conn, req)
        await user_repo.lock(conn, uid)
        changes_secret = bool(password) or bool(email and email.lower() != (user["email"] or "").lower())
        if changes_secret and user["_aal"] != "aal2" and await user_repo.has_verified_factor(conn, uid):
            raise AuthError("insufficient_aal", "AAL2 session is required to update email or password when MFA is "
                            "enabled.", status=401)
        if data is not None:
            merged = users.merge_metadata(jsonutil.loads(user["raw_user_meta_data"] or "{}")
                                          if isinstance(user["raw_user_meta_data"], str)
                                          else dict(user["raw_user_meta_data"] or {}), data)
            users.check_metadata(merged, cfg.metadata_max_bytes, "user_metadata")
            await userupdates.set_user_metadata(conn, uid, merged)
        if password:
            same, _ = await passwords.verify_password(user["encrypted_password"], password, cfg.argon2)
            if same:
                raise AuthError("same_password", "New password should be different from the old password.")
            if cfg.security_update_password_require_reauthentication and user["encrypted_password"]:
                created = await session_repo.created_at(conn, sid)
                if created is None or created + timedelta(hours=24) < users.now():
                    await _check_nonce(req, user, nonce)
            new_hash = await passwords.hash_password(password, cfg.argon2)
            await userupdates.set_password(conn, uid, new_hash)
            # GoTrue signs the user out everywhere else on a password change.
            await sessions.logout(conn, uid, sid, "others")
            await audit.log(conn, req, "user_updated_password", uid, user["email"] or "")
        if email and email.lower() != (user["email"] or "").lower():
            new_email = validate_email(email)
            taken = await user_repo.find_by_email(conn, new_email)
            if taken is not None and taken["id"] != uid:
                raise AuthError("email_exists", "A user with this email address has already been registered")
            if cfg.mailer_autoconfirm or not user["email"] or user["is_anonymous"]:
                if cfg.mailer_autoconfirm:
                    await userupdates.apply_email_change(conn, uid, new_email)
                else:
                    await userupdates.set_email_change(conn, uid, new_email)
                    fresh = await user_repo.load(conn, uid)
                    assert fresh is not None
                    await flows.send(conn, req, fresh, "email_change_new", new_email, new_email=new_email)
            else:
                await userupdates.set_email_change(conn, uid, new_email)
                fresh = await user_repo.load(conn, uid)
                assert fresh is not None
                pkce = await flows.create_flow_state(conn, req, "email_change", user_id=uid) is not None
                await flows.send(conn, req, fresh, "email_change_new", new_email, new_email=new_email, pkce=pkce)
                if cfg.mailer_secure_email_change_enabled:
                    await flows.send(conn, req, fresh, "email_change_current", fresh["email"], new_email=new_email,
                                     pkce=pkce, check_frequency=False)
        if phone:
            new_phone = validate_phone(phone)
            if new_phone != (user["phone"] or ""):
                taken = await user_repo.find_by_phone(conn, new_phone)
                if taken is not None and taken["id"] != uid:
                    raise AuthError("phone_exists", "A user with this phone number has already been registered")
                if cfg.phone_autoconfirm:
                    await userupdates.set_phone_confirmed(conn, uid, new_phone)
                else:
                    await userupdates.set_phone_change(conn, uid, new_phone)
                    fresh = await user_repo.load(conn, uid)
                    assert fresh is not None
                    await sms.send(conn, req, fresh, "phone_change", new_phone)
        fresh = await user_repo.load(conn, uid)
        assert fresh is not None
        await audit.log(conn, req, "user_modified", uid, fresh["email"] or fresh["phone"] or "")
        return json_resp(users.user_json(fresh))


async def _limit_nonce_attempts(req: Req) -> None:
    """A reauthentication nonce (6 digits) is tried at most `reauthentication_attempts` times per user per
    window; past that the outstanding nonce is invalidated and a new one must be requested."""
    uid = users.parse_uuid(str(req.ctx.auth.claims.get("sub") or ""))
    if uid is None:
        return
    retry = ratelimit.hit(req, f"reauth:{uid}", req.config.rate_limits.reauthentication_attempts,
                          req.config.rate_limits.window_seconds)
    if retry is None:
        return
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        await userupdates.clear_reauthentication(conn, uid)
    raise AuthError("over_request_rate_limit", "Too many reauthentication attempts, request a new nonce",
                    headers={"retry-after": str(retry)})


async def _check_nonce(req: Req, user: asyncpg.Record, nonce: str) -> None:
    if not nonce:
        raise AuthError("reauthentication_needed", "Password update requires reauthentication")
    sent = user["reauthentication_sent_at"]
    expected = user["reauthentication_token"] or ""
    address = user["email"] or user["phone"] or ""
    matched = any(hmac.compare_digest(tokens.otp_hash(address, nonce, secret), expected)
                  for secret in flows.otp_secrets(req))
    if (not expected or not matched or sent is None
            or sent + timedelta(seconds=req.config.mailer_otp_exp) < users.now()):
        raise AuthError("reauthentication_not_valid", "Requires reauthentication")


async def logout(req: Req) -> Resp:
    scope = req.query.get("scope") or "global"
    if scope not in ("global", "local", "others"):
        raise AuthError("validation_failed", "Unsupported logout scope " + repr(scope))
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid, sid, user = await sessions.require_session(conn, req)
        await sessions.logout(conn, uid, sid, scope)
        await audit.log(conn, req, "logout", uid, user["email"] or user["phone"] or "", {"scope": scope})
    return no_content()


async def reauthenticate(req: Req) -> Resp:
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        _, _, user = await sessions.require_session(conn, req)
        if not user["email"] and not user["phone"]:
            raise AuthError("validation_failed", "Reauthentication requires the user to have an email or a phone "
                            "number")
        if user["email"]:
            await flows.send(conn, req, user, "reauthentication", user["email"])
        else:
            await sms.send(conn, req, user, "reauthentication", user["phone"])
    return json_resp({})
