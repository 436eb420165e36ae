"""POST /signup: email or phone + password, and anonymous sign-in (no email and no phone)."""

from __future__ import annotations

import re
from typing import Any

from madbase.auth import audit, flows, passwords, ratelimit, sessions, sms, users
from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp, json_resp
from madbase.auth.repo import users as user_repo
from madbase.core.db import internal_transaction

# GoTrue's rule (badoux/checkmail's ValidateFormat): RFC 5322 "atext" characters and dots in the local part,
# LDH labels of at most 63 characters in the domain. ASCII only, as there; a top-level label is not required.
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_EMAIL = re.compile(r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@" + _LABEL + r"(?:\." + _LABEL + r")*", re.ASCII)
_PHONE = re.compile(r"^[1-9]\d{7,14}$")


def validate_email(email: str) -> str:
    if not email:
        raise AuthError("validation_failed", "An email address is required")
    if len(email) > 255:
        raise AuthError("validation_failed", "An email address is too long")
    if not _EMAIL.fullmatch(email):
        raise AuthError("validation_failed", "Unable to validate email address: invalid format")
    return email.lower()


def validate_phone(phone: str) -> str:
    digits = phone.strip().removeprefix("+").replace(" ", "").replace("-", "")
    if not _PHONE.match(digits):
        raise AuthError("validation_failed", "Invalid phone number format (E.164 required)")
    return digits


def check_password(password: str, req: Req) -> None:
    reasons = passwords.check_strength(password, req.config)
    if reasons:
        raise AuthError("weak_password", passwords.weak_message(reasons, req.config),
                        extra={"weak_password": {"reasons": reasons}})


def metadata(req: Req, name: str = "data") -> dict[str, Any]:
    """A metadata object of the body, within the project's size limit."""
    return users.check_metadata(req.obj_field(name) or {}, req.config.metadata_max_bytes, name)


async def signup(req: Req) -> Resp:
    cfg = req.config
    email = req.str_field("email")
    phone = req.str_field("phone")
    if cfg.disable_signup:
        raise AuthError("signup_disabled", "Signups not allowed for this instance")
    ratelimit.enforce_ip(req, "signin", cfg.rate_limits.sign_in_sign_ups)
    if not email and not phone:
        return await _anonymous(req)
    password = req.str_field("password")
    if email and not cfg.external_email_enabled:
        raise AuthError("email_provider_disabled", "Email signups are disabled", status=400)
    if phone and not email and not cfg.external_phone_enabled:
        raise AuthError("phone_provider_disabled", "Phone signups are disabled", status=400)
    if not password:
        raise AuthError("validation_failed", "Signup requires a valid password")
    check_password(password, req)
    data = metadata(req)
    provider = "email" if email else "phone"
    if email:
        email = validate_email(email)
    else:
        phone = validate_phone(phone)
    autoconfirm = cfg.mailer_autoconfirm if provider == "email" else cfg.phone_autoconfirm
    if provider == "phone" and not autoconfirm:
        sms.require(req)
    hashed = await passwords.hash_password(password, cfg.argon2)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        existing = await (user_repo.find_by_email(conn, email) if email else user_repo.find_by_phone(conn, phone))
        if existing is not None:
            confirmed = existing["email_confirmed_at"] if email else existing["phone_confirmed_at"]
            # GoTrue: with either autoconfirm on, say so; otherwise an obfuscated user (no enumeration).
            if cfg.mailer_autoconfirm or cfg.phone_autoconfirm:
                raise AuthError("user_already_exists", "User already registered")
            if confirmed is None and email:
                await flows.send(conn, req, existing, "confirmation", email,
                                 pkce=await flows.create_flow_state(conn, req, "email/signup",
                                                                    user_id=existing["id"]) is not None)
            elif confirmed is None:
                await sms.send(conn, req, existing, "sms", phone)
            return json_resp(users.obfuscated_user(email, phone, provider, data))
        uid = await user_repo.create(conn, email=email or None, phone=phone or None, password_hash=hashed,
                                 provider=provider, user_metadata=data, email_confirmed=autoconfirm and bool(email),
                                 phone_confirmed=autoconfirm and not email)
        await audit.log(conn, req, "user_signedup" if autoconfirm else "user_confirmation_requested", uid,
                        email or phone, {"provider": provider})
        if autoconfirm:
            return json_resp(await sessions.create_session(conn, req, uid, "password"))
        row = await user_repo.load(conn, uid)
        assert row is not None
        if provider == "phone":
            await sms.send(conn, req, row, "sms", phone, check_frequency=False)
        else:
            flow = await flows.create_flow_state(conn, req, "email/signup", user_id=uid)
            await flows.send(conn, req, row, "confirmation", email, pkce=flow is not None, check_frequency=False)
        row = await user_repo.load(conn, uid)
        assert row is not None
        return json_resp(users.user_json(row))


async def _anonymous(req: Req) -> Resp:
    if not req.config.external_anonymous_users_enabled:
        raise AuthError("anonymous_provider_disabled", "Anonymous sign-ins are disabled")
    ratelimit.enforce(req, f"anonymous:{req.ctx.client_ip}", req.config.rate_limits.anonymous_users, 3600)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid = await user_repo.create(conn, email=None, phone=None, password_hash=None, provider="anonymous",
                                 user_metadata=metadata(req), is_anonymous=True)
        return json_resp(await sessions.create_session(conn, req, uid, "anonymous"))
