"""A project's API keys as the request path sees them: the legacy anon/service_role JWTs (current, and retired
ones during their grace window) and the new key style, `sb_publishable_…` (role anon) and `sb_secret_…`
(role service_role), several per project, each revocable (docs/keys.md).

Sans-I/O: formats, digests, masks, and `KeyRing`, the per-project index the gateway asks "which key is this?".
The store side (control tables, rotation) is core/keystore.py.

Lookups stay one dict access for the legacy keys (their text is the dict key, as before). A new-style key is
found by its SHA-256 digest — the control database keeps no secret key in clear, and neither does the
process. Grace windows are checked at lookup time, so a retired key stops working the second its window ends,
whether or not this process has reloaded the project since.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field

from madbase.core import jsonutil
from madbase.core.jwt import VerifiedToken

PUBLISHABLE_PREFIX = "sb_publishable_"
SECRET_PREFIX = "sb_secret_"
NEW_KEY_PREFIX = "sb_"
TYPES = {"publishable": (PUBLISHABLE_PREFIX, "anon"), "secret": (SECRET_PREFIX, "service_role")}
MASK = "•" * 16


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key(kind: str) -> str:
    """A fresh key of `kind` ("publishable" | "secret") shaped like Supabase's: prefix, 128 random bits
    (22 base64url characters), `_`, an 8-character checksum of the rest (catches truncated copies)."""
    prefix, _ = TYPES[kind]
    body = prefix + secrets.token_urlsafe(16)
    check = base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest()[:6]).decode()
    return f"{body}_{check}"


def well_formed(key: str) -> bool:
    """Whether `key` has the shape of a new-style key, checksum included (no store lookup for garbage)."""
    # the checksum is the last 8 characters (base64url: it may itself contain "_")
    body, sep, check = key[:-9], key[-9:-8], key[-8:]
    if sep != "_" or not body.startswith((PUBLISHABLE_PREFIX, SECRET_PREFIX)) or len(body) <= len(SECRET_PREFIX):
        return False
    expected = base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest()[:6]).decode()
    return secrets.compare_digest(check, expected)


def hint(key: str) -> str:
    """The masked form shown after creation: the prefix and the first 4 random characters."""
    for prefix in (PUBLISHABLE_PREFIX, SECRET_PREFIX):
        if key.startswith(prefix):
            return key[: len(prefix) + 4] + MASK
    return key[:10] + MASK  # a legacy JWT: its header only


def synthetic_claims(ref: str, role: str) -> VerifiedToken:
    """The claims a request made with a new-style key runs with (Supabase's gateway mints an equivalent
    short-lived JWT for the services): the key's role, this project, no expiry and no user."""
    claims = {"iss": "supabase", "ref": ref, "role": role}
    return VerifiedToken(claims=claims, claims_json=jsonutil.dumps_str(claims), exp=None)


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One accepted key: its role, the claims requests made with it carry, and (retired legacy keys) the end
    of its grace window."""

    id: str
    role: str
    token: VerifiedToken
    until: float | None = None


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A row of madbase_control.api_keys as the project cache holds it (a secret key's value never)."""

    id: str
    type: str  # publishable | secret | legacy
    name: str
    role: str
    digest: bytes
    hint: str
    value: str | None = field(default=None, repr=False)  # publishable and retired legacy keys
    expires_at: float | None = None
    created_at: float | None = None


@dataclass(frozen=True, slots=True)
class ProjectKeys:
    """What the control tables add to a project's keys: new-style and retired legacy keys (live ones only:
    unrevoked, grace not over at load time) and previous JWT secrets with the end of their grace window.
    `retired_digests`: digests of every retired legacy key, grace over or not (refused as bearer tokens too)."""

    keys: tuple[StoredKey, ...] = ()
    previous_secrets: tuple[tuple[str, float], ...] = field(default=(), repr=False)
    retired_digests: frozenset[bytes] = frozenset()


class KeyRing:
    """The keys one project accepts, indexed for the gateway."""

    __slots__ = ("_by_digest", "_by_text", "retired")

    def __init__(self) -> None:
        self._by_text: dict[str, KeyEntry] = {}
        self._by_digest: dict[bytes, KeyEntry] = {}
        self.retired: frozenset[bytes] = frozenset()

    def add_text(self, key: str, entry: KeyEntry) -> None:
        self._by_text[key] = entry

    def add_digest(self, key_digest: bytes, entry: KeyEntry) -> None:
        self._by_digest[key_digest] = entry

    def get(self, key: str) -> KeyEntry | None:
        """The entry of `key` if the project accepts it now, else None."""
        entry = self._by_text.get(key)
        if entry is None:
            if not key.startswith(NEW_KEY_PREFIX) or not self._by_digest:
                return None
            entry = self._by_digest.get(digest(key))
            if entry is None:
                return None
        if entry.until is not None and entry.until < time.time():
            return None
        return entry

    def is_retired(self, key: str) -> bool:
        """A legacy key a rotation retired (its grace window over or not): never an identity again."""
        return bool(self.retired) and digest(key) in self.retired

    @property
    def texts(self) -> dict[str, KeyEntry]:
        return self._by_text
