"""The auth service's one error type and its rendering in GoTrue's two wire shapes.

Handlers raise `AuthError(code, message)`; the status comes from the registry below unless given. The
response shape depends on the request's `X-Supabase-Api-Version` header (auth-js always sends 2024-01-01):
new shape `{"code": "<error_code>", "message": ...}` with that header echoed back, legacy shape
`{"code": <status>, "error_code": ..., "msg": ...}` with `x-sb-error-code`. OAuth-style errors
(`{"error", "error_description"}`) are `OAuthError`. The internal cause is logged, never rendered.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.kit import ErrorTable

API_VERSION_2024 = "2024-01-01"

# GoTrue's snake_case error codes (apierrors/errorcode.go) with their usual HTTP status.
STATUS: dict[str, int] = {
    "unexpected_failure": 500,
    "validation_failed": 400,
    "bad_json": 400,
    "email_exists": 422,
    "phone_exists": 422,
    "bad_jwt": 403,
    "not_admin": 403,
    "no_authorization": 401,
    "user_not_found": 404,
    "session_not_found": 403,
    "session_expired": 400,
    "refresh_token_not_found": 400,
    "refresh_token_already_used": 400,
    "flow_state_not_found": 404,
    "flow_state_expired": 400,
    "signup_disabled": 422,
    "user_banned": 400,
    "provider_email_needs_verification": 400,
    "invite_not_found": 404,
    "bad_oauth_state": 400,
    "bad_oauth_callback": 400,
    "oauth_provider_not_supported": 400,
    "unexpected_audience": 403,
    "single_identity_not_deletable": 422,
    "email_conflict_identity_not_deletable": 400,
    "identity_already_exists": 422,
    "email_provider_disabled": 422,
    "phone_provider_disabled": 422,
    "too_many_enrolled_mfa_factors": 422,
    "mfa_factor_name_conflict": 422,
    "mfa_factor_not_found": 404,
    "mfa_ip_address_mismatch": 422,
    "mfa_challenge_expired": 422,
    "mfa_verification_failed": 422,
    "mfa_verification_rejected": 422,
    "insufficient_aal": 403,
    "captcha_failed": 400,
    "saml_provider_disabled": 400,
    "manual_linking_disabled": 404,
    "sms_send_failed": 500,
    "email_not_confirmed": 400,
    "phone_not_confirmed": 400,
    "reauth_nonce_missing": 400,
    "reauthentication_needed": 400,
    "reauthentication_not_valid": 400,
    "otp_expired": 403,
    "otp_disabled": 422,
    "identity_not_found": 404,
    "weak_password": 422,
    "same_password": 422,
    "user_already_exists": 422,
    "over_request_rate_limit": 429,
    "over_email_send_rate_limit": 429,
    "over_sms_send_rate_limit": 429,
    "bad_code_verifier": 400,
    "anonymous_provider_disabled": 422,
    "hook_timeout": 500,
    "email_address_invalid": 400,
    "email_address_not_authorized": 400,
    "invalid_credentials": 400,
    "user_sso_managed": 422,
    "request_timeout": 504,
    "conflict": 409,
    "mfa_totp_enroll_not_enabled": 422,
    "mfa_totp_verify_not_enabled": 422,
    "mfa_phone_enroll_not_enabled": 422,
    "mfa_phone_verify_not_enabled": 422,
    "mfa_verified_factor_exists": 422,
    "not_found": 404,
    "request_too_large": 413,
}


class AuthError(Exception):
    """A GoTrue API error: `code` is the snake_case error_code, `message` is safe to show."""

    def __init__(self, code: str, message: str, *, status: int | None = None,
                 extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS.get(code, 400)
        self.extra = extra or {}
        self.headers = headers or {}


class OAuthError(Exception):
    """OAuth2-style error body `{"error", "error_description"}` (e.g. a missing refresh_token)."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def wants_new_shape(api_version: str | None) -> bool:
    """True when the request's X-Supabase-Api-Version is a date >= 2024-01-01."""
    if not api_version:
        return False
    value = api_version.strip()
    return len(value) == 10 and value >= API_VERSION_2024 and value[4] == "-" and value[7] == "-"


def render(err: AuthError, api_version: str | None) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    headers: list[tuple[bytes, bytes]] = [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    if wants_new_shape(api_version):
        body: dict[str, Any] = {"code": err.code, "message": err.message, **err.extra}
        headers.append((b"x-supabase-api-version", API_VERSION_2024.encode()))
    else:
        body = {"code": err.status, "error_code": err.code, "msg": err.message, **err.extra}
        headers.append((b"x-sb-error-code", err.code.encode()))
    return err.status, jsonutil.dumps(body), headers


def render_oauth(err: OAuthError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return err.status, jsonutil.dumps({"error": err.error, "error_description": err.description}), []


def _database_error(exc: asyncpg.PostgresError) -> AuthError:
    # The cause is logged by the caller; clients never see SQL text.
    return AuthError("unexpected_failure", "Database error", status=500)


# The database's errors in auth's terms, mapped once for the whole service (the kit's ErrorTable: connection
# failures become the gateway's DB_UNAVAILABLE, everything else a 500 without details — auth's statements
# are its own, so any failure of theirs is unexpected).
DB_ERRORS = ErrorTable("auth", {}, _database_error)
