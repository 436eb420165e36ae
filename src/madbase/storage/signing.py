"""Signed-URL tokens: HS256 JWTs with the project's secret, as Supabase Storage mints them.

Download tokens carry `{"url": "<bucket>/<name>", "iat", "exp"}` (plus `transformations` when given);
upload tokens carry `{"url", "owner", "upsert", "iat", "exp"}` and are valid for two hours.
"""

from __future__ import annotations

import time
from typing import Any

from madbase.core.jwt import TokenError, sign_hs256
from madbase.core.projects import Project
from madbase.storage import errors

UPLOAD_TOKEN_SECONDS = 7200


def sign_download(project: Project, bucket: str, name: str, expires_in: int) -> str:
    now = int(time.time())
    return sign_hs256({"url": f"{bucket}/{name}", "iat": now, "exp": now + expires_in}, project.record.jwt_secret)


def sign_upload(project: Project, bucket: str, name: str, owner: str | None, upsert: bool) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"url": f"{bucket}/{name}", "upsert": upsert, "iat": now,
                              "exp": now + UPLOAD_TOKEN_SECONDS}
    if owner:
        claims["owner"] = owner
    return sign_hs256(claims, project.record.jwt_secret)


def verify(project: Project, token: str | None, bucket: str, name: str) -> dict[str, Any]:
    if not token:
        raise errors.invalid_jwt("Missing token")
    try:
        claims = project.verifier.verify(token).claims
    except TokenError as exc:
        raise errors.invalid_jwt("jwt expired" if exc.expired else "invalid signature") from None
    if claims.get("url") != f"{bucket}/{name}":
        raise errors.invalid_jwt("Invalid signature")
    return claims


def parse_expires(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise errors.invalid_request("expiresIn must be a positive number")
    try:
        seconds = int(float(value))
    except ValueError:
        raise errors.invalid_request("expiresIn must be a positive number") from None
    if seconds < 1:
        raise errors.invalid_request("expiresIn must be a positive number")
    return seconds
