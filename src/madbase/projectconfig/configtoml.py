"""The default project's settings from `supabase/config.toml`, the file `supabase init` writes.

Read: `[api]` (schemas, max_rows), `[auth]` and its `rate_limit`, `email` (+ `smtp`, `template.<kind>`), `sms`,
`sessions`, `mfa`, `hook.<name>` and `external.<provider>` tables, `[storage]` (file_size_limit). A string
value `"env(NAME)"` is replaced by the variable NAME (from the environment, else `.env`, else `supabase/.env`),
as the CLI does; an unset variable reads as an empty string. Only keys present in the file are applied (a
missing key keeps the stored value); everything else in the file (ports, studio, edge runtime...) is the CLI's
business and ignored. docs/configuration.md has the full table.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from madbase.projectconfig import parse
from madbase.projectconfig.env import put

_ENV_REF = re.compile(r"^env\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")
_TEMPLATE_KINDS = ("invite", "confirmation", "recovery", "magic_link", "email_change", "reauthentication")
# The CLI's password_requirements values → GoTrue's PASSWORD_REQUIRED_CHARACTERS (character sets, ':'-joined)
_LOWER, _UPPER, _DIGITS = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
_SYMBOLS = "!@#$%^&*()_+-=[]{};'\"|<>?,./`~"  # without ':' (the set separator) and the backslash
_PASSWORD_REQUIREMENTS = {
    "": "", "no_requirements": "",
    "letters_digits": f"{_LOWER}{_UPPER}:{_DIGITS}",
    "lower_upper_letters_digits": f"{_LOWER}:{_UPPER}:{_DIGITS}",
    "lower_upper_letters_digits_symbols": f"{_LOWER}:{_UPPER}:{_DIGITS}:{_SYMBOLS}",
}

Parser = Callable[[str, object], object]


def _same(name: str, value: object) -> object:
    return value


def _text(name: str, value: object) -> object:
    return str(value)


def _inverted(name: str, value: object) -> object:
    return not parse.boolean(name, value)


# (table path in the file, key, config path, parser)
_FIELDS: tuple[tuple[tuple[str, ...], str, tuple[str, ...], Parser], ...] = (
    (("api",), "schemas", ("db_schemas",), parse.string_list),
    (("api",), "max_rows", ("db_max_rows",), parse.integer),
    (("auth",), "site_url", ("auth", "site_url"), _text),
    (("auth",), "additional_redirect_urls", ("auth", "uri_allow_list"), parse.string_list),
    (("auth",), "jwt_expiry", ("auth", "jwt_exp"), parse.integer),
    (("auth",), "enable_refresh_token_rotation", ("auth", "refresh_token_rotation_enabled"), parse.boolean),
    (("auth",), "refresh_token_reuse_interval", ("auth", "refresh_token_reuse_interval"), parse.integer),
    (("auth",), "enable_signup", ("auth", "disable_signup"), _inverted),
    (("auth",), "enable_anonymous_sign_ins", ("auth", "external_anonymous_users_enabled"), parse.boolean),
    (("auth",), "enable_manual_linking", ("auth", "security_manual_linking_enabled"), parse.boolean),
    (("auth",), "minimum_password_length", ("auth", "password_min_length"), parse.integer),
    (("auth", "rate_limit"), "email_sent", ("auth", "rate_limits", "email_sent"), parse.integer),
    (("auth", "rate_limit"), "sms_sent", ("auth", "rate_limits", "sms_sent"), parse.integer),
    (("auth", "rate_limit"), "anonymous_users", ("auth", "rate_limits", "anonymous_users"), parse.integer),
    (("auth", "rate_limit"), "token_refresh", ("auth", "rate_limits", "token_refresh"), parse.integer),
    (("auth", "rate_limit"), "sign_in_sign_ups", ("auth", "rate_limits", "sign_in_sign_ups"), parse.integer),
    (("auth", "rate_limit"), "token_verifications", ("auth", "rate_limits", "verify"), parse.integer),
    (("auth", "email"), "enable_signup", ("auth", "external_email_enabled"), parse.boolean),
    (("auth", "email"), "double_confirm_changes", ("auth", "mailer_secure_email_change_enabled"), parse.boolean),
    (("auth", "email"), "enable_confirmations", ("auth", "mailer_autoconfirm"), _inverted),
    (("auth", "email"), "secure_password_change",
     ("auth", "security_update_password_require_reauthentication"), parse.boolean),
    (("auth", "email"), "max_frequency", ("auth", "rate_limits", "email_per_address_seconds"), parse.seconds),
    (("auth", "email"), "otp_expiry", ("auth", "mailer_otp_exp"), parse.integer),
    (("auth", "sms"), "enable_signup", ("auth", "external_phone_enabled"), parse.boolean),
    (("auth", "sms"), "enable_confirmations", ("auth", "phone_autoconfirm"), _inverted),
    (("auth", "sessions"), "timebox", ("auth", "sessions_timebox"), parse.seconds),
    (("auth", "sessions"), "inactivity_timeout", ("auth", "sessions_inactivity_timeout"), parse.seconds),
    (("auth", "mfa"), "max_enrolled_factors", ("auth", "mfa_max_enrolled_factors"), parse.integer),
    (("auth", "mfa", "phone"), "enroll_enabled", ("auth", "mfa_phone_enroll_enabled"), parse.boolean),
    (("auth", "mfa", "phone"), "verify_enabled", ("auth", "mfa_phone_verify_enabled"), parse.boolean),
    (("storage",), "file_size_limit", ("storage", "file_size_limit"), _same),
)
_SMTP = (("host", "host", _text), ("port", "port", parse.integer), ("user", "user", _text),
         ("pass", "password", _text), ("admin_email", "sender", _text), ("sender_name", "sender_name", _text))
_PROVIDER = (("enabled", "enabled", parse.boolean), ("client_id", "client_id", _text), ("secret", "secret", _text),
             ("redirect_uri", "redirect_uri", _text), ("url", "issuer", _text),
             ("skip_nonce_check", "skip_nonce_check", parse.boolean))
_HOOK = (("enabled", "enabled", parse.boolean), ("uri", "uri", _text), ("secrets", "secrets", _text))


def _table(doc: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any] | None:
    node: Any = doc
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        match = _ENV_REF.match(value.strip())
        return env.get(match.group(1), "") if match else value
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    return value


def _mapped(patch: dict[str, Any], table: Mapping[str, Any] | None, fields: tuple[tuple[str, str, Parser], ...],
            where: str, target: tuple[str, ...]) -> None:
    for key, name, parser in fields:
        if table is not None and key in table:
            put(patch, (*target, name), parser(f"{where}.{key}", table[key]))


def patch_from_toml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The config patch `path` describes (raises ProjectConfigError on a bad file or value)."""
    try:
        doc = _substitute(tomllib.loads(path.read_text()), env)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise parse.ProjectConfigError(f"cannot read {path}: {exc}") from None
    patch: dict[str, Any] = {}
    for table_path, key, target, parser in _FIELDS:
        table = _table(doc, table_path)
        if table is not None and key in table:
            put(patch, target, parser(".".join((*table_path, key)), table[key]))
    auth = _table(doc, ("auth",))
    requirement = auth.get("password_requirements") if auth is not None else None
    if requirement is not None:
        if requirement not in _PASSWORD_REQUIREMENTS:
            raise parse.ProjectConfigError(f"invalid setting auth.password_requirements: {requirement!r}")
        put(patch, ("auth", "password_required_characters"), _PASSWORD_REQUIREMENTS[requirement])
    smtp = _table(doc, ("auth", "email", "smtp"))
    if smtp is not None:
        if smtp.get("enabled", True) is False:
            put(patch, ("auth", "smtp"), None)  # as the CLI: no SMTP, mails go to the catcher
        else:
            _mapped(patch, smtp, _SMTP, "auth.email.smtp", ("auth", "smtp"))
    for kind in _TEMPLATE_KINDS:
        template = _table(doc, ("auth", "email", "template", kind))
        if template is None:
            continue
        if "subject" in template:
            put(patch, ("auth", "templates", kind, "subject"), str(template["subject"]))
        if template.get("content_path"):
            # relative to the project folder (the one holding supabase/), as the CLI resolves it
            file = path.parent.parent / str(template["content_path"])
            try:
                put(patch, ("auth", "templates", kind, "content"), file.read_text())
            except (OSError, UnicodeDecodeError) as exc:
                raise parse.ProjectConfigError(
                    f"invalid setting auth.email.template.{kind}.content_path: {exc}") from None
    for name, spec in (_table(doc, ("auth", "external")) or {}).items():
        if isinstance(spec, Mapping):
            _mapped(patch, spec, _PROVIDER, f"auth.external.{name}", ("auth", "external", str(name)))
    for name, spec in (_table(doc, ("auth", "hook")) or {}).items():
        if isinstance(spec, Mapping):
            _mapped(patch, spec, _HOOK, f"auth.hook.{name}", ("auth", "hook_" + str(name)))
    return patch
