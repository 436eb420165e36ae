"""MFA with TOTP (pyotp): POST /factors (enroll), /factors/{id}/challenge, /factors/{id}/verify, DELETE.

A verified challenge raises the session to aal2, adds the `totp` AMR claim and rotates its refresh token.

Codes are six digits, so guessing is bounded three ways (docs/auth.md): challenge and verify requests per IP
per minute (GoTrue's MFA rate limit), verify attempts per factor per hour from any IP, and wrong codes per
challenge: the row counts them and a challenge at the limit answers as expired, so it can never verify.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import asyncpg
import pyotp
import segno

from madbase.auth import ratelimit, sessions, sms, tokens, users
from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp, json_resp
from madbase.auth.repo import factors as factor_repo
from madbase.auth.repo import sessions as session_repo
from madbase.auth.signup import validate_phone
from madbase.core import jsonutil
from madbase.core.db import internal_transaction
from madbase.core.types import DbConn


async def enroll(req: Req) -> Resp:
    factor_type = req.str_field("factor_type") or "totp"
    if factor_type == "phone":
        return await _enroll_phone(req)
    if factor_type == "webauthn":
        # Not implemented: answered as GoTrue does when WebAuthn enrollment is turned off.
        raise AuthError("mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn", status=422)
    if factor_type != "totp":
        raise AuthError("validation_failed", "factor_type needs to be totp or phone")
    friendly = req.str_field("friendly_name")
    issuer = req.str_field("issuer") or (urlsplit(req.config.site_url).hostname or "madbase")
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid, _, user = await sessions.require_session(conn, req)
        await _check_count_and_name(conn, req, uid, friendly)
        secret = pyotp.random_base32()
        account = user["email"] or user["phone"] or str(uid)
        uri = pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)
        factor_id = uuid.uuid4()
        await factor_repo.insert_totp(conn, factor_id, uid, friendly, secret)
    qr = segno.make(uri, error="m").svg_inline(scale=4)
    return json_resp({"id": str(factor_id), "type": "totp", "friendly_name": friendly,
                      "totp": {"qr_code": qr, "secret": secret, "uri": uri}})


async def _check_count_and_name(conn: DbConn, req: Req, uid: uuid.UUID, friendly: str) -> None:
    if await factor_repo.count(conn, uid) >= req.config.mfa_max_enrolled_factors:
        raise AuthError("too_many_enrolled_mfa_factors", "Maximum number of verified factors reached, "
                        "unenroll to continue")
    if friendly and await factor_repo.name_taken(conn, uid, friendly):
        raise AuthError("mfa_factor_name_conflict",
                        f'A factor with the friendly name "{friendly}" for this user already exists')


async def _enroll_phone(req: Req) -> Resp:
    """Phone factors: codes go out through the Send SMS Hook (GoTrue's MFA phone, off by default)."""
    if not req.config.mfa_phone_enroll_enabled:
        raise AuthError("mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone")
    phone = validate_phone(req.str_field("phone"))
    friendly = req.str_field("friendly_name")
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid, _, _ = await sessions.require_session(conn, req)
        await _check_count_and_name(conn, req, uid, friendly)
        if await factor_repo.verified_phone_exists(conn, uid, phone):
            raise AuthError("mfa_verified_factor_exists", "A verified phone factor already exists for this number")
        factor_id = uuid.uuid4()
        await factor_repo.insert_phone(conn, factor_id, uid, friendly, phone)
    return json_resp({"id": str(factor_id), "type": "phone", "friendly_name": friendly, "phone": phone})


async def _factor(conn: DbConn, req: Req, uid: uuid.UUID) -> asyncpg.Record:
    fid = users.parse_uuid(req.params["factor_id"])
    row = None if fid is None else await factor_repo.get(conn, fid, uid)
    if row is None:
        raise AuthError("mfa_factor_not_found", "Factor not found")
    return row


def _limit_ip(req: Req, name: str) -> None:
    ratelimit.enforce(req, f"{name}:{req.ctx.client_ip}", req.config.rate_limits.mfa_challenge_and_verify, 60)


async def challenge(req: Req) -> Resp:
    _limit_ip(req, "mfa_challenge")
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid, _, user = await sessions.require_session(conn, req)
        factor = await _factor(conn, req, uid)
        challenge_id = uuid.uuid4()
        otp_hash: str | None = None
        otp = ""
        if factor["factor_type"] == "phone":
            if not req.config.mfa_phone_verify_enabled:
                raise AuthError("mfa_phone_verify_not_enabled", "MFA verification is disabled for Phone")
            sms.require(req)
            otp = tokens.new_otp()
            otp_hash = hashlib.sha256(otp.encode()).hexdigest()
        created = await factor_repo.insert_challenge(conn, challenge_id, factor["id"],
                                                     sessions.client_inet(req) or "0.0.0.0", otp_hash)
        if otp:
            ratelimit.enforce_sms(req)
            await sms.deliver(req, {**users.user_json(user), "phone": factor["phone"]}, otp)
        await factor_repo.mark_challenged(conn, factor["id"])
    expires = int((created + timedelta(seconds=req.config.mfa_challenge_expiry)).timestamp())
    return json_resp({"id": str(challenge_id), "type": factor["factor_type"], "expires_at": expires})


async def verify(req: Req) -> Resp:
    _limit_ip(req, "mfa_verify")
    challenge_id = users.parse_uuid(req.str_field("challenge_id"))
    code = req.str_field("code")
    failure: AuthError | None = None
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid, sid, _ = await sessions.require_session(conn, req)
        if sid is None:
            raise AuthError("session_not_found", "Session not found")
        factor = await _factor(conn, req, uid)
        # Per factor, whatever the IP: many addresses must not multiply one factor's guesses.
        ratelimit.enforce(req, f"mfa_verify_factor:{factor['id']}", req.config.rate_limits.mfa_verify_per_factor,
                          3600)
        row = None if challenge_id is None else await factor_repo.lock_challenge(conn, challenge_id, factor["id"])
        if row is None:
            raise AuthError("mfa_factor_not_found", "MFA factor with the provided challenge ID not found")
        if row["verified_at"] is not None or row["created_at"] + timedelta(
                seconds=req.config.mfa_challenge_expiry) < users.now() or _failures(row) >= max(
                1, req.config.mfa_challenge_max_failures):
            raise AuthError("mfa_challenge_expired", f"MFA challenge {challenge_id} has expired, verify against "
                            "another challenge or create a new challenge.")
        if factor["factor_type"] == "phone":
            expected = row["otp_code"] or ""
            if not code or not hmac.compare_digest(hashlib.sha256(code.encode()).hexdigest(), expected):
                failure = AuthError("mfa_verification_failed", "Invalid MFA Phone code entered")
        elif not code or not pyotp.TOTP(factor["secret"]).verify(code, valid_window=1):
            failure = AuthError("mfa_verification_failed", "Invalid TOTP code entered")
        if failure is not None:
            # Counted in the (locked) challenge row and committed before the error goes out.
            await _count_failure(conn, row)
        else:
            return await _verified(conn, req, uid, sid, factor, row)
    raise failure


def _failures(row: asyncpg.Record) -> int:
    """Wrong codes so far on a challenge (kept in the TOTP/phone-unused WebAuthn data column: no migration)."""
    data = row["web_authn_session_data"]
    if isinstance(data, str):
        data = jsonutil.loads(data)
    value = data.get("madbase_failures") if isinstance(data, dict) else None
    return value if isinstance(value, int) else 0


async def _count_failure(conn: DbConn, challenge_row: asyncpg.Record) -> None:
    """One more wrong code on this challenge; at the limit it counts as expired."""
    await factor_repo.count_challenge_failure(conn, challenge_row["id"])


async def _verified(conn: DbConn, req: Req, uid: uuid.UUID, sid: uuid.UUID, factor: asyncpg.Record,
                    row: asyncpg.Record) -> Resp:
    await factor_repo.mark_challenge_verified(conn, row["id"])
    await factor_repo.mark_verified(conn, factor["id"])
    await session_repo.step_up(conn, sid, factor["id"])
    await session_repo.add_amr(conn, sid, "totp" if factor["factor_type"] == "totp" else "mfa/phone")
    refresh = await sessions.rotate_active(conn, req, sid, uid)
    if refresh is None:
        raise AuthError("session_not_found", "Session has no live refresh token")
    return json_resp(await sessions.session_json(conn, req, uid, sid, "aal2", refresh, method="totp"))


async def unenroll(req: Req) -> Resp:
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        uid, sid, _ = await sessions.require_session(conn, req)
        factor = await _factor(conn, req, uid)
        aal = await session_repo.aal(conn, sid)
        if factor["status"] == "verified" and aal != "aal2":
            raise AuthError("insufficient_aal", "AAL2 required to unenroll verified factor")
        await factor_repo.delete(conn, factor["id"])
        await session_repo.step_down_factor(conn, factor["id"])
    return json_resp({"id": str(factor["id"])})
