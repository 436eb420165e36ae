"""Admin endpoints (service_role only): users CRUD with GoTrue pagination, generate_link, invite, factors."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg

from madbase.auth import audit, flows, passwords, redirects, users
from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp, json_resp
from madbase.auth.repo import factors as factor_repo
from madbase.auth.repo import identities as identity_repo
from madbase.auth.repo import sessions as session_repo
from madbase.auth.repo import users as user_repo
from madbase.auth.repo import userupdates
from madbase.auth.signup import check_password, metadata, validate_email, validate_phone
from madbase.core import jsonutil
from madbase.core.db import internal_transaction
from madbase.core.types import DbConn

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """A Go duration string ("24h", "1h30m", "876000h")."""
    pos = 0
    total = 0.0
    if not text:
        raise ValueError("empty duration")
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            raise ValueError(text)
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(text)
    return timedelta(seconds=total)


_UINT64_MAX = 2**64 - 1


def _page_param(value: str | None, default: int) -> int:
    """GoTrue parses `page`/`per_page` as unsigned 64-bit integers (strconv.ParseUint) and answers 400 "Bad
    Pagination Parameters: …" otherwise; 0 is accepted there, here it means the default."""
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit():
        raise AuthError("validation_failed", f'Bad Pagination Parameters: strconv.ParseUint: parsing "{value}": '
                                             "invalid syntax")
    parsed = int(value)
    if parsed > _UINT64_MAX:
        raise AuthError("validation_failed", f'Bad Pagination Parameters: strconv.ParseUint: parsing "{value}": '
                                             "value out of range")
    return parsed or default


