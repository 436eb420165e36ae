"""The kit's route table: each route is a method set, a path pattern, a handler, and its guards declared on it.

    Route("POST", "/object/{bucket}/{path*}", objects.upload, name="storage.object.upload")

- `name`: the operation's stable name. It is data, not derived from Python module/function names, so a rename
  in the code never changes what the database sees (storage exposes it to RLS as `storage.operation`).
- `roles`: the roles allowed to call it (None: any role the gateway let in, including anon).
- `rate`: a `RateRule` — at most `per_minute(ctx)` calls per client address and rule key per minute window,
  counted by the server-wide limiter (core/ratelimit.py).
- `body_limit`: the most body bytes the request's reader hands over (0: none here; the handler bounds what it
  keeps, e.g. storage's per-bucket object limit while streaming).
- `right`: the right a caller must hold for a service with its own access model (the control plane's admin
  roles: `projects.write`, …); the kit carries it as data, the service's dispatcher checks it.

Patterns: literal segments, `{name}` (one segment, not empty), `{name*}` (the rest of the path, at least one
character, slashes included; last only), `{name**}` (the rest, possibly empty). A trailing slash is optional
unless the pattern ends in a rest parameter.
They are compiled to one regular expression per route; the table tries routes in order (first match wins)
and tells "no such path" from "path exists, other method" for the caller's 404/405.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from madbase.core.context import RequestContext
    from madbase.core.kit.request import Request
    from madbase.core.kit.response import Response

H = TypeVar("H")

_SEGMENT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\*{0,2})\}")


@dataclass(frozen=True, slots=True)
class RateRule:
    """`key`: the counter's name (one budget per key and client address); `per_minute`: the budget, from the
    request's context (usually the project's config)."""

    key: str
    per_minute: Callable[[RequestContext], int]


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """`/bucket/{id}` → `^/bucket/([^/]+)/?$`; `/object/{bucket}/{path*}` → `^/object/([^/]+)/(.+)$`."""
    if not pattern.startswith("/"):
        raise ValueError(f"pattern {pattern!r} must start with '/'")
    out: list[str] = []
    pos = 0
    rest = False
    for m in _SEGMENT.finditer(pattern):
        if rest:
            raise ValueError(f"{{name*}} must come last in {pattern!r}")
        out.append(re.escape(pattern[pos:m.start()]))
        rest = m.group(2) != ""
        out.append({"": "([^/]+)", "*": "(.+)", "**": "(.*)"}[m.group(2)])
        pos = m.end()
    tail = pattern[pos:]
    if rest and tail:
        raise ValueError(f"{{name*}} must come last in {pattern!r}")
    tail = tail.rstrip("/")
    out.append(re.escape(tail))
    if not rest:
        out.append("/?")
    return re.compile("^" + "".join(out) + "$")


def param_names(pattern: str) -> tuple[str, ...]:
    """The names of a pattern's parameters, in the order of `Match.params`."""
    return tuple(m.group(1) for m in _SEGMENT.finditer(pattern))


@dataclass(frozen=True, slots=True)
class Route(Generic[H]):
    methods: frozenset[str]
    pattern: str
    handler: H
    name: str
    roles: frozenset[str] | None = None
    rate: RateRule | None = None
    body_limit: int = 0
    right: str | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", compile_pattern(self.pattern))


def route(methods: str | Iterable[str], pattern: str, handler: H, *, name: str, roles: Iterable[str] | None = None,
          rate: RateRule | None = None, body_limit: int = 0, right: str | None = None) -> Route[H]:
    """A route; `methods` is one method or several ("GET", ("GET", "HEAD"))."""
    ms = frozenset({methods} if isinstance(methods, str) else methods)
    return Route(ms, pattern, handler, name, frozenset(roles) if roles is not None else None, rate, body_limit,
                 right)


@dataclass(frozen=True, slots=True)
class Match(Generic[H]):
    route: Route[H]
    params: tuple[str, ...]


class RouteTable(Generic[H]):
    """Routes in order; `match(method, path)` → the first route matching both, else None, and `allowed(path)`
    the methods of the routes whose pattern matches (empty: no such path)."""

    __slots__ = ("_by_method", "routes")

    def __init__(self, routes: Iterable[Route[H]]) -> None:
        self.routes = tuple(routes)
        names: dict[tuple[str, str], str] = {}
        for r in self.routes:
            for m in r.methods:
                if (m, r.pattern) in names:
                    raise ValueError(f"{m} {r.pattern} is routed twice")
                names[(m, r.pattern)] = r.name
        self._by_method: dict[str, tuple[Route[H], ...]] = {}
        for m in {m for r in self.routes for m in r.methods}:
            self._by_method[m] = tuple(r for r in self.routes if m in r.methods)

    def match(self, method: str, path: str) -> Match[H] | None:
        for r in self._by_method.get(method, ()):
            found = r.regex.match(path)
            if found is not None:
                return Match(r, found.groups())
        return None

    def allowed(self, path: str) -> frozenset[str]:
        return frozenset(m for r in self.routes if r.regex.match(path) for m in r.methods)

    def names(self) -> dict[str, str]:
        """`"METHOD pattern"` → operation name, for docs and tests that pin the names."""
        return {f"{m} {r.pattern}": r.name for r in self.routes for m in sorted(r.methods)}


Handler = Callable[["Request"], Awaitable["Response"]]
