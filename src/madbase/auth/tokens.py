"""Pure token helpers: access-token claims, opaque refresh tokens, email OTP/token hashes, PKCE.

Refresh tokens are opaque strings derived with HMAC(project secret): a session's first token from the session
id, every later one from its parent's digest. The database stores only their SHA-256 (a dump reveals no
usable token), while the server can still hand back a session's current token when a client retries with
its parent (GoTrue's reuse rule), and knows a child's value before inserting it (one statement per rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

from madbase.core.jwt import sign_hs256


def access_token_claims(*, user: dict[str, Any], session_id: str, aal: str, amr: list[dict[str, Any]],
                        issuer: str, lifetime: int, now: int | None = None) -> dict[str, Any]:
    """GoTrue's AccessTokenClaims, in its order."""
    iat = int(time.time()) if now is None else now
    return {
        "aud": user.get("aud") or "authenticated",
        "exp": iat + lifetime,
        "iat": iat,
        "iss": issuer,
        "sub": str(user["id"]),
        "email": user.get("email") or "",
        "phone": user.get("phone") or "",
        "app_metadata": user.get("app_metadata") or {},
        "user_metadata": user.get("user_metadata") or {},
        "role": user.get("role") or "authenticated",
        "aal": aal,
        "amr": amr,
        "session_id": session_id,
        "is_anonymous": bool(user.get("is_anonymous")),
    }


def sign_access_token(claims: dict[str, Any], secret: str) -> str:
    return sign_hs256(claims, secret)


def _mac(secret: str, text: str) -> str:
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode().rstrip("=")


def root_refresh_token(secret: str, session_id: str) -> str:
    """A session's first refresh token."""
    return _mac(secret, f"refresh:root:{session_id}")


def child_refresh_token(secret: str, parent_digest: str) -> str:
    """The token that replaces the one whose digest is `parent_digest` (one child per token)."""
    return _mac(secret, f"refresh:child:{parent_digest}")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_otp(length: int = 6) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


def otp_hash(identifier: str, otp: str, secret: str) -> str:
    """The token hash an email link carries: HMAC-SHA224 (keyed with the project secret) of the address and the
    OTP, in GoTrue's shape (56 hex digits). GoTrue hashes without a key, which makes a link's token only as hard
    to guess as the 6-digit code for anyone who knows the address; keyed, the hash cannot be computed outside."""
    return hmac.new(secret.encode(), f"otp:{identifier}:{otp}".encode(), hashlib.sha224).hexdigest()


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def pkce_matches(method: str, challenge: str, verifier: str) -> bool:
    if method == "plain":
        return hmac.compare_digest(challenge, verifier)
    digest = hashlib.sha256(verifier.encode()).digest()
    computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return hmac.compare_digest(computed, challenge.rstrip("="))
