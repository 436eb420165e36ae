"""The shape of each settings section a project's config holds, checked before anything is stored.

A schema is data: `{key: kind}` where a kind is a `Field` (type, bounds) or a nested schema (an object whose
keys are checked in turn); `ANY_KEY` stands for "any name" (OAuth providers, template kinds). Unknown keys are
refused with the path of the key, so a typo is an error at save time, not a setting silently ignored. Values
follow what the services read (auth/config.py, storage/config.py, realtime/limits.py, rest/app.py); durations
reuse projectconfig's parser (a number of seconds or a Go duration such as "1h").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from madbase.projectconfig.parse import ProjectConfigError, seconds

ANY_KEY = "*"


class SchemaError(Exception):
    """A value does not fit its section; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Field:
    kind: str  # bool | int | str | str_list | seconds | size | json
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    most: int = 4096  # characters of a string


def _int(path: str, value: Any, f: Field) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"{path} must be an integer")
    if (f.low is not None and value < f.low) or (f.high is not None and value > f.high):
        raise SchemaError(f"{path} must be between {f.low} and {f.high}")
    return value


def _size(path: str, value: Any, f: Field) -> int | str:
    """Bytes as a number or "50MB"-style text (what storage's file_size_limit takes)."""
    if isinstance(value, str):
        text = value.strip().upper().replace(" ", "")
        units = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2,
                 "GIB": 1024**3}
        number = text.rstrip("KMGIB")
        unit = text[len(number):]
        if not number.isdigit() or unit not in units:
            raise SchemaError(f"{path} must be a number of bytes or a size such as \"50MB\"")
        _int(path, int(number) * units[unit], f)
        return value
    return _int(path, value, f)


def _check_field(path: str, value: Any, f: Field) -> Any:
    kind = f.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise SchemaError(f"{path} must be true or false")
        return value
    if kind == "int":
        return _int(path, value, f)
    if kind == "seconds":
        try:
            parsed = seconds(path, value)
        except ProjectConfigError as exc:
            raise SchemaError(str(exc).removeprefix("invalid setting ")) from None
        return _int(path, parsed, f)
    if kind == "size":
        return _size(path, value, f)
    if kind == "str":
        if not isinstance(value, str) or len(value) > f.most:
            raise SchemaError(f"{path} must be a string of at most {f.most} characters")
        if f.choices and value not in f.choices:
            raise SchemaError(f"{path} must be one of {', '.join(f.choices)}")
        return value
    if kind == "str_list":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or len(value) > 200 or not all(
                isinstance(v, str) and len(v) <= f.most for v in value):
            raise SchemaError(f"{path} must be a list of at most 200 strings")
        return value
    if kind == "json":
        return value
    raise AssertionError(kind)


Schema = Mapping[str, "Field | Schema"]


