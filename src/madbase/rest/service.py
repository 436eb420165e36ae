"""The REST service's gateway descriptor and its mapping of gateway errors to PostgREST's error shape."""

from __future__ import annotations

from madbase.core import jsonutil
from madbase.core.errors import GatewayError, Kind
from madbase.core.service import ErrorResponse, Service
from madbase.rest.adminroutes import ADMIN_ROUTES
from madbase.rest.app import build

_CODES = {
    Kind.JWT_EXPIRED: (401, "PGRST303"),
    Kind.JWT_INVALID: (401, "PGRST301"),
    Kind.ROLE_NOT_ALLOWED: (401, "PGRST301"),
    Kind.DB_UNAVAILABLE: (503, "PGRST001"),
    Kind.INTERNAL: (500, "PGRSTX00"),
}


def render_error(err: GatewayError) -> ErrorResponse:
    status, code = _CODES.get(err.kind, (err.status, "PGRST000"))
    body = jsonutil.dumps({"code": code, "details": None, "hint": err.hint, "message": err.message})
    headers = []
    if err.kind in (Kind.JWT_EXPIRED, Kind.JWT_INVALID):
        desc = err.message.replace('"', "'")
        headers.append((b"www-authenticate", f'Bearer error="invalid_token", error_description="{desc}"'.encode()))
    return ErrorResponse(status, body, headers)


service = Service(name="rest", prefix="/rest/v1", build=build, render_error=render_error, admin_routes=ADMIN_ROUTES)
