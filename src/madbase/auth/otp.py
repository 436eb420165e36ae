"""Passwordless and recovery mail endpoints: POST /otp, /magiclink, /recover, /resend.

Responses never reveal whether an address exists (always `{}`), except where GoTrue itself answers
otherwise (`create_user: false` for an unknown address → otp_disabled).
"""

from __future__ import annotations

from madbase.auth import audit, flows, ratelimit, sms
from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp, json_resp
from madbase.auth.repo import users as user_repo
from madbase.auth.signup import metadata, validate_email, validate_phone
from madbase.core.db import internal_transaction


async def _limit(req: Req) -> None:
    ratelimit.enforce_ip(req, "otp", req.config.rate_limits.otp)


def _email(req: Req) -> str:
    email = req.str_field("email")
    if not email:
        raise AuthError("validation_failed", "An email address is required")
    return validate_email(email)


async def otp(req: Req) -> Resp:
    await _limit(req)
    body = req.json()
    if body.get("phone") and not body.get("email"):
        return await _phone_otp(req)
    email = _email(req)
    if not req.config.external_email_enabled:
        raise AuthError("email_provider_disabled", "Email logins are disabled")
    create_user = body.get("create_user")
    create = True if create_user is None else bool(create_user)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        user = await user_repo.find_by_email(conn, email)
        if user is None:
            if not create or req.config.disable_signup:
                raise AuthError("otp_disabled", "Signups not allowed for otp")
            uid = await user_repo.create(conn, email=email, phone=None, password_hash=None, provider="email",
                                     user_metadata=metadata(req))
            flow = await flows.create_flow_state(conn, req, "email/signup", user_id=uid)
            fresh = await user_repo.load(conn, uid)
            assert fresh is not None
            await flows.send(conn, req, fresh, "confirmation", email, pkce=flow is not None, check_frequency=False)
        else:
            if user["email_confirmed_at"] is None:
                flow = await flows.create_flow_state(conn, req, "email/signup", user_id=user["id"])
                await flows.send(conn, req, user, "confirmation", email, pkce=flow is not None)
            else:
                flow = await flows.create_flow_state(conn, req, "magiclink", user_id=user["id"])
                await flows.send(conn, req, user, "magic_link", email, pkce=flow is not None)
    return json_resp({})


async def _phone_otp(req: Req) -> Resp:
    phone = validate_phone(req.str_field("phone"))
    if not req.config.external_phone_enabled:
        raise AuthError("phone_provider_disabled", "Unsupported phone provider")
    sms.require(req)
    create_user = req.json().get("create_user")
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        user = await user_repo.find_by_phone(conn, phone)
        if user is None:
            if create_user is False or req.config.disable_signup:
                raise AuthError("otp_disabled", "Signups not allowed for otp")
            uid = await user_repo.create(conn, email=None, phone=phone, password_hash=None, provider="phone",
                                     user_metadata=metadata(req))
            user = await user_repo.load(conn, uid)
            assert user is not None
            message_id = await sms.send(conn, req, user, "sms", phone, check_frequency=False)
        else:
            message_id = await sms.send(conn, req, user, "sms", phone)
    return json_resp({"message_id": message_id})


async def recover(req: Req) -> Resp:
    await _limit(req)
    email = _email(req)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        user = await user_repo.find_by_email(conn, email)
        if user is not None:
            flow = await flows.create_flow_state(conn, req, "recovery", user_id=user["id"])
            await flows.send(conn, req, user, "recovery", email, pkce=flow is not None)
            await audit.log(conn, req, "user_recovery_requested", user["id"], email)
    return json_resp({})


async def _resend_sms(req: Req, resend_type: str) -> Resp:
    phone = validate_phone(req.str_field("phone"))
    message_id = ""
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        if resend_type == "sms":
            user = await user_repo.find_by_phone(conn, phone)
            if user is not None and user["phone_confirmed_at"] is None:
                message_id = await sms.send(conn, req, user, "sms", phone)
        else:
            changing = await user_repo.id_by_phone_change(conn, phone)
            full = None if changing is None else await user_repo.load(conn, changing)
            if full is not None:
                message_id = await sms.send(conn, req, full, "phone_change", phone)
    return json_resp({"message_id": message_id})


async def resend(req: Req) -> Resp:
    await _limit(req)
    resend_type = req.str_field("type")
    if resend_type in ("sms", "phone_change"):
        return await _resend_sms(req, resend_type)
    if resend_type not in ("signup", "email_change"):
        raise AuthError("validation_failed", "Missing one of these types: signup, email_change, sms, phone_change")
    email = _email(req)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        if resend_type == "signup":
            user = await user_repo.find_by_email(conn, email)
            if user is not None and user["email_confirmed_at"] is None:
                flow = await flows.create_flow_state(conn, req, "email/signup", user_id=user["id"])
                await flows.send(conn, req, user, "confirmation", email, pkce=flow is not None)
        else:
            changing = await user_repo.id_by_email_or_change(conn, email)
            if changing is not None:
                full = await user_repo.load(conn, changing)
                if full is not None and full["email_change"]:
                    await flows.send(conn, req, full, "email_change_new", full["email_change"],
                                     new_email=full["email_change"])
    return json_resp({})
