"""What the server does for the control plane at start: the first admin, and the local token.

- The first admin: when no admin exists but the built-in one, `madbase start` creates a platform admin
  (`MADBASE_ADMIN_EMAIL`, default admin@madbase.local) with a generated password, printed once beside the keys.
- The local token (`<data dir>/admin.token`, 0600, a new one at every start) of the built-in local platform
  admin, which the local CLI reads to call /admin/v1 without a login.

A token of an earlier start of the same data folder on this host is revoked when the new one is made; other
servers sharing the control database (other hosts or data folders) keep theirs.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg

from madbase.admin import accounts, identity, passwords
from madbase.core import jsonutil

TOKEN_FILE = "admin.token"


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte (never readable by others, not even briefly)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _token_name(data_dir: Path) -> str:
    """One local token per host and data folder (servers sharing a control database keep each their own)."""
    return f"local:{socket.gethostname()}:{os.path.abspath(data_dir)}"[:200]


async def write_local_token(pool: asyncpg.Pool, data_dir: Path) -> str:
    """Make the local platform admin's token for this start, store its digest, write it to the data folder."""
    token = identity.new_secret(identity.TOKEN_PREFIX)
    name = _token_name(data_dir)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("update madbase_control.access_tokens set revoked_at = now() "
                           "where kind = 'local' and name = $1 and revoked_at is null", name)
        await conn.execute("insert into madbase_control.access_tokens (admin_id, kind, name, token_digest, hint) "
                           "values ($1::uuid, 'local', $2, $3, $4)", identity.LOCAL_ADMIN_ID, name,
                           identity.digest(token), token[:8])
    _write_private(data_dir / TOKEN_FILE, token + "\n")  # the server made the folder before it started
    return token


async def first_admin(pool: asyncpg.Pool, email: str) -> tuple[str, str] | None:
    """Create the first platform admin when there is none (servers starting together create one between
    them); returns (email, password) to print once, or None."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(hashtext('madbase_first_admin'))")
        if await conn.fetchval("select exists(select 1 from madbase_control.admins where builtin is null)"):
            return None
        password = passwords.generate()
        admin_id = await accounts.create_admin(conn, email, await passwords.hash_password(password))
        await accounts.assign(conn, admin_id, "platform_admin", None)
        await conn.execute(
            "insert into madbase_control.audit_log (actor_method, action, target, details) "
            "values ('local', 'admin.create', $1, $2::jsonb)", f"admins/{admin_id}",
            jsonutil.dumps_str({"email": email, "first_admin": True}))
    return email, password
