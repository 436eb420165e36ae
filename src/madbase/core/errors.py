"""The gateway's one error type.

Errors raised before a request reaches a service (project resolution, API key and JWT checks, rate limits,
body limits, database unavailable) are `GatewayError`s with a `Kind`. Each service maps a kind to its own
wire shape once (see `Service.render_error`), so PostgREST clients see PGRST codes and GoTrue clients see
`error_code`s. The internal cause is logged, never rendered.
"""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    NO_API_KEY = "no_api_key"
    INVALID_API_KEY = "invalid_api_key"
    JWT_INVALID = "jwt_invalid"
    JWT_EXPIRED = "jwt_expired"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    PROJECT_NOT_FOUND = "project_not_found"
    PROJECT_DISABLED = "project_disabled"
    RATE_LIMITED = "rate_limited"
    BODY_TOO_LARGE = "body_too_large"
    NOT_FOUND = "not_found"
    DB_UNAVAILABLE = "db_unavailable"
    INTERNAL = "internal"


_STATUS: dict[Kind, int] = {
    Kind.NO_API_KEY: 401,
    Kind.INVALID_API_KEY: 401,
    Kind.JWT_INVALID: 401,
    Kind.JWT_EXPIRED: 401,
    Kind.ROLE_NOT_ALLOWED: 401,
    Kind.PROJECT_NOT_FOUND: 404,
    Kind.PROJECT_DISABLED: 403,
    Kind.RATE_LIMITED: 429,
    Kind.BODY_TOO_LARGE: 413,
    Kind.NOT_FOUND: 404,
    Kind.DB_UNAVAILABLE: 503,
    Kind.INTERNAL: 500,
}


class GatewayError(Exception):
    """A refusal decided by the shared core; `message` is safe to show to the client."""

    def __init__(
        self,
        kind: Kind,
        message: str,
        *,
        hint: str | None = None,
        retry_after: int | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint
        self.retry_after = retry_after
        self.cause = cause

    @property
    def status(self) -> int:
        return _STATUS[self.kind]

    @property
    def code(self) -> str:
        return self.kind.value
