"""Who is calling: the `apikey` (project credential) and `Authorization: Bearer` (identity) checks.

As behind Supabase's gateway: the apikey must be one of the project's keys (core/apikeys.py: the legacy
anon/service_role JWTs, rotated ones during their grace window, `sb_publishable_…` / `sb_secret_…` keys);
the bearer is either one of those keys (role of the key) or a JWT signed for this project whose `role` is
anon, authenticated or service_role. Without a bearer — or with a new-style key as bearer, which Supabase's
gateway ignores — the apikey's role applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from madbase.core.apikeys import NEW_KEY_PREFIX
from madbase.core.db import ALLOWED_ROLES
from madbase.core.errors import GatewayError, Kind
from madbase.core.jwt import TokenError
from madbase.core.projects import Project


@dataclass(frozen=True, slots=True)
class AuthContext:
    role: str
    claims: dict[str, Any]
    claims_json: str
    token: str | None
    key_role: str | None

    @property
    def user_id(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None


ANONYMOUS = AuthContext(role="anon", claims={"role": "anon"}, claims_json='{"role":"anon"}', token=None,
                        key_role=None)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(project: Project, apikey: str | None, authorization: str | None, *, key_required: bool = True
                 ) -> AuthContext:
    key = project.keys.get(apikey) if apikey else None
    if apikey:
        if key is None and key_required:
            raise GatewayError(Kind.INVALID_API_KEY, "Invalid API key",
                               hint="Double check the provided API key, it must belong to this project.")
    elif key_required:
        raise GatewayError(Kind.NO_API_KEY, "No API key found in request",
                           hint="No `apikey` request header or url param was found.")
    key_role = key.role if key is not None else None
    token = bearer_token(authorization)
    if token is not None and token.startswith(NEW_KEY_PREFIX) and key is not None:
        # Supabase's gateway: a new-style key in Authorization (supabase-js sends the client's key there when
        # nobody is signed in) is not an identity; the apikey decides the role
        token = None
    if token is None:
        if key is not None:
            return AuthContext(key.role, key.token.claims, key.token.claims_json, apikey, key_role)
        return ANONYMOUS
    known = project.keys.get(token)
    if known is not None:
        return AuthContext(known.role, known.token.claims, known.token.claims_json, token, key_role)
    if token.startswith(NEW_KEY_PREFIX):
        raise GatewayError(Kind.INVALID_API_KEY, "Invalid API key",
                           hint="Double check the provided API key, it must belong to this project.")
    try:
        verified = project.verifier.verify(token)
    except TokenError as exc:
        raise GatewayError(Kind.JWT_EXPIRED if exc.expired else Kind.JWT_INVALID, str(exc)) from None
    claims = verified.claims
    if "sub" not in claims and "ref" in claims and project.keys.is_retired(token):
        # a legacy API key a rotation retired: still signed by a valid secret, never accepted again
        raise GatewayError(Kind.JWT_INVALID, "invalid JWT: this API key was rotated and its grace period is over")
    claimed = claims.get("role")
    if not isinstance(claimed, str) or claimed not in ALLOWED_ROLES:
        raise GatewayError(Kind.ROLE_NOT_ALLOWED, f"JWT role {claimed!r} is not allowed")
    return AuthContext(claimed, claims, verified.claims_json, token, key_role)
