"""Users in GoTrue's shape: the User JSON of a `repo.users` row, metadata rules, bans, the obfuscated answer.

The SQL that reads and writes `auth.users` lives in `auth/repo/users.py` and `auth/repo/userupdates.py`.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from madbase.auth.errors import AuthError
from madbase.core import jsonutil


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return jsonutil.loads(value)
    return value


def user_json(row: asyncpg.Record) -> dict[str, Any]:
    """GoTrue's User JSON (omitempty fields left out when empty)."""
    out: dict[str, Any] = {"id": str(row["id"]), "aud": row["aud"] or "", "role": row["role"] or "",
                           "email": row["email"] or ""}
    optional = (("email_confirmed_at", "email_confirmed_at"), ("invited_at", "invited_at"))
    for key, col in optional:
        if row[col] is not None:
            out[key] = ts(row[col])
    out["phone"] = row["phone"] or ""
    for key, col in (("phone_confirmed_at", "phone_confirmed_at"), ("confirmation_sent_at", "confirmation_sent_at"),
                     ("confirmed_at", "confirmed_at"), ("recovery_sent_at", "recovery_sent_at")):
        if row[col] is not None:
            out[key] = ts(row[col])
    if row["email_change"]:
        out["new_email"] = row["email_change"]
    if row["email_change_sent_at"] is not None:
        out["email_change_sent_at"] = ts(row["email_change_sent_at"])
    if row["phone_change"]:
        out["new_phone"] = row["phone_change"]
    if row["phone_change_sent_at"] is not None:
        out["phone_change_sent_at"] = ts(row["phone_change_sent_at"])
    if row["reauthentication_sent_at"] is not None:
        out["reauthentication_sent_at"] = ts(row["reauthentication_sent_at"])
    if row["last_sign_in_at"] is not None:
        out["last_sign_in_at"] = ts(row["last_sign_in_at"])
    out["app_metadata"] = _json(row["raw_app_meta_data"]) or {}
    out["user_metadata"] = _json(row["raw_user_meta_data"]) or {}
    keys = row.keys()
    if "_identities" in keys:
        out["identities"] = _json(row["_identities"]) or []
        factors = _json(row["_factors"])
        if factors:
            out["factors"] = factors
    else:
        out["identities"] = []
    out["created_at"] = ts(row["created_at"])
    out["updated_at"] = ts(row["updated_at"])
    if row["banned_until"] is not None:
        out["banned_until"] = ts(row["banned_until"])
    if row["deleted_at"] is not None:
        out["deleted_at"] = ts(row["deleted_at"])
    out["is_anonymous"] = bool(row["is_anonymous"])
    return out















_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def uuid_text(value: object) -> str | None:
    """`value` as a canonical UUID text (what PostgreSQL's uuid input accepts), None when it is none.
    Canonical texts pass without building a UUID object (the per-request path of GET /user)."""
    if not isinstance(value, str):
        return None
    if len(value) == 36 and _CANONICAL_UUID.fullmatch(value):
        return value
    parsed = parse_uuid(value)
    return None if parsed is None else str(parsed)


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError):
        return None


def check_metadata(value: dict[str, Any], limit: int, name: str) -> dict[str, Any]:
    """Refuse metadata larger than `limit` bytes of JSON: it is copied into every access token, every cached
    verification and every request's claims, so its size multiplies (GoTrue has no limit; docs/auth.md)."""
    size = len(jsonutil.dumps(value))
    if size > limit:
        raise AuthError("validation_failed", f"{name} is too large ({size} bytes of JSON, the limit is {limit})")
    return value


def merge_metadata(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """GoTrue's UpdateUserMetaData: shallow merge, a null value removes the key."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def is_banned(row: asyncpg.Record) -> bool:
    banned: datetime | None = row["banned_until"]
    return banned is not None and banned > now()


def obfuscated_user(email: str, phone: str, provider: str, data: dict[str, Any]) -> dict[str, Any]:
    """What GoTrue answers for a signup of an existing address, so the response reveals nothing."""
    stamp = ts(now())
    out: dict[str, Any] = {"id": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated",
                           "email": email, "phone": phone, "confirmation_sent_at": stamp,
                           "app_metadata": {"provider": provider, "providers": [provider]},
                           "user_metadata": data, "identities": [], "created_at": stamp, "updated_at": stamp,
                           "is_anonymous": False}
    return out
