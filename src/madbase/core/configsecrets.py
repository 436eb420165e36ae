"""Secrets inside a project's `config` JSON (SMTP password, OAuth client secrets, hook secrets, S3 keys) are
stored sealed: the value at each secret path is replaced by `{"$sealed": "<base64>"}`, an AES-256-GCM box of
`SecretBox` bound to the project ref and the path (`<ref>:config:auth.smtp.password`), so a ciphertext moved
to another project or another field does not open.

The control store seals on every write and opens on every read, so services see plain values in memory and
the row never holds them. A plain value found at a secret path (written with SQL, or by an older MadBase) is
opened as is and reported, so the store can seal it (`ControlStore.seal_plain_secrets`).
The same path list lives in SQL (`madbase_control.config_has_plain_secrets`, control migration 0002): a unit
test keeps the two in step.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from madbase.core.secretbox import SecretBox, SecretBoxError

log = structlog.get_logger("madbase.control")

# Dotted paths below the config's root; `*` is any key (a provider name).
SECRET_PATHS: tuple[tuple[str, ...], ...] = (
    ("auth", "smtp", "password"),
    ("auth", "external", "*", "secret"),
    ("auth", "hook_send_sms", "secrets"),
    ("auth", "hook_send_email", "secrets"),
    ("auth", "hook_custom_access_token", "secrets"),
    ("storage", "s3", "secret_access_key"),
    ("storage", "s3", "session_token"),
)

SEALED_KEY = "$sealed"
REDACTED = "[sealed]"


def _is_envelope(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED_KEY} and isinstance(value[SEALED_KEY], str)


def _slots(config: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(parent object, key, dotted concrete path) of every secret present in `config`."""

    def walk(node: dict[str, Any], path: tuple[str, ...], done: tuple[str, ...]) -> Iterator[
            tuple[dict[str, Any], str, str]]:
        head, rest = path[0], path[1:]
        keys = [k for k in node if isinstance(k, str)] if head == "*" else [head] if head in node else []
        for key in keys:
            if not rest:
                yield node, key, ".".join((*done, key))
            elif isinstance(node[key], dict):
                yield from walk(node[key], rest, (*done, key))

    for pattern in SECRET_PATHS:
        yield from walk(config, pattern, ())


def _context(ref: str, path: str) -> str:
    return f"{ref}:config:{path}"


def _rewrite(config: dict[str, Any], change: Callable[[str, Any], Any]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    for parent, key, path in list(_slots(out)):
        parent[key] = change(path, parent[key])
    return out


def seal(box: SecretBox, ref: str, config: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` with every plain secret sealed (empty values and envelopes stay as they are)."""

    def one(path: str, value: Any) -> Any:
        if value is None or value == "" or _is_envelope(value):
            return value
        text = value if isinstance(value, str) else str(value)
        return {SEALED_KEY: base64.b64encode(box.seal(text, context=_context(ref, path))).decode()}

    return _rewrite(config, one)


def open_all(box: SecretBox, ref: str, config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(config with every secret opened, whether a plain secret was found). A box that does not open (copied
    from another row, or a different master key) reads as an empty value and is logged: one broken field must
    not take the whole project registry down."""
    plain = False

    def one(path: str, value: Any) -> Any:
        nonlocal plain
        if not _is_envelope(value):
            if value not in (None, ""):
                plain = True
            return value
        try:
            return box.open(base64.b64decode(value[SEALED_KEY], validate=True), context=_context(ref, path))
        except (SecretBoxError, binascii.Error, ValueError):
            log.warning("project_secret_unreadable", project_ref=ref, field=path)
            return ""

    return _rewrite(config, one), plain


def redact(config: dict[str, Any]) -> dict[str, Any]:
    """A copy fit for logs and read-back: every secret that is set shows as `[sealed]`."""
    return _rewrite(config, lambda path, value: value if value in (None, "") else REDACTED)


def has_plain(config: dict[str, Any]) -> bool:
    return any(not _is_envelope(parent[key]) and parent[key] not in (None, "") for parent, key, _ in _slots(config))
