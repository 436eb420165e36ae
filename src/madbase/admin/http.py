"""Small request helpers of the admin handlers: the control pool, a JSON object body, list paging."""

from __future__ import annotations

from typing import Any

import asyncpg

from madbase.core.kit.message import MessageError
from madbase.core.numbers import ascii_uint
from madbase.core.platform import AdminRequest

MAX_BODY = 64 * 1024  # identity routes take small JSON bodies


def control(request: AdminRequest) -> asyncpg.Pool:
    pool = request.ctx.runtime.control_pool
    assert pool is not None
    return pool


async def body(request: AdminRequest) -> dict[str, Any]:
    """The JSON object body (an empty body is `{}`); 400 for anything else."""
    value = await request.json(MAX_BODY, empty={})
    if not isinstance(value, dict):
        raise MessageError(400, "The body must be a JSON object")
    return value


def limit(request: AdminRequest, default: int, most: int) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    if ascii_uint(raw, 9) is None or int(raw) < 1:
        raise MessageError(400, "limit must be a positive integer")
    return min(int(raw), most)


def text(value: object, name: str, most: int = 1000) -> str:
    if not isinstance(value, str) or not value or len(value) > most:
        raise MessageError(400, f"{name} must be a non-empty string of at most {most} characters")
    return value