async def list_users(req: Req) -> Resp:
    page = _page_param(req.query.get("page"), 1)
    per_page = min(_page_param(req.query.get("per_page"), 50), 1000)
    pattern = req.query.get("filter", "")
    like = f"%{pattern}%" if pattern else None
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        total, rows = await user_repo.page(conn, like, per_page, min((page - 1) * per_page, 2**62))  # bigint-safe
    last = max(1, -(-total // per_page))
    links = []
    base = req.external_url + "/admin/users"
    if page < last:
        links.append(f'<{base}?{urlencode({"page": page + 1, "per_page": per_page})}>; rel="next"')
    links.append(f'<{base}?{urlencode({"page": last, "per_page": per_page})}>; rel="last"')
    headers = [(b"x-total-count", str(total).encode()), (b"link", ", ".join(links).encode())]
    return json_resp({"users": [users.user_json(r) for r in rows], "aud": "authenticated"}, headers=headers)


def _admin_id(req: Req) -> str:
    sub = req.ctx.auth.claims.get("sub")
    return sub if isinstance(sub, str) else ""


def _user_id(req: Req) -> uuid.UUID:
    uid = users.parse_uuid(req.params["user_id"])
    if uid is None:
        raise AuthError("user_not_found", "User not found")
    return uid


async def _load_or_404(conn: DbConn, uid: uuid.UUID) -> asyncpg.Record:
    user = await user_repo.load(conn, uid)
    if user is None:
        raise AuthError("user_not_found", "User not found")
    return user


async def get_user(req: Req) -> Resp:
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        return json_resp(users.user_json(await _load_or_404(conn, _user_id(req))))


def _ban_until(value: Any) -> tuple[bool, Any]:
    if value is None or value == "":
        return False, None
    if value == "none":
        return True, None
    if not isinstance(value, str):
        raise AuthError("validation_failed", "ban_duration must be a string")
    try:
        return True, users.now() + parse_duration(value)
    except ValueError:
        raise AuthError("validation_failed", "invalid format for ban duration: " + value) from None


async def _password_hash(req: Req, body: dict[str, Any]) -> str | None:
    password = body.get("password")
    given = body.get("password_hash")
    if isinstance(given, str) and given:
        if not given.startswith(("$2a$", "$2b$", "$2y$", "$argon2")):
            raise AuthError("validation_failed", "Invalid password hash format")
        return given
    if isinstance(password, str) and password:
        check_password(password, req)
        return await passwords.hash_password(password, req.config.argon2)
    return None


async def create_user(req: Req) -> Resp:
    body = req.json()
    email = req.str_field("email")
    phone = req.str_field("phone")
    if not email and not phone:
        raise AuthError("validation_failed", "Unable to validate email address: invalid format")
    email = validate_email(email) if email else ""
    phone = validate_phone(phone) if phone else ""
    hashed = await _password_hash(req, body)
    banned, until = _ban_until(body.get("ban_duration"))
    user_id = body.get("id")
    uid = users.parse_uuid(user_id) if isinstance(user_id, str) else None
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        if email and await user_repo.find_by_email(conn, email) is not None:
            raise AuthError("email_exists", "A user with this email address has already been registered")
        if phone and await user_repo.find_by_phone(conn, phone) is not None:
            raise AuthError("phone_exists", "A user with this phone number has already been registered")
        try:
            new_id = await user_repo.create(
                conn, email=email or None, phone=phone or None, password_hash=hashed,
                provider="email" if email else "phone", user_metadata=metadata(req, "user_metadata"),
                app_metadata=metadata(req, "app_metadata"), email_confirmed=bool(body.get("email_confirm")),
                phone_confirmed=bool(body.get("phone_confirm")), user_id=uid,
                role=str(body.get("role") or "authenticated"))
        except asyncpg.UniqueViolationError:
            raise AuthError("user_already_exists", "User already registered") from None
        if banned:
            await userupdates.set_banned_until(conn, new_id, until)
        await audit.log(conn, req, "user_signedup", _admin_id(req), "service_role",
                        {"user_id": str(new_id), "user_email": email, "user_phone": phone})
        return json_resp(users.user_json(await _load_or_404(conn, new_id)))


async def update_user(req: Req) -> Resp:
    body = req.json()
    uid = _user_id(req)
    hashed = await _password_hash(req, body)
    banned, until = _ban_until(body.get("ban_duration"))
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        user = await _load_or_404(conn, uid)
        await user_repo.lock(conn, uid)
        changes: dict[str, Any] = {}

        email = req.str_field("email")
        if email and email.lower() != (user["email"] or ""):
            email = validate_email(email)
            other = await user_repo.find_by_email(conn, email)
            if other is not None and other["id"] != uid:
                raise AuthError("email_exists", "A user with this email address has already been registered")
            await userupdates.apply_email_change(conn, uid, email)
        phone = req.str_field("phone")
        if phone:
            changes["phone"] = validate_phone(phone)
        if hashed is not None:
            changes["encrypted_password"] = hashed
        for field, column in (("user_metadata", "raw_user_meta_data"), ("app_metadata", "raw_app_meta_data")):
            patch = req.obj_field(field)
            if patch is not None:
                raw = user[column]
                current = jsonutil.loads(raw) if isinstance(raw, str) else dict(raw or {})
                merged = users.check_metadata(users.merge_metadata(current, patch), req.config.metadata_max_bytes,
                                              field)
                changes[column] = jsonutil.dumps_str(merged)
        role = body.get("role")
        if isinstance(role, str) and role:
            changes["role"] = role
        if banned:
            changes["banned_until"] = until
        await userupdates.admin_update(conn, uid, changes, confirm_email=body.get("email_confirm") is True,
                                       confirm_phone=body.get("phone_confirm") is True)
        if banned and until is not None:
            await session_repo.delete_of_user(conn, uid)
        return json_resp(users.user_json(await _load_or_404(conn, uid)))


async def delete_user(req: Req) -> Resp:
    uid = _user_id(req)
    soft = bool(req.json().get("should_soft_delete"))
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        await _load_or_404(conn, uid)
        if soft:
            # GoTrue's SoftDeleteUser: obfuscate the identifiers, drop sessions and identities, keep the row.
            await userupdates.soft_delete(conn, uid)
            await identity_repo.delete_of_user(conn, uid)
            await session_repo.delete_of_user(conn, uid)
            await factor_repo.delete_of_user(conn, uid)
        else:
            await userupdates.delete(conn, uid)
        await audit.log(conn, req, "user_deleted", _admin_id(req), "service_role", {"user_id": str(uid)})
    return json_resp({})


async def list_factors(req: Req) -> Resp:
    uid = _user_id(req)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        user = await _load_or_404(conn, uid)
        data = users.user_json(user)
    return json_resp(data.get("factors", []))


async def delete_factor(req: Req) -> Resp:
    uid = _user_id(req)
    fid = users.parse_uuid(req.params["factor_id"])
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        row = None if fid is None else await factor_repo.delete_returning(conn, fid, uid)
        if row is None:
            raise AuthError("mfa_factor_not_found", "Factor not found")
    return json_resp({"id": str(row["id"]), "friendly_name": row["friendly_name"] or "",
                      "factor_type": row["factor_type"], "status": row["status"]})


async def invite(req: Req) -> Resp:
    email = validate_email(req.str_field("email"))
    data = metadata(req)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        user = await user_repo.find_by_email(conn, email)
        if user is not None:
            if user["email_confirmed_at"] is not None:
                raise AuthError("email_exists", "A user with this email address has already been registered")
            uid = user["id"]
        else:
            uid = await user_repo.create(conn, email=email, phone=None, password_hash=None, provider="email",
                                     user_metadata=data, invited=True)
        await userupdates.set_invited(conn, uid)
        fresh = await _load_or_404(conn, uid)
        await flows.send(conn, req, fresh, "invite", email, check_frequency=False)
        await audit.log(conn, req, "user_invited", _admin_id(req), "service_role",
                        {"user_id": str(uid), "user_email": email})
        return json_resp(users.user_json(await _load_or_404(conn, uid)))


_LINK_KINDS = {"signup": "confirmation", "invite": "invite", "magiclink": "magic_link", "recovery": "recovery",
               "email_change_current": "email_change_current", "email_change_new": "email_change_new"}


async def generate_link(req: Req) -> Resp:
    link_type = req.str_field("type")
    kind_name = _LINK_KINDS.get(link_type)
    if kind_name is None:
        raise AuthError("validation_failed", "Invalid email action link type requested: " + link_type)
    email = validate_email(req.str_field("email"))
    body = req.json()
    data = metadata(req)
    target = redirects.choose(req.query.get("redirect_to") or body.get("redirect_to"), req.config)
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        user = await user_repo.find_by_email(conn, email)
        if link_type in ("signup", "invite"):
            if user is not None and user["email_confirmed_at"] is not None:
                raise AuthError("email_exists", "A user with this email address has already been registered")
            if user is None:
                hashed = None
                if link_type == "signup":
                    password = req.str_field("password")
                    if not password:
                        raise AuthError("validation_failed", "Signup requires a valid password")
                    check_password(password, req)
                    hashed = await passwords.hash_password(password, req.config.argon2)
                uid = await user_repo.create(conn, email=email, phone=None, password_hash=hashed, provider="email",
                                         user_metadata=data, invited=link_type == "invite")
                user = await _load_or_404(conn, uid)
        elif user is None:
            raise AuthError("user_not_found", "User with this email not found")
        address = email
        new_email = ""
        if link_type.startswith("email_change"):
            new_email = validate_email(req.str_field("new_email"))
            await userupdates.set_email_change(conn, user["id"], new_email)
            if link_type == "email_change_new":
                address = new_email
        kind = flows.KINDS[kind_name]
        otp, token_hash = await flows.prepare_token(conn, req, user["id"], kind, address)
        fresh = await _load_or_404(conn, user["id"])
    out = users.user_json(fresh)
    out.update({"action_link": flows.action_link(req, token_hash, kind.verify_type, target), "email_otp": otp,
                "hashed_token": token_hash, "redirect_to": target, "verification_type": link_type})
    if new_email:
        out["new_email"] = new_email
    return json_resp(out)
