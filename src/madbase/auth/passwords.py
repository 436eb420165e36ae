"""Password hashing and strength rules.

New hashes are Argon2id (argon2-cffi) with per-project parameters; bcrypt hashes (`$2a$`/`$2b$`/`$2y$`,
what GoTrue writes, e.g. users migrated from Supabase) still verify and are flagged for rehash. Hashing
runs on a thread pool of its own (one thread per CPU) so the event loop is never blocked. `check_strength` is pure.
"""

from __future__ import annotations

import asyncio
import os
import string
from concurrent.futures import ThreadPoolExecutor

import argon2
import bcrypt

from madbase.auth.config import Argon2Params, AuthConfig

_hashers: dict[Argon2Params, argon2.PasswordHasher] = {}
# Hashes run on a pool of their own, one thread per CPU: a burst of logins neither takes every thread of the
# loop's default executor (DNS lookups, file I/O) nor runs more memory-hard hashes at once than there are
# cores (which only slices them finer and thrashes the caches).
_EXECUTOR = ThreadPoolExecutor(max_workers=max(1, len(os.sched_getaffinity(0))), thread_name_prefix="argon2")


def _hasher(params: Argon2Params) -> argon2.PasswordHasher:
    hasher = _hashers.get(params)
    if hasher is None:
        hasher = argon2.PasswordHasher(time_cost=params.time_cost, memory_cost=params.memory_cost,
                                       parallelism=params.parallelism, type=argon2.Type.ID)
        _hashers[params] = hasher
    return hasher


def hash_sync(password: str, params: Argon2Params) -> str:
    return _hasher(params).hash(password)


async def hash_password(password: str, params: Argon2Params) -> str:
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, hash_sync, password, params)


def verify_sync(encoded: str | None, password: str, params: Argon2Params) -> tuple[bool, bool]:
    """(matches, needs_rehash) for a stored hash."""
    if not encoded:
        return False, False
    if encoded.startswith("$argon2"):
        hasher = _hasher(params)
        try:
            hasher.verify(encoded, password)
        except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.VerificationError,
                argon2.exceptions.InvalidHashError):
            return False, False
        return True, hasher.check_needs_rehash(encoded)
    if encoded.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            ok = bcrypt.checkpw(password.encode()[:72], encoded.encode())
        except ValueError:
            return False, False
        return ok, ok
    return False, False


async def verify_password(encoded: str | None, password: str, params: Argon2Params) -> tuple[bool, bool]:
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, verify_sync, encoded, password, params)


def check_strength(password: str, config: AuthConfig) -> list[str]:
    """GoTrue's weak_password reasons: "length", "characters" (and "pwned" is not checked here)."""
    reasons: list[str] = []
    if len(password) < config.password_min_length:
        reasons.append("length")
    for group in config.password_required_characters:
        chars = {"lower_case": string.ascii_lowercase, "upper_case": string.ascii_uppercase,
                 "digits": string.digits, "symbols": string.punctuation}.get(group, group)
        if not any(c in chars for c in password):
            reasons.append("characters")
            break
    return reasons


def weak_message(reasons: list[str], config: AuthConfig) -> str:
    parts = []
    if "length" in reasons:
        parts.append(f"Password should be at least {config.password_min_length} characters.")
    if "characters" in reasons:
        groups = ", ".join(config.password_required_characters)
        parts.append(f"Password should contain at least one character of each: {groups}.")
    return " ".join(parts) or "Password is too weak"
