"""The auth service's gateway descriptor and its mapping of gateway errors to GoTrue's error shape."""

from __future__ import annotations

from madbase.auth.adminroutes import ADMIN_ROUTES
from madbase.auth.api import build
from madbase.core import jsonutil
from madbase.core.errors import GatewayError, Kind
from madbase.core.service import ErrorResponse, Service

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
    """Gateway refusals in GoTrue's shape. The request's API version is not known here, so the body carries
    both shapes' fields: `code` (string, read by clients that see the echoed X-Supabase-Api-Version header),
    `error_code` and `msg` (read by legacy clients)."""
    status, code = _CODES.get(err.kind, (err.status, "unexpected_failure"))
    message = err.message
    if err.kind is Kind.JWT_EXPIRED:
        message = "invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired"
    body = jsonutil.dumps({"code": code, "error_code": code, "msg": message, "message": message})
    headers = [(b"x-supabase-api-version", b"2024-01-01"), (b"x-sb-error-code", code.encode())]
    return ErrorResponse(status, body, headers)


def is_open(method: str, path: str) -> bool:
    return path.startswith(_OPEN)


service = Service(name="auth", prefix="/auth/v1", build=build, render_error=render_error,
                  is_open=is_open, admin_routes=ADMIN_ROUTES)
