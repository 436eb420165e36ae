"""Test helpers for the control plane's identity: admins with roles and tokens made straight in the control
database (for tests of routes other than the identity routes themselves, which tests/admin/ covers)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid

import asyncpg


async def make_admin_token(control_dsn: str, role: str, project_ref: str | None = None, *,
                           email: str | None = None, rights: list[str] | None = None,
                           projects: list[str] | None = None) -> str:
    """A new admin holding `role` (on `project_ref`, or platform-wide) and a personal access token of theirs
    (optionally narrowed to `rights` / `projects`); returns the token."""
    token = "mbp_" + secrets.token_urlsafe(32)
    conn = await asyncpg.connect(control_dsn)
    try:
        async with conn.transaction():
            admin_id = await conn.fetchval(
                "insert into madbase_control.admins (email) values ($1) returning id",
                email or f"admin-{uuid.uuid4().hex[:10]}@example.com")
            await conn.execute("insert into madbase_control.role_assignments (admin_id, role, project_ref) "
                               "values ($1, $2, $3)", admin_id, role, project_ref)
            await conn.execute(
                "insert into madbase_control.access_tokens (admin_id, name, token_digest, hint, rights, projects) "
                "values ($1, 'test', $2, $3, $4, $5)", admin_id, hashlib.sha256(token.encode()).digest(),
                token[:8], rights, projects)
    finally:
        await conn.close()
    return token


def admin_token(control_dsn: str, role: str, project_ref: str | None = None, **kwargs: object) -> str:
    """`make_admin_token` from synchronous code."""
    return asyncio.run(make_admin_token(control_dsn, role, project_ref, **kwargs))  # type: ignore[arg-type]
