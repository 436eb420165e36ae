"""Admin passwords: Argon2id (argon2-cffi's defaults, RFC 9106's second recommendation), checked in a worker
thread (≈ 50 ms of CPU each, which must not stall the event loop), with the same work whether or not the
admin exists (a dummy hash is verified instead: no user enumeration by timing), and a minimal policy.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # Argon2 takes any length; this bounds the work a request can ask for

_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def policy_problem(password: object) -> str | None:
    """Why `password` is refused, or None."""
    if not isinstance(password, str):
        return "password must be a string"
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"password must be at most {MAX_LENGTH} characters"
    if not password.strip():
        return "password must not be blank"
    return None


def generate() -> str:
    """A password for an admin created without one (shown once)."""
    return secrets.token_urlsafe(18)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(encoded: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(encoded or _dummy_hash(), password) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify(encoded: str | None, password: str) -> bool:
    """Whether `password` matches `encoded` (None: no such admin — the same work is done, False returned)."""
    return await asyncio.to_thread(_verify, encoded, password[:MAX_LENGTH])
