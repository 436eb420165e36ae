"""Redirect-URL validation against the project's site URL and allow-list (GoTrue's glob rules). Pure."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from madbase.auth.config import AuthConfig


@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    """`**` matches anything, `*` anything but `.` and `/` (as GoTrue's gobwas/glob with separators)."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^./]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^./]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def is_allowed(url: str, config: AuthConfig) -> bool:
    if not url:
        return False
    try:
        target = urlsplit(url)
        site = urlsplit(config.site_url)
    except ValueError:
        return False
    if not target.scheme or not target.netloc:
        return False
    if target.scheme == site.scheme and target.hostname == site.hostname and target.port == site.port:
        return True
    # Loopback addresses are always allowed, as GoTrue does for local development.
    if target.hostname in ("localhost", "127.0.0.1", "::1") and target.scheme in ("http", "https"):
        return True
    return any(_glob(p).match(url) for p in config.uri_allow_list if p)


def choose(redirect_to: str | None, config: AuthConfig) -> str:
    """The redirect target if allowed, else the site URL."""
    if redirect_to and is_allowed(redirect_to, config):
        return redirect_to
    return config.site_url
