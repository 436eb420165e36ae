"""Per-project auth settings read from `project.config["auth"]`, with GoTrue's defaults.

Every key is optional; see docs/auth.md for the list. Parsed once per project config object and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from madbase.core.projects import Project


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests per window (GoTrue's RATE_LIMIT_* defaults)."""

    window_seconds: int = 300
    sign_in_sign_ups: int = 30  # per IP per window: /signup, /token?grant_type=password|pkce|id_token
    token_refresh: int = 150  # per IP per window
    verify: int = 30  # per IP per window
    otp: int = 30  # per IP per window: /otp, /magiclink, /recover, /resend
    email_sent: int = 30  # per project per hour (GoTrue counts mails sent, not requests)
    email_per_address_seconds: int = 60  # minimum interval between two mails to one address
    sms_sent: int = 30  # per project per hour
    anonymous_users: int = 30  # anonymous sign-ins per IP per hour
    mfa_challenge_and_verify: int = 15  # per IP per minute, each of /factors/{id}/challenge and /verify (GoTrue)
    mfa_verify_per_factor: int = 30  # verify attempts per factor per hour, from any IP (MadBase)
    verify_per_address: int = 10  # POST /verify code attempts per email/phone per window (MadBase)
    reauthentication_attempts: int = 5  # reauthentication nonces tried per user per window (MadBase)


@dataclass(frozen=True, slots=True)
class Smtp:
    host: str = ""
    port: int = 25
    user: str = ""
    password: str = field(default="", repr=False)  # never in a log line or traceback
    sender: str = "noreply@madbase.local"
    sender_name: str = ""
    use_tls: bool = False  # implicit TLS (port 465)
    start_tls: bool | None = None  # None: upgrade when the server offers STARTTLS


@dataclass(frozen=True, slots=True)
class Argon2Params:
    time_cost: int = 2
    memory_cost: int = 19456  # KiB (OWASP's Argon2id recommendation)
    parallelism: int = 1


@dataclass(frozen=True, slots=True)
class OAuthProvider:
    name: str
    client_id: str
    secret: str = field(repr=False)
    kind: str  # "oidc" | "github" | "google"
    issuer: str = ""
    authorization_url: str = ""
    token_url: str = ""
    userinfo_url: str = ""
    jwks_url: str = ""
    scopes: str = ""
    redirect_uri: str = ""
    skip_nonce_check: bool = False


@dataclass(frozen=True, slots=True)
class AuthConfig:
    site_url: str = "http://localhost:3000"
    uri_allow_list: tuple[str, ...] = ()
    api_external_url: str = ""
    jwt_exp: int = 3600
    jwt_aud: str = "authenticated"
    jwt_issuer: str = ""
    jwt_signing_alg: str = "HS256"
    disable_signup: bool = False
    external_email_enabled: bool = True
    external_phone_enabled: bool = False
    external_anonymous_users_enabled: bool = True
    mailer_autoconfirm: bool = False
    phone_autoconfirm: bool = False
    mailer_otp_exp: int = 86400
    mailer_secure_email_change_enabled: bool = True
    security_update_password_require_reauthentication: bool = False
    security_manual_linking_enabled: bool = False
    refresh_token_rotation_enabled: bool = True
    sessions_timebox: int = 0  # seconds a session may live (0: forever)
    sessions_inactivity_timeout: int = 0  # seconds without a refresh before a session ends (0: never)
    sessions_single_per_user: bool = False  # only the newest session of a user can refresh
    refresh_token_reuse_interval: int = 10
    password_min_length: int = 6
    metadata_max_bytes: int = 16384  # user_metadata / app_metadata, as JSON; both travel in every access token
    password_required_characters: tuple[str, ...] = ()
    sms_otp_exp: int = 60
    hook_send_sms: dict[str, Any] = field(default_factory=dict, repr=False)  # holds `secrets`
    hook_custom_access_token: dict[str, Any] = field(default_factory=dict, repr=False)  # holds `secrets`
    hook_send_email: dict[str, Any] = field(default_factory=dict, repr=False)  # holds `secrets`
    mfa_max_enrolled_factors: int = 10
    mfa_challenge_expiry: int = 300
    mfa_challenge_max_failures: int = 5  # wrong codes after which a challenge is spent (MadBase)
    mfa_phone_enroll_enabled: bool = False
    mfa_phone_verify_enabled: bool = False
    rate_limits: RateLimits = field(default_factory=RateLimits)
    smtp: Smtp = field(default_factory=Smtp)
    argon2: Argon2Params = field(default_factory=Argon2Params)
    templates: dict[str, dict[str, str]] = field(default_factory=dict)
    providers: dict[str, OAuthProvider] = field(default_factory=dict)


def _sub(cls: Any, raw: Any) -> Any:
    if not isinstance(raw, dict):
        return cls()
    names = set(cls.__dataclass_fields__)
    return cls(**{k: v for k, v in raw.items() if k in names})


def _providers(raw: Any) -> dict[str, OAuthProvider]:
    out: dict[str, OAuthProvider] = {}
    if not isinstance(raw, dict):
        return out
    names = set(OAuthProvider.__dataclass_fields__)
    for name, spec in raw.items():
        if not isinstance(spec, dict) or not spec.get("enabled", True):
            continue
        values = {k: v for k, v in spec.items() if k in names}
        values["name"] = name
        values.setdefault("kind", name if name in ("github", "google") else "oidc")
        values.setdefault("client_id", "")
        values.setdefault("secret", "")
        out[name] = OAuthProvider(**values)
    return out


def parse(raw: dict[str, Any]) -> AuthConfig:
    names = set(AuthConfig.__dataclass_fields__) - {"rate_limits", "smtp", "argon2", "providers", "templates",
                                                     "hook_send_sms", "hook_custom_access_token", "hook_send_email"}
    values: dict[str, Any] = {k: v for k, v in raw.items() if k in names}
    # As GoTrue's env: the allow-list is comma separated, required character sets colon separated.
    for key, sep in (("uri_allow_list", ","), ("password_required_characters", ":")):
        if key in values:
            item = values[key]
            values[key] = tuple(x.strip() for x in item.split(sep) if x.strip()) if isinstance(item, str) \
                else tuple(item)
    return AuthConfig(
        **values,
        rate_limits=_sub(RateLimits, raw.get("rate_limits")),
        smtp=_sub(Smtp, raw.get("smtp")),
        argon2=_sub(Argon2Params, raw.get("argon2")),
        templates=dict(raw.get("templates") or {}),
        hook_send_sms=dict(raw.get("hook_send_sms") or {}),
        hook_custom_access_token=dict(raw.get("hook_custom_access_token") or {}),
        hook_send_email=dict(raw.get("hook_send_email") or {}),
        providers=_providers(raw.get("external")),
    )


_cache: dict[int, tuple[dict[str, Any], AuthConfig]] = {}


def for_project(project: Project) -> AuthConfig:
    config = project.config
    hit = _cache.get(id(config))
    if hit is not None and hit[0] is config:
        return hit[1]
    raw = config.get("auth")
    parsed = parse(raw if isinstance(raw, dict) else {})
    if len(_cache) > 1000:
        _cache.clear()
    _cache[id(config)] = (config, parsed)
    return parsed
