"""TOTP second factor of admins (RFC 6238 through pyotp: 6 digits, 30 s, one step of clock drift either way)
and recovery codes.

The secret is sealed with the server's SecretBox (it must be read back to check codes); a code is accepted
once (the accepted time step is stored: a replayed code fails); recovery codes are 10 random codes stored as
SHA-256 digests, each usable once, shown once when TOTP is enabled or the codes are renewed.
"""

from __future__ import annotations

import base64
import secrets
import time

import asyncpg
import pyotp

from madbase.admin import identity
from madbase.core.secretbox import SecretBox
from madbase.core.types import DbConn

ISSUER = "MadBase"
RECOVERY_CODES = 10
_STEP = 30


def _context(admin_id: str) -> str:
    return f"admin:{admin_id}:totp"


def new_secret() -> str:
    return pyotp.random_base32()


def uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step `code` belongs to (current, previous or next), or None."""
    if not (isinstance(code, str) and len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    at = time.time() if now is None else now
    for drift in (0, -1, 1):
        moment = at + drift * _STEP
        if secrets.compare_digest(totp.at(moment), code):
            return int(moment // _STEP)
    return None


def _normal_recovery(code: str) -> str:
    return code.replace("-", "").replace(" ", "").lower()


def new_recovery_codes() -> list[str]:
    out = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 16 characters, 80 bits
        out.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return out


async def factor(pool: asyncpg.Pool | DbConn, box: SecretBox, admin_id: str) -> tuple[str, bool] | None:
    """(secret, verified) of the admin's factor, or None."""
    row = await pool.fetchrow("select secret_enc, verified_at from madbase_control.totp_factors "
                              "where admin_id = $1::uuid", admin_id)
    if row is None:
        return None
    return box.open(row["secret_enc"], context=_context(admin_id)), row["verified_at"] is not None


async def start_enrolment(pool: asyncpg.Pool, box: SecretBox, admin_id: str) -> str:
    """A new unverified factor (replacing an unverified one); returns its secret."""
    secret = new_secret()
    await pool.execute(
        "insert into madbase_control.totp_factors (admin_id, secret_enc) values ($1::uuid, $2) "
        "on conflict (admin_id) do update set secret_enc = excluded.secret_enc, created_at = now(), last_step = null "
        "where madbase_control.totp_factors.verified_at is null",
        admin_id, box.seal(secret, context=_context(admin_id)))
    return secret


async def accept_code(conn: asyncpg.Pool | DbConn, box: SecretBox, admin_id: str, code: str) -> bool:
    """Check a TOTP code against the admin's factor (verified or being enrolled) and burn its time step."""
    found = await factor(conn, box, admin_id)
    if found is None:
        return False
    step = matching_step(found[0], code)
    if step is None:
        return False
    result = await conn.execute("update madbase_control.totp_factors set last_step = $2 "
                                "where admin_id = $1::uuid and (last_step is null or last_step < $2)", admin_id, step)
    return result.endswith(" 1")


async def accept_recovery_code(conn: asyncpg.Pool | DbConn, admin_id: str, code: str) -> bool:
    if not isinstance(code, str) or len(code) > 64:
        return False
    result = await conn.execute(
        "update madbase_control.recovery_codes set used_at = now() where id = (select id from "
        "madbase_control.recovery_codes where admin_id = $1::uuid and code_digest = $2 and used_at is null limit 1)",
        admin_id, identity.digest(_normal_recovery(code)))
    return result.endswith(" 1")


async def activate(conn: DbConn, admin_id: str) -> list[str]:
    """Mark the factor verified and give it fresh recovery codes (returned once)."""
    await conn.execute("update madbase_control.totp_factors set verified_at = now() where admin_id = $1::uuid",
                       admin_id)
    return await renew_recovery_codes(conn, admin_id)


async def renew_recovery_codes(conn: DbConn, admin_id: str) -> list[str]:
    codes = new_recovery_codes()
    await conn.execute("delete from madbase_control.recovery_codes where admin_id = $1::uuid", admin_id)
    await conn.executemany("insert into madbase_control.recovery_codes (admin_id, code_digest) values ($1::uuid, $2)",
                           [(admin_id, identity.digest(_normal_recovery(c))) for c in codes])
    return codes


async def remove(conn: DbConn, admin_id: str) -> None:
    await conn.execute("delete from madbase_control.totp_factors where admin_id = $1::uuid", admin_id)
    await conn.execute("delete from madbase_control.recovery_codes where admin_id = $1::uuid", admin_id)


async def enabled(pool: asyncpg.Pool | DbConn, admin_id: str) -> bool:
    return bool(await pool.fetchval("select exists(select 1 from madbase_control.totp_factors "
                                    "where admin_id = $1::uuid and verified_at is not null)", admin_id))


async def recovery_left(pool: asyncpg.Pool, admin_id: str) -> int:
    return int(await pool.fetchval("select count(*) from madbase_control.recovery_codes "
                                   "where admin_id = $1::uuid and used_at is null", admin_id))
