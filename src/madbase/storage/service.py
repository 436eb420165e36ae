"""The storage service's gateway descriptor and its mapping of gateway errors to Storage's error shape."""

from __future__ import annotations

from madbase.core import jsonutil
from madbase.core.errors import GatewayError, Kind
from madbase.core.runtime import Runtime
from madbase.core.service import ErrorResponse, Service
from madbase.core.types import ASGIApp
from madbase.storage.adminroutes import ADMIN_ROUTES


def render_error(err: GatewayError) -> ErrorResponse:
    if err.kind in (Kind.JWT_EXPIRED, Kind.JWT_INVALID, Kind.ROLE_NOT_ALLOWED):
        # Supabase Storage answers token problems with HTTP 400 and the real status in the body.
        message = "jwt expired" if err.kind is Kind.JWT_EXPIRED else err.message
        body = {"statusCode": "403", "code": "InvalidJWT", "error": "Unauthorized", "message": message}
        return ErrorResponse(400, jsonutil.dumps(body))
    status = err.status
    body = {"statusCode": str(status), "code": "DatabaseError" if status == 503 else "InternalError",
            "error": "Service Unavailable" if status == 503 else "Internal Server Error", "message": err.message}
    return ErrorResponse(status, jsonutil.dumps(body))


def is_open(method: str, path: str) -> bool:
    # Public and signed object URLs are fetched by browsers without an apikey.
    return path.startswith(("/object/public/", "/object/sign/", "/render/image/public/", "/render/image/sign/"))


def build(runtime: Runtime) -> ASGIApp:
    from madbase.storage.app import StorageApp

    return StorageApp(runtime)


service = Service(name="storage", prefix="/storage/v1", build=build, render_error=render_error,
                  is_open=is_open, body_limit=0, admin_routes=ADMIN_ROUTES)
