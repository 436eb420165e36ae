"""Redirect-URL validation against the project's site URL and allow-list (GoTrue's glob rules). Pure.

A redirect target decides where a browser carries the tokens of an email link or an OAuth sign-in, so it is
judged the way the browser will read it: parsed by the WHATWG URL standard (ada-url, the parser Node.js
uses), never by a hand-rolled or RFC 3986 parser. Browsers treat `\\` as `/` in http(s) URLs, drop tabs and
newlines, decode percent-escapes and map IDNA in host names; a check that reads `http://evil.example\\@site/`
as the site's host while the browser goes to `evil.example` hands the victim's tokens to an attacker.

Rules (docs/auth.md): the raw text must be short and free of control characters, spaces and backslashes;
it must parse; it must carry no userinfo; script-like schemes are refused. Then it is allowed when its
scheme, host and port equal the site URL's, when its host is a loopback address or `localhost` (http/https,
as GoTrue allows for local development), or when a `uri_allow_list` glob matches its canonical form. A
disallowed or unparsable target falls back to the site URL, as GoTrue's GetReferrer does. The URL that is
used is the canonical one that was checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ada_url import URL, HostType

from madbase.auth.config import AuthConfig

MAX_LENGTH = 2048
# Tabs, newlines and other C0 controls are silently removed by browsers (so text around them joins up);
# spaces and backslashes are read differently by different URL parsers. None belongs in a redirect.
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
# Schemes that run code or read local data instead of navigating.
_REFUSED_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about", "filesystem"})
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True, slots=True)
class Target:
    """A redirect URL as a browser reads it."""

    href: str  # canonical serialisation (what is matched and what is used)
    scheme: str
    hostname: str  # ASCII (IDNA) form, lower case; IPv6 in brackets
    port: str  # "" for the scheme's default port
    host_type: int
    bare: str  # href without the root "/" a special scheme adds to an empty path ("" when not applicable)


def parse(raw: object) -> Target | None:
    """The browser's reading of `raw`, or None when it is no acceptable redirect target."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_LENGTH or _BAD_CHARS.search(raw):
        return None
    try:
        url = URL(raw)
    except ValueError:  # unparsable, e.g. a non-numeric or out-of-range port
        return None
    if url.username or url.password:
        return None
    scheme = url.protocol.removesuffix(":").lower()
    if scheme in _REFUSED_SCHEMES:
        return None
    href = url.href
    bare = ""
    if url.pathname == "/" and url.host and href.startswith(f"{url.protocol}//{url.host}/"):
        bare = f"{url.protocol}//{url.host}{url.search}{url.hash}"
    return Target(href, scheme, url.hostname.lower(), url.port, int(url.host_type), bare)


@lru_cache(maxsize=64)
def _site(site_url: str) -> Target | None:
    return parse(site_url)


def _is_loopback(target: Target) -> bool:
    if target.scheme not in ("http", "https"):
        return False
    if target.host_type == HostType.IPV4:
        return target.hostname.startswith("127.")
    if target.host_type == HostType.IPV6:
        return target.hostname == "[::1]"
    return target.hostname in _LOOPBACK_NAMES


@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    """gobwas/glob with separators `.` and `/`, as GoTrue compiles `uri_allow_list`: `**` matches anything,
    `*` and `?` anything but a separator, `[a-z]` / `[!a-z]` a character class, `{a,b}` alternatives and
    `\\c` the character c."""
    out: list[str] = []
    i = 0
    depth = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^./]*")
        elif c == "?":
            out.append("[^./]")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                negate = body.startswith("!")
                body = body[1:] if negate else body
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\").replace("^", "\\^") + "]")
                i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "," and depth:
            out.append("|")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        else:
            out.append(re.escape(c))
        i += 1
    out.append(")" * depth)
    try:
        return re.compile("^" + "".join(out) + "$", re.DOTALL)
    except re.error:  # a malformed pattern matches nothing rather than breaking every redirect
        return re.compile(r"(?!)")


def _matches_allow_list(target: Target, patterns: tuple[str, ...]) -> bool:
    candidates = (target.href, target.bare) if target.bare else (target.href,)
    return any(_glob(p).match(c) for p in patterns if p for c in candidates)


def check(raw: object, config: AuthConfig) -> Target | None:
    """The parsed target when it is allowed for this project, else None."""
    target = parse(raw)
    if target is None:
        return None
    site = _site(config.site_url)
    if site is not None and (target.scheme, target.hostname, target.port) == (site.scheme, site.hostname,
                                                                                 site.port):
        return target
    if _is_loopback(target):
        return target
    return target if _matches_allow_list(target, config.uri_allow_list) else None


def is_allowed(url: object, config: AuthConfig) -> bool:
    return check(url, config) is not None


def choose(redirect_to: object, config: AuthConfig) -> str:
    """The redirect target if allowed (as the browser will read it), else the site URL."""
    target = check(redirect_to, config)
    if target is None:
        return config.site_url
    # Keep the caller's spelling when it is already canonical (clients compare it, e.g. without the root "/").
    if redirect_to in (target.href, target.bare):
        assert isinstance(redirect_to, str)
        return redirect_to
    return target.href