def check(schema: Schema, value: Any, path: str = "") -> dict[str, Any]:
    """`value` checked against `schema` (a patch: None values stay None, they remove a key)."""
    if not isinstance(value, dict):
        raise SchemaError(f"{path or 'the body'} must be a JSON object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        spec = schema.get(key, schema.get(ANY_KEY))
        if spec is None:
            known = ", ".join(sorted(k for k in schema if k != ANY_KEY))
            raise SchemaError(f"unknown setting {where} (known here: {known})")
        if item is None:
            out[key] = None
        elif isinstance(spec, Field):
            out[key] = _check_field(where, item, spec)
        else:
            out[key] = check(spec, item, where)
    return out


BOOL = Field("bool")
TEXT = Field("str")
URL = Field("str", most=2048)
LIST = Field("str_list", most=2048)


def count(low: int = 0, high: int = 1_000_000_000) -> Field:
    return Field("int", low, high)


def duration(low: int = 0, high: int = 10 * 365 * 86_400) -> Field:
    return Field("seconds", low, high)


_HOOK: Schema = {"enabled": BOOL, "uri": URL, "secrets": Field("str", most=8192)}

AUTH: Schema = {
    "site_url": URL, "uri_allow_list": LIST, "api_external_url": URL,
    "jwt_exp": duration(30, 7 * 86_400), "jwt_aud": TEXT, "jwt_issuer": URL,
    "jwt_signing_alg": Field("str", choices=("HS256", "RS256", "ES256")),
    "disable_signup": BOOL, "external_email_enabled": BOOL, "external_phone_enabled": BOOL,
    "external_anonymous_users_enabled": BOOL, "mailer_autoconfirm": BOOL, "phone_autoconfirm": BOOL,
    "mailer_otp_exp": duration(60, 7 * 86_400), "mailer_secure_email_change_enabled": BOOL,
    "security_update_password_require_reauthentication": BOOL, "security_manual_linking_enabled": BOOL,
    "refresh_token_rotation_enabled": BOOL, "refresh_token_reuse_interval": duration(0, 86_400),
    "sessions_timebox": duration(), "sessions_inactivity_timeout": duration(), "sessions_single_per_user": BOOL,
    "password_min_length": count(6, 1024), "password_required_characters": LIST,
    "metadata_max_bytes": count(1024, 1_048_576), "sms_otp_exp": duration(10, 86_400),
    "mfa_max_enrolled_factors": count(1, 100), "mfa_challenge_expiry": duration(30, 86_400),
    "mfa_challenge_max_failures": count(1, 100), "mfa_phone_enroll_enabled": BOOL, "mfa_phone_verify_enabled": BOOL,
    "hook_send_sms": _HOOK, "hook_send_email": _HOOK, "hook_custom_access_token": _HOOK,
    "rate_limits": {k: count(0, 1_000_000) for k in (
        "window_seconds", "sign_in_sign_ups", "token_refresh", "verify", "otp", "email_sent",
        "email_per_address_seconds", "sms_sent", "anonymous_users", "mfa_challenge_and_verify",
        "mfa_verify_per_factor", "verify_per_address", "reauthentication_attempts")},
    "smtp": {"host": Field("str", most=255), "port": count(1, 65535), "user": TEXT, "password": TEXT,
             "sender": Field("str", most=320), "sender_name": TEXT, "use_tls": BOOL, "start_tls": BOOL},
    "argon2": {"time_cost": count(1, 10), "memory_cost": count(8192, 1_048_576), "parallelism": count(1, 16)},
    "templates": {ANY_KEY: {"subject": TEXT, "content": Field("str", most=200_000)}},
    "external": {ANY_KEY: {
        "enabled": BOOL, "client_id": TEXT, "secret": TEXT, "kind": Field("str", choices=("github", "google", "oidc")),
        "issuer": URL, "url": URL, "authorization_url": URL, "token_url": URL, "userinfo_url": URL, "jwks_url": URL,
        "scopes": TEXT, "redirect_uri": URL, "skip_nonce_check": BOOL}},
}

API: Schema = {"db_schema": LIST, "db_schemas": LIST, "max_rows": count(1, 10_000_000), "db_pre_request": TEXT,
               "db_aggregates_enabled": BOOL}

JWT: Schema = {"expiry": duration(30, 7 * 86_400), "issuer": URL, "audience": TEXT}

DATABASE: Schema = {"url": Field("str", most=2000)}

STORAGE: Schema = {
    "backend": Field("str", choices=("fs", "s3")), "root": Field("str", most=1024),
    "file_size_limit": Field("size", 0, 5 * 1024**4), "sweep_grace_seconds": count(0, 30 * 86_400),
    "sweep_interval_seconds": count(10, 30 * 86_400), "fsync": BOOL,
    "s3": {"bucket": Field("str", most=255), "endpoint": URL, "region": Field("str", most=64),
           "access_key_id": TEXT, "secret_access_key": TEXT, "session_token": Field("str", most=8192),
           "prefix": Field("str", most=1024), "allow_http": BOOL, "virtual_hosted_style": BOOL},
}

REALTIME: Schema = {k: count(1, 1_000_000) for k in (
    "max_payload_size_in_kb", "max_events_per_second", "max_joins_per_second", "max_channels_per_client")}

FUNCTIONS: Schema = {"cpu_time_ms": count(1, 600_000), "memory_mb": count(1, 16_384),
                     "wall_clock_ms": count(1, 3_600_000), "max_body_bytes": count(1, 1024**3),
                     "max_concurrency": count(1, 10_000), "queue": count(0, 1_000_000)}

SCHEMAS: dict[str, Schema] = {"auth": AUTH, "api": API, "jwt": JWT, "database": DATABASE, "storage": STORAGE,
                              "realtime": REALTIME, "functions": FUNCTIONS}
