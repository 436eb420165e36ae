"""JWT signing and verification for project keys and user tokens, with a verification cache.

Verifying an HS256 token and serialising its claims costs ~100 µs in Python; clients send the same token
on every request, so verified tokens are cached (keyed by the token text) and only the expiry is re-checked
on a hit. The cache is bounded by bytes, not entries (core/bytecache.py): a token may carry megabytes of user
metadata, and every distinct token would otherwise be kept.
Asymmetric keys (RS256/ES256, looked up by `kid`) verify through the same path. After a rotation the previous
HS256 secrets and retiring public keys keep verifying until the end of their grace window (`until`, Unix time):
a token verified with such a key remembers it, so a cached token stops verifying when the window closes.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
import jwt.warnings

from madbase.core import jsonutil
from madbase.core.bytecache import ByteBoundedCache

# Project secrets are the operator's choice (Supabase accepts any length); PyJWT's advice about short HMAC
# keys would otherwise be emitted on every verification.
warnings.filterwarnings("ignore", category=pyjwt.warnings.InsecureKeyLengthWarning)

# Per project verifier. A token's entry holds its text, its claims as JSON and as Python objects (≈ 4x the
# JSON); tokens above 1/64 of the budget (128 KiB) are verified on every use instead of cached.
CACHE_BYTES = 8 * 1024 * 1024
_LEEWAY_SECONDS = 30
_RETIRED = "invalid JWT: unable to parse or verify signature, the signing key was rotated and its grace period is over"


class TokenError(Exception):
    """The token is malformed, badly signed, or expired (`expired` tells which)."""

    def __init__(self, message: str, *, expired: bool = False, bad_signature: bool = False) -> None:
        super().__init__(message)
        self.expired = expired
        self.bad_signature = bad_signature  # well formed, but not signed by this key


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    claims: dict[str, Any]
    claims_json: str
    exp: float | None
    until: float | None = None  # end of the grace window of the (retiring) key that verified it



@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verification key published for a project (used by asymmetric signing)."""

    kid: str
    alg: str
    key: Any
    until: float | None = None  # a retiring key: verifies until then (Unix time)


class JwtVerifier:
    """Verifies tokens signed with one project's HS256 secret or one of its published public keys; `previous`:
    retired HS256 secrets with the end of their grace window, tried (newest first) when the current one fails."""

    def __init__(self, secret: str, public_keys: tuple[PublicKey, ...] = (),
                 previous: tuple[tuple[str, float], ...] = ()) -> None:
        self._secret = secret
        self._public = {k.kid: k for k in public_keys}
        self._previous = previous
        self._cache: ByteBoundedCache[VerifiedToken] = ByteBoundedCache(CACHE_BYTES)

    def verify(self, token: str) -> VerifiedToken:
        hit = self._cache.get(token)
        if hit is not None:
            if hit.exp is not None and hit.exp + _LEEWAY_SECONDS < time.time():
                raise TokenError("JWT expired", expired=True)
            if hit.until is not None and hit.until < time.time():
                raise TokenError(_RETIRED)
            return hit
        verified = self._verify_uncached(token)
        self._cache.put(token, verified, 4 * len(verified.claims_json))
        return verified

    def _verify_uncached(self, token: str) -> VerifiedToken:
        try:
            header = pyjwt.get_unverified_header(token)
        except pyjwt.PyJWTError:
            raise TokenError("invalid JWT: unable to parse or verify signature, token is malformed") from None
        alg = header.get("alg")
        until: float | None = None
        if alg == "HS256":
            claims, until = self._verify_hs256(token)
        else:
            public = self._public.get(str(header.get("kid", "")))
            if public is None or public.alg != alg:
                raise TokenError("invalid JWT: unable to parse or verify signature, unknown signing key")
            if public.until is not None and public.until < time.time():
                raise TokenError(_RETIRED)
            until = public.until
            claims = _decode(token, public.key, str(alg), leeway=_LEEWAY_SECONDS, require=[],
                             invalid="invalid JWT: unable to parse or verify signature, ")
        exp = claims.get("exp")
        return VerifiedToken(
            claims=claims,
            claims_json=jsonutil.dumps_str(claims),
            exp=float(exp) if isinstance(exp, int | float) else None,
            until=until,
        )

    def _verify_hs256(self, token: str) -> tuple[dict[str, Any], float | None]:
        invalid = "invalid JWT: unable to parse or verify signature, "
        try:
            return _decode(token, self._secret, "HS256", leeway=_LEEWAY_SECONDS, require=[], invalid=invalid), None
        except TokenError as exc:
            # only a bad signature may be a token of a previous secret (an expired one stays expired)
            if not exc.bad_signature or not self._previous:
                raise
            failure = exc
        now = time.time()
        for secret, until in self._previous:
            if until < now:
                continue
            try:
                return _decode(token, secret, "HS256", leeway=_LEEWAY_SECONDS, require=[], invalid=invalid), until
            except TokenError as exc:
                if exc.expired:
                    raise
        raise failure


def verify_hs256_exact(token: str, secret: str, previous: tuple[tuple[str, float], ...] = ()) -> dict[str, Any]:
    """Claims of an HS256 token this server minted for itself (signed URLs): no leeway on `exp`, `exp` required,
    never cached (a URL token must not crowd the user tokens out of the verifier's cache). `previous`: retired
    secrets with the end of their grace window (a URL signed before a rotation works until then)."""
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError as exc:
        raise TokenError(f"invalid JWT: {exc}") from None
    if header.get("alg") != "HS256":
        raise TokenError("invalid JWT: unexpected algorithm")
    try:
        return _decode(token, secret, "HS256", leeway=0, require=["exp"], invalid="invalid JWT: ")
    except TokenError as exc:
        if not exc.bad_signature:
            raise
        failure = exc
    now = time.time()
    for old, until in previous:
        if until >= now:
            try:
                return _decode(token, old, "HS256", leeway=0, require=["exp"], invalid="invalid JWT: ")
            except TokenError as exc:
                if not exc.bad_signature:
                    raise
    raise failure


def _decode(token: str, key: Any, alg: str, *, leeway: int, require: list[str], invalid: str) -> dict[str, Any]:
    """PyJWT's decode with our errors: expiry told apart (clients refresh on it), claims must be an object."""
    try:
        claims = pyjwt.decode(token, key, algorithms=[alg], leeway=leeway,
                              options={"verify_aud": False, "require": require})
    except pyjwt.ExpiredSignatureError:
        raise TokenError("JWT expired", expired=True) from None
    except pyjwt.InvalidSignatureError as exc:
        raise TokenError(f"{invalid}{exc}", bad_signature=True) from None
    except pyjwt.PyJWTError as exc:
        raise TokenError(f"{invalid}{exc}") from None
    if not isinstance(claims, dict):
        raise TokenError("invalid JWT: claims are not an object")
    return claims


def sign_hs256(claims: dict[str, Any], secret: str) -> str:
    return pyjwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})


def make_api_key(secret: str, role: str, ref: str, *, issued_at: int | None = None) -> str:
    """A long-lived project API key shaped like Supabase's anon / service_role keys."""
    iat = int(time.time()) if issued_at is None else issued_at
    return sign_hs256({"iss": "supabase", "ref": ref, "role": role, "iat": iat, "exp": iat + 10 * 365 * 86400}, secret)
