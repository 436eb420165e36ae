"""Who is calling: the `apikey` (project credential) and `Authorization: Bearer` (identity) checks.

As behind Supabase's gateway: the apikey must be one of the project's keys; the bearer is either one of
those keys (role of the key) or a JWT signed for this project whose `role` is anon, authenticated or
service_role. Without a bearer the apikey's role applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    key_role: str | None = None
    if apikey:
        key_role = project.key_roles.get(apikey)
        if key_role is None and key_required:
            raise GatewayError(Kind.INVALID_API_KEY, "Invalid API key",
                               hint="Double check the provided API key, it must belong to this project.")
    elif key_required:
        raise GatewayError(Kind.NO_API_KEY, "No API key found in request",
                           hint="No `apikey` request header or url param was found.")
    token = bearer_token(authorization)
    if token is None:
        if apikey and key_role is not None:
            verified = project.key_tokens[apikey]
            return AuthContext(key_role, verified.claims, verified.claims_json, apikey, key_role)
        return ANONYMOUS
    known = project.key_tokens.get(token)
    if known is not None:
        role = project.key_roles[token]
        return AuthContext(role, known.claims, known.claims_json, token, key_role)
    try:
        verified = project.verifier.verify(token)
    except TokenError as exc:
        raise GatewayError(Kind.JWT_EXPIRED if exc.expired else Kind.JWT_INVALID, str(exc)) from None
    claimed = verified.claims.get("role")
    if not isinstance(claimed, str) or claimed not in ALLOWED_ROLES:
        raise GatewayError(Kind.ROLE_NOT_ALLOWED, f"JWT role {claimed!r} is not allowed")
    return AuthContext(claimed, verified.claims, verified.claims_json, token, key_role)
