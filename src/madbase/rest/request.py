"""The HTTP request as PostgREST sees it: target, schema, preferences, range and media type (pure).

`parse_request` turns the ASGI scope's method/path/query/headers into an `ApiRequest`; the query string
itself is parsed by `parser` once the target is known (RPC GET needs the function's argument names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from madbase.core.numbers import ascii_uint
from madbase.rest import errors

Media = Literal["json", "object", "csv", "geojson", "openapi", "plan"]
PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")
_PLAN_TYPES = ("application/vnd.pgrst.plan", "application/vnd.pgrst.plan+text", "application/vnd.pgrst.plan+json")

_PREF_VALUES = {
    "return": {"minimal", "representation", "headers-only"},
    "count": {"exact", "planned", "estimated"},
    "resolution": {"merge-duplicates", "ignore-duplicates"},
    "missing": {"default", "null"},
    "tx": {"commit", "rollback"},
    "handling": {"lenient", "strict"},
}
_RANGE = re.compile(r"^\s*(?:items=)?(\d{1,18})-(\d{0,18})\s*$")


@dataclass(slots=True)
class Prefer:
    values: dict[str, str] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def parse_prefer(raw: list[str]) -> Prefer:
    prefer = Prefer()
    for header in raw:
        for token in header.split(","):
            token = token.strip()
            if not token:
                continue
            key, _, value = token.partition("=")
            key = key.strip().lower()
            value = value.strip()
            if key in _PREF_VALUES and value in _PREF_VALUES[key]:
                prefer.values.setdefault(key, value)
            elif key == "max-affected" and ascii_uint(value) is not None:
                prefer.values.setdefault(key, value)
            elif key in ("timezone", "params") and value:
                prefer.values.setdefault(key, value)
            else:
                prefer.invalid.append(token)
    return prefer


def parse_range(raw: str | None) -> tuple[int, int | None] | None:
    """`Range: 0-9` → (offset 0, limit 10); open-ended `10-` → (10, None)."""
    if not raw:
        return None
    m = _RANGE.match(raw)
    if m is None:
        return None
    lower = int(m.group(1))
    if not m.group(2):
        return lower, None
    upper = int(m.group(2))
    if upper < lower:
        raise errors.invalid_range("The lower boundary must be lower than or equal to the upper boundary in the "
                                   "Range header.")
    return lower, upper - lower + 1


@dataclass(frozen=True, slots=True)
class MediaChoice:
    media: Media
    strip_nulls: bool = False
    plan_json: bool = False  # vnd.pgrst.plan+json (else text)
    plan_options: tuple[str, ...] = ()


def choose_media(accept: str | None, *, root: bool = False) -> MediaChoice:
    if not accept:
        return MediaChoice("openapi" if root else "json")
    for part in accept.split(","):
        mtype, *params = [p.strip() for p in part.split(";")]
        mtype = mtype.lower()
        strip = any(p.replace(" ", "").lower() == "nulls=stripped" for p in params)
        if mtype in ("*/*", "application/*"):
            return MediaChoice("openapi" if root else "json")
        if root and mtype in ("application/openapi+json", "application/json"):
            return MediaChoice("openapi")
        if root:
            continue
        if mtype in ("application/json", "application/vnd.pgrst.array+json", "application/vnd.pgrst.array"):
            return MediaChoice("json", strip)
        if mtype in ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object"):
            return MediaChoice("object", strip)
        if mtype == "text/csv":
            return MediaChoice("csv")
        if mtype == "application/geo+json":
            return MediaChoice("geojson")
        if mtype in _PLAN_TYPES:
            opts: tuple[str, ...] = ()
            for p in params:
                key, _, value = p.partition("=")
                if key.strip().lower() == "options":
                    wanted = value.strip().strip('"').lower().split("|")
                    opts = tuple(o for o in PLAN_OPTIONS if o in wanted)
            return MediaChoice("plan", plan_json=mtype.endswith("+json"), plan_options=opts)
    raise errors.unacceptable_media(accept)


@dataclass(slots=True)
class ApiRequest:
    """The parse stage's result (PostgREST's `ApiRequest`): what the planner reads of the HTTP request. Not
    frozen, though nothing changes it: a frozen `__init__` costs 1.5 µs per request here."""

    method: str
    target: str  # relation or function name ("" for the root)
    is_rpc: bool
    schema: str
    query: str
    prefer: Prefer
    media: MediaChoice
    range: tuple[int, int | None] | None
    content_type: str
    headers: dict[str, str]


def resolve_schema(headers: dict[str, str], method: str, schemas: tuple[str, ...]) -> str:
    name = headers.get("accept-profile" if method in ("GET", "HEAD") else "content-profile")
    if name is None:
        return schemas[0]
    if name not in schemas:
        raise errors.unacceptable_schema(name, schemas)
    return name


def parse_request(method: str, subpath: str, query: str, headers: dict[str, str],
                  prefer_raw: list[str], schemas: tuple[str, ...]) -> ApiRequest:
    parts = [p for p in subpath.split("/") if p]
    is_rpc = False
    if not parts:
        target = ""
    elif len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2 and parts[0] == "rpc":
        target, is_rpc = parts[1], True
    else:
        raise errors.ApiError(404, "PGRST125", "Invalid path specified in request URL")
    target = unquote(target)
    schema = resolve_schema(headers, method, schemas)
    prefer = parse_prefer(prefer_raw)
    if prefer.get("handling") == "strict" and prefer.invalid:
        raise errors.invalid_prefs(prefer.invalid)
    media = choose_media(headers.get("accept"), root=not target)
    rng = parse_range(headers.get("range")) if method in ("GET", "HEAD") else None
    ctype = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    return ApiRequest(method, target, is_rpc, schema, query, prefer, media, rng, ctype, headers)
