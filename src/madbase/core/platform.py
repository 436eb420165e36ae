"""What a control-plane (/admin/v1) handler sees: who calls (`Principal`, with the rights of their roles), the
request (`AdminRequest`: the kit's `Request` plus the principal, the project of `{ref}` and `audit()`).

It lives in the core so that every service can contribute admin routes (`Service.admin_routes`) whose
handlers take an `AdminRequest`, without importing the admin service. The admin service's dispatcher
(admin/dispatch.py) authenticates, checks the route's declared `right`, resolves the project and writes the
audit record; handlers only read `request.principal`, `request.project` and call `request.audit(...)`.

Rights are strings `<area>.<verb>` (`projects.write`). A role is a set of rights given as patterns — `*`,
`<area>.*`, `*.<verb>`, an exact right — and exclusions `!<pattern>`, which win over the role's grants
(developer = `*`, `!admins.*`, `!keys.write`, `!projects.delete`). A role is assigned platform-wide or for
one project; a personal access token may narrow its admin's rights further (rights and/or projects).

Route rights beside real ones: `OPEN` (no authentication: login) and `SELF` (any authenticated admin; the
handler shows only the caller's own things, e.g. their sessions, or filters by `principal.allows`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from madbase.core import jsonutil
from madbase.core.kit.message import MessageError
from madbase.core.kit.request import Request
from madbase.core.projects import Project

OPEN = "open"
SELF = "self"

_RIGHT = re.compile(r"^[a-z][a-z_]{0,40}\.[a-z][a-z_]{0,40}$")
_PATTERN = re.compile(r"^!?(\*|[a-z][a-z_]{0,40}\.\*|\*\.[a-z][a-z_]{0,40}|[a-z][a-z_]{0,40}\.[a-z][a-z_]{0,40})$")

METHODS = ("session", "token", "local")


def is_right(text: str) -> bool:
    """A concrete right a route may declare (`projects.write`)."""
    return bool(_RIGHT.match(text))


def is_pattern(text: str) -> bool:
    """A role's entry: a right, `*`, `<area>.*`, `*.<verb>`, each possibly prefixed by `!` (exclusion)."""
    return bool(_PATTERN.match(text))


def _matches(pattern: str, right: str) -> bool:
    if pattern == "*" or pattern == right:
        return True
    area, _, verb = right.partition(".")
    return pattern == f"{area}.*" or pattern == f"*.{verb}"


def grants(rights: Iterable[str], right: str) -> bool:
    """Whether one role's rights (patterns and `!` exclusions) grant `right`."""
    granted = False
    for pattern in rights:
        if pattern.startswith("!"):
            if _matches(pattern[1:], right):
                return False
        elif not granted and _matches(pattern, right):
            granted = True
    return granted


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated admin: id, e-mail, how they authenticated, and the rights of their roles.

    `platform`: the rights of each role assigned platform-wide; `projects`: ref → the rights of each role
    assigned for that project. A personal access token's scope narrows them: `token_rights` (None: all) and
    `token_projects` (None: all, and the platform; a set: only these projects, never platform-wide rights).
    """

    admin_id: str
    email: str
    method: str  # session | token | local
    platform: tuple[tuple[str, ...], ...] = ()
    projects: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    token_rights: tuple[str, ...] | None = None
    token_projects: frozenset[str] | None = None
    # the session or access token the request came with (to mark "this session", to refuse self-revocation…)
    credential_id: str | None = None
    mfa: bool = False  # the session's login gave a second factor

    def _scoped(self, right: str, ref: str | None) -> bool:
        if self.token_rights is not None and not grants(self.token_rights, right):
            return False
        if self.token_projects is not None and (ref is None or ref not in self.token_projects):
            return False
        return True

    def allows(self, right: str, ref: str | None = None) -> bool:
        """May this principal exercise `right` on project `ref` (None: platform-wide)?"""
        if not self._scoped(right, ref):
            return False
        if any(grants(role, right) for role in self.platform):
            return True
        return ref is not None and any(grants(role, right) for role in self.projects.get(ref, ()))

    def project_refs(self, right: str) -> frozenset[str] | None:
        """The projects on which the principal holds `right`: None when it holds it on every project
        (platform-wide), else the set (possibly empty). For handlers listing across projects."""
        if self.allows(right, None):
            return None
        candidates = self.token_projects if self.token_projects is not None else frozenset(self.projects)
        return frozenset(ref for ref in candidates if self.allows(right, ref))

    @property
    def is_platform_admin(self) -> bool:
        return self.token_projects is None and self.allows("admins.write")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit log row as a handler describes it (the dispatcher adds actor, time, request id, IP)."""

    action: str
    target: str | None
    project_ref: str | None
    details: Mapping[str, Any]


# Keys whose values never reach the audit log, whatever a handler passes (defence in depth).
_SECRET_KEY = re.compile(r"(password|secret|token|key|code|otp|credential|dsn|db_url)", re.IGNORECASE)


def scrub(details: Mapping[str, Any]) -> dict[str, Any]:
    """`details` with the values of secret-looking keys replaced by "[redacted]" (nested mappings too)."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        if _SECRET_KEY.search(str(key)):
            out[str(key)] = "[redacted]"
        elif isinstance(value, Mapping):
            out[str(key)] = scrub(value)
        else:
            out[str(key)] = value
    return out


class AdminRequest(Request):
    """The kit's request with the caller (`principal`), the project of `{ref}` and `audit()`.

    Built by the admin dispatcher, which sets `principal` (None only on `OPEN` routes), `ref` (the path's
    `{ref}`) and `resolved` (its project, checked: active or disabled, never deleted or unknown: 404)."""

    __slots__ = ("audited", "principal", "ref", "resolved")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.principal: Principal | None = None
        self.ref: str | None = None
        self.resolved: Project | None = None
        self.audited: AuditRecord | None = None

    @property
    def admin(self) -> Principal:
        """The authenticated principal (every route but the `OPEN` ones has one)."""
        if self.principal is None:
            raise RuntimeError("this route is open: nobody is authenticated")
        return self.principal

    @property
    def project(self) -> Project:
        """The project of the route's `{ref}` (resolved by the dispatcher; 404 if there is none)."""
        if self.resolved is None:
            raise RuntimeError("this route has no {ref}")
        return self.resolved

    async def audit(self, action: str, target: str | None = None, details: Mapping[str, Any] | None = None, *,
                    project_ref: str | None = None) -> None:
        """Record this mutation (once per request): written by the dispatcher when the response succeeds.
        `project_ref` defaults to the path's `{ref}`; never pass a secret in `details`."""
        if self.audited is not None:
            raise RuntimeError(f"{self.operation}: audit() called twice for one request")
        self.audited = AuditRecord(action, target, project_ref or self.ref, scrub(details or {}))


AuditSink = Callable[[AdminRequest, AuditRecord], Awaitable[None]]


async def json_object_bytes(request: Request) -> bytes:
    """A service admin route's raw body, checked to be a JSON object (or empty) and handed on unparsed to the
    service's own handler; 400 `{"message"}` otherwise."""
    raw = await request.read()
    if raw.strip():
        try:
            value = jsonutil.loads(raw)
        except ValueError:
            raise MessageError(400, "Body is not valid JSON") from None
        if not isinstance(value, dict):
            raise MessageError(400, "Body must be a JSON object")
    return raw
