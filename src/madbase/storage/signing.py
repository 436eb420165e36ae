"""Signed-URL tokens: HS256 JWTs with the project's secret, in the shape Supabase Storage mints them, plus the
claims that say exactly what a token allows.

Download tokens: `{"url": "<bucket>/<name>", "purpose": "download", "ref", "iat", "exp"}`.
Upload tokens: `{"url", "purpose": "upload", "upsert": bool, "owner"?, "ref", "iat", "exp"}`, two hours.

Why the extra claims: `url` alone let a download token serve as an upload token (and the request's
`x-upsert` header turn a create-only token into an overwrite). A token is accepted only for its own purpose,
in its own project (`ref`, besides the project's secret), for exactly its bucket and path, and an upload may
overwrite only when the token itself says `upsert: true`. Clients never read these tokens, they only hand them
back, so the extra claims change nothing for storage-js / supabase-py.

Expiry is exact: the 30 s leeway user JWTs get (clock skew between GoTrue and PostgREST hosts) does not apply
to a URL this server minted and checks with its own clock.
"""

from __future__ import annotations

import math
import time
from typing import Any

from madbase.core.jwt import TokenError, sign_hs256, verify_hs256_exact
from madbase.core.numbers import ascii_uint
from madbase.core.projects import Project
from madbase.storage import errors

UPLOAD_TOKEN_SECONDS = 7200
# A cap far beyond any real use (a century) that still keeps `exp` a small integer; larger is refused.
MAX_EXPIRES_SECONDS = 100 * 365 * 86400
DOWNLOAD = "download"
UPLOAD = "upload"


def _claims(project: Project, purpose: str, bucket: str, name: str, expires_in: int) -> dict[str, Any]:
    now = int(time.time())
    return {"url": f"{bucket}/{name}", "purpose": purpose, "ref": project.ref, "iat": now, "exp": now + expires_in}


def sign_download(project: Project, bucket: str, name: str, expires_in: int) -> str:
    return sign_hs256(_claims(project, DOWNLOAD, bucket, name, expires_in), project.record.jwt_secret)


def sign_upload(project: Project, bucket: str, name: str, owner: str | None, upsert: bool) -> str:
    claims = _claims(project, UPLOAD, bucket, name, UPLOAD_TOKEN_SECONDS)
    claims["upsert"] = bool(upsert)
    if owner:
        claims["owner"] = owner
    return sign_hs256(claims, project.record.jwt_secret)


def verify(project: Project, token: str | None, bucket: str, name: str, purpose: str) -> dict[str, Any]:
    """The token's claims if it was minted by this project for `purpose` on exactly `bucket/name`."""
    if not token:
        raise errors.invalid_jwt("Missing token")
    try:
        claims = verify_hs256_exact(token, project.record.jwt_secret, project.stored_keys.previous_secrets)
    except TokenError as exc:
        raise errors.invalid_jwt("jwt expired" if exc.expired else "invalid signature") from None
    if claims.get("purpose") != purpose or claims.get("ref") != project.ref:
        raise errors.invalid_jwt("The token is not valid for this operation")
    if claims.get("url") != f"{bucket}/{name}":
        raise errors.invalid_jwt("The url do not match the signature")
    if purpose == UPLOAD and not isinstance(claims.get("upsert"), bool):
        raise errors.invalid_jwt("The token is not valid for this operation")
    return claims


def parse_expires(value: object) -> int:
    """`expiresIn` as Supabase's schema takes it (an integer ≥ 1, numeric strings coerced), bounded."""
    seconds: int | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str):
        seconds = ascii_uint(value.strip(), 12)
    if seconds is None or seconds < 1:
        raise errors.invalid_request("expiresIn must be a positive integer (seconds)")
    if seconds > MAX_EXPIRES_SECONDS:
        raise errors.invalid_request(f"expiresIn must be at most {MAX_EXPIRES_SECONDS} seconds")
    return seconds
