"""The auth service's gateway descriptor and its mapping of gateway errors to GoTrue's error shape."""

from __future__ import annotations

from madbase.core import jsonutil
from madbase.core.errors import GatewayError, Kind
from madbase.core.service import ErrorResponse, Service, not_implemented

_CODES = {
    Kind.JWT_EXPIRED: (403, "bad_jwt"),
    Kind.JWT_INVALID: (403, "bad_jwt"),
    Kind.ROLE_NOT_ALLOWED: (403, "bad_jwt"),
    Kind.DB_UNAVAILABLE: (503, "unexpected_failure"),
    Kind.INTERNAL: (500, "unexpected_failure"),
}

# GoTrue routes that Supabase's gateway leaves open (browser redirects, key discovery).
_OPEN = ("/verify", "/callback", "/authorize", "/.well-known/jwks.json", "/health", "/settings")


def render_error(err: GatewayError) -> ErrorResponse:
    status, code = _CODES.get(err.kind, (err.status, "unexpected_failure"))
    body = jsonutil.dumps({"code": status, "error_code": code, "msg": err.message})
    return ErrorResponse(status, body, [(b"x-supabase-api-version", b"2024-01-01")])


def is_open(method: str, path: str) -> bool:
    return path.startswith(_OPEN)


service = Service(name="auth", prefix="/auth/v1", build=not_implemented("Auth"), render_error=render_error,
                  is_open=is_open)
