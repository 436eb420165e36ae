"""Pure checks of the redirect rules (madbase.auth.redirects): WHATWG reading, userinfo, globs, fallbacks."""

from __future__ import annotations

import pytest

from madbase.auth import redirects
from madbase.auth.config import parse

CFG = parse({"site_url": "https://site.example.com",
             "uri_allow_list": ["https://*.app.example.com/**", "myapp://**", "https://{a,b}.alt.example.com/**",
                                "https://[!x]y.cls.example.com/**", "http://exact.example.com"]})


@pytest.mark.parametrize("raw", [
    "http://evil.example\\@site.example.com/", "https://site.example.com@evil.example/",
    "https://site.example.com%2F@evil.example/", "https://site.example.com:abc/", "https://site.example.com:1:2/",
    "http://site.example.com/", "https://site.example.com:8443/", "https://evil.com/x.app.example.com/",
    "myapp://user@host/", "javascript:alert(1)", "javascript://site.example.com/%0aalert(1)",
    "https://site.exam\tple.com/", "https://s\u0456te.example.com/", "//evil.example/", "", "relative/path",
    "https://xy.cls.example.com/", "https://c.alt.example.com/", "http://exact.example.com/more",
    "data:text/html,hi", "https://SITE.example.com.", "https://" + "a" * 3000 + ".com/",
])
def test_refused(raw: str) -> None:
    assert not redirects.is_allowed(raw, CFG)
    assert redirects.choose(raw, CFG) == "https://site.example.com"


@pytest.mark.parametrize(("raw", "used"), [
    ("https://site.example.com/x?y=1#z", "https://site.example.com/x?y=1#z"),
    ("https://q.app.example.com", "https://q.app.example.com"),
    ("https://Q.app.example.com/cb", "https://q.app.example.com/cb"),
    ("myapp://callback", "myapp://callback"),
    ("https://a.alt.example.com/", "https://a.alt.example.com/"),
    ("https://zy.cls.example.com/p", "https://zy.cls.example.com/p"),
    ("http://exact.example.com", "http://exact.example.com"),
    ("http://exact.example.com/", "http://exact.example.com/"),
    ("http://localhost:5173/cb", "http://localhost:5173/cb"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
    ("http://[::1]/cb", "http://[::1]/cb"),
])
def test_allowed(raw: str, used: str) -> None:
    assert redirects.choose(raw, CFG) == used


def test_non_strings_fall_back() -> None:
    for raw in (None, 1, ["https://site.example.com/"], {"a": 1}):
        assert redirects.choose(raw, CFG) == "https://site.example.com"


def test_broken_patterns_match_nothing() -> None:
    cfg = parse({"site_url": "https://s.example.com", "uri_allow_list": ["https://[z-a].example.com/**", "{"]})
    assert redirects.choose("https://q.example.com/", cfg) == "https://s.example.com"
