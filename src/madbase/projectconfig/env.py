"""The default project's settings from environment variables, with GoTrue's names (`GOTRUE_*`), the names of
Supabase's self-hosting `docker/.env` (`SITE_URL`, `ENABLE_EMAIL_AUTOCONFIRM`, `SMTP_HOST`, ...) and the storage
and PostgREST services' names (`FILE_SIZE_LIMIT`, `PGRST_DB_SCHEMAS`, ...). docs/configuration.md has the table.

The result is a patch of the project's `config` JSON (see `merge`): only variables that are set appear in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from madbase.projectconfig import parse

Parser = Callable[[str, object], object]


def _text(name: str, value: object) -> object:
    return str(value)


def _inverted(name: str, value: object) -> object:
    return not parse.boolean(name, value)


def _size(name: str, value: object) -> object:
    """Bytes as storage-api reads FILE_SIZE_LIMIT, or a "50MB"-style size as bucket limits accept."""
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() else text


def _storage_backend(name: str, value: object) -> object:
    text = str(value).strip().lower()
    if text in ("file", "fs"):
        return "fs"
    if text == "s3":
        return "s3"
    raise parse.ProjectConfigError(f"invalid setting {name}: {value!r} (use file or s3)")


# (variable names, first wins; config path; parser)
SIMPLE: tuple[tuple[tuple[str, ...], tuple[str, ...], Parser], ...] = (
    (("GOTRUE_SITE_URL", "SITE_URL"), ("auth", "site_url"), _text),
    (("GOTRUE_URI_ALLOW_LIST", "ADDITIONAL_REDIRECT_URLS"), ("auth", "uri_allow_list"), parse.string_list),
    (("GOTRUE_JWT_EXP", "JWT_EXPIRY"), ("auth", "jwt_exp"), parse.integer),
    (("GOTRUE_JWT_AUD",), ("auth", "jwt_aud"), _text),
    (("GOTRUE_JWT_ISSUER",), ("auth", "jwt_issuer"), _text),
    (("GOTRUE_DISABLE_SIGNUP", "DISABLE_SIGNUP"), ("auth", "disable_signup"), parse.boolean),
    (("GOTRUE_EXTERNAL_EMAIL_ENABLED", "ENABLE_EMAIL_SIGNUP"), ("auth", "external_email_enabled"), parse.boolean),
    (("GOTRUE_EXTERNAL_PHONE_ENABLED", "ENABLE_PHONE_SIGNUP"), ("auth", "external_phone_enabled"), parse.boolean),
    (("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "ENABLE_ANONYMOUS_USERS"),
     ("auth", "external_anonymous_users_enabled"), parse.boolean),
    (("GOTRUE_MAILER_AUTOCONFIRM", "ENABLE_EMAIL_AUTOCONFIRM"), ("auth", "mailer_autoconfirm"), parse.boolean),
    (("GOTRUE_SMS_AUTOCONFIRM", "ENABLE_PHONE_AUTOCONFIRM"), ("auth", "phone_autoconfirm"), parse.boolean),
    (("GOTRUE_MAILER_OTP_EXP",), ("auth", "mailer_otp_exp"), parse.integer),
    (("GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED",), ("auth", "mailer_secure_email_change_enabled"),
     parse.boolean),
    (("GOTRUE_SMS_OTP_EXP",), ("auth", "sms_otp_exp"), parse.integer),
    (("GOTRUE_PASSWORD_MIN_LENGTH",), ("auth", "password_min_length"), parse.integer),
    (("GOTRUE_PASSWORD_REQUIRED_CHARACTERS",), ("auth", "password_required_characters"), _text),
    (("GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED",), ("auth", "refresh_token_rotation_enabled"),
     parse.boolean),
    (("GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL",), ("auth", "refresh_token_reuse_interval"), parse.integer),
    (("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION",),
     ("auth", "security_update_password_require_reauthentication"), parse.boolean),
    (("GOTRUE_SECURITY_MANUAL_LINKING_ENABLED",), ("auth", "security_manual_linking_enabled"), parse.boolean),
    (("GOTRUE_SESSIONS_TIMEBOX",), ("auth", "sessions_timebox"), parse.seconds),
    (("GOTRUE_SESSIONS_INACTIVITY_TIMEOUT",), ("auth", "sessions_inactivity_timeout"), parse.seconds),
    (("GOTRUE_SESSIONS_SINGLE_PER_USER",), ("auth", "sessions_single_per_user"), parse.boolean),
    (("GOTRUE_MFA_MAX_ENROLLED_FACTORS",), ("auth", "mfa_max_enrolled_factors"), parse.integer),
    (("GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION",), ("auth", "mfa_challenge_expiry"), parse.seconds),
    (("GOTRUE_MFA_PHONE_ENROLL_ENABLED",), ("auth", "mfa_phone_enroll_enabled"), parse.boolean),
    (("GOTRUE_MFA_PHONE_VERIFY_ENABLED",), ("auth", "mfa_phone_verify_enabled"), parse.boolean),
    (("GOTRUE_SMTP_HOST", "SMTP_HOST"), ("auth", "smtp", "host"), _text),
    (("GOTRUE_SMTP_PORT", "SMTP_PORT"), ("auth", "smtp", "port"), parse.integer),
    (("GOTRUE_SMTP_USER", "SMTP_USER"), ("auth", "smtp", "user"), _text),
    (("GOTRUE_SMTP_PASS", "SMTP_PASS"), ("auth", "smtp", "password"), _text),
    (("GOTRUE_SMTP_ADMIN_EMAIL", "SMTP_ADMIN_EMAIL"), ("auth", "smtp", "sender"), _text),
    (("GOTRUE_SMTP_SENDER_NAME", "SMTP_SENDER_NAME"), ("auth", "smtp", "sender_name"), _text),
    (("GOTRUE_SMTP_MAX_FREQUENCY",), ("auth", "rate_limits", "email_per_address_seconds"), parse.seconds),
    (("GOTRUE_RATE_LIMIT_EMAIL_SENT",), ("auth", "rate_limits", "email_sent"), parse.integer),
    (("GOTRUE_RATE_LIMIT_SMS_SENT",), ("auth", "rate_limits", "sms_sent"), parse.integer),
    (("GOTRUE_RATE_LIMIT_TOKEN_REFRESH",), ("auth", "rate_limits", "token_refresh"), parse.integer),
    (("GOTRUE_RATE_LIMIT_VERIFY",), ("auth", "rate_limits", "verify"), parse.integer),
    (("GOTRUE_RATE_LIMIT_OTP",), ("auth", "rate_limits", "otp"), parse.integer),
    (("GOTRUE_RATE_LIMIT_ANONYMOUS_USERS",), ("auth", "rate_limits", "anonymous_users"), parse.integer),
    (("GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS",), ("auth", "rate_limits", "sign_in_sign_ups"), parse.integer),
    (("FILE_SIZE_LIMIT", "STORAGE_FILE_SIZE_LIMIT"), ("storage", "file_size_limit"), _size),
    (("STORAGE_BACKEND",), ("storage", "backend"), _storage_backend),
    (("FILE_STORAGE_BACKEND_PATH",), ("storage", "root"), _text),
    # TUS staging shared by every process of a deployment (a shared volume), so uploads resume anywhere
    (("MADBASE_STORAGE_STAGING", "TUS_STAGING_PATH"), ("storage", "staging"), _text),
    (("GLOBAL_S3_BUCKET",), ("storage", "s3", "bucket"), _text),
    (("GLOBAL_S3_ENDPOINT",), ("storage", "s3", "endpoint"), _text),
    (("GLOBAL_S3_FORCE_PATH_STYLE",), ("storage", "s3", "virtual_hosted_style"), _inverted),
    (("PGRST_DB_SCHEMAS",), ("db_schemas",), parse.string_list),
    (("PGRST_DB_MAX_ROWS",), ("db_max_rows",), parse.integer),
    (("PGRST_DB_PRE_REQUEST",), ("db_pre_request",), _text),
    (("PGRST_DB_AGGREGATES_ENABLED",), ("db_aggregates_enabled",), parse.boolean),
)

# Only read when the project stores objects in S3 (the AWS names are common in an environment for other uses).
S3_CREDENTIALS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("REGION", "AWS_DEFAULT_REGION", "AWS_REGION"), "region"),
    (("AWS_ACCESS_KEY_ID",), "access_key_id"),
    (("AWS_SECRET_ACCESS_KEY",), "secret_access_key"),
    (("AWS_SESSION_TOKEN",), "session_token"),
)

_HOOKS = ("CUSTOM_ACCESS_TOKEN", "SEND_SMS", "SEND_EMAIL")
_PROVIDER_VAR = re.compile(r"^GOTRUE_EXTERNAL_([A-Z0-9_]+?)_(ENABLED|CLIENT_ID|SECRET|REDIRECT_URI|URL|"
                           r"SKIP_NONCE_CHECK)$")
_NOT_PROVIDERS = frozenset({"EMAIL", "PHONE", "ANONYMOUS_USERS"})
_PROVIDER_FIELDS: dict[str, tuple[str, Parser]] = {
    "ENABLED": ("enabled", parse.boolean), "CLIENT_ID": ("client_id", _text), "SECRET": ("secret", _text),
    "REDIRECT_URI": ("redirect_uri", _text), "URL": ("issuer", _text),
    "SKIP_NONCE_CHECK": ("skip_nonce_check", parse.boolean),
}


def put(patch: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    node = patch
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = environ.get(name)
        if value is not None:
            return name, value
    return None


def patch_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The config patch the variables in `environ` describe (raises ProjectConfigError on a bad value)."""
    patch: dict[str, Any] = {}
    for names, path, parser in SIMPLE:
        found = _first(environ, names)
        if found is not None:
            put(patch, path, parser(*found))
    if (patch.get("storage") or {}).get("backend") == "s3" or "GLOBAL_S3_BUCKET" in environ:
        for names, key in S3_CREDENTIALS:
            found = _first(environ, names)
            if found is not None:
                put(patch, ("storage", "s3", key), found[1])
    for hook in _HOOKS:
        target = ("auth", "hook_" + hook.lower())
        for suffix, key, parser in (("ENABLED", "enabled", parse.boolean), ("URI", "uri", _text),
                                    ("SECRETS", "secrets", _text)):
            name = f"GOTRUE_HOOK_{hook}_{suffix}"
            if name in environ:
                put(patch, (*target, key), parser(name, environ[name]))
    for name in sorted(environ):
        match = _PROVIDER_VAR.match(name)
        if match is None or match.group(1) in _NOT_PROVIDERS:
            continue
        key, parser = _PROVIDER_FIELDS[match.group(2)]
        put(patch, ("auth", "external", match.group(1).lower(), key), parser(name, environ[name]))
    return patch
