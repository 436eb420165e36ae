"""Redirect URLs of email links and OAuth: a target the browser reads differently from the check must never
pass (account takeover: the genuine email link would carry the victim's tokens to the attacker)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.security.conftest import Project, no_500, set_auth_config

RELAXED = {"otp": 100000, "verify": 100000, "sign_in_sign_ups": 100000, "email_sent": 100000,
           "email_per_address_seconds": 0}


@pytest.fixture(scope="module")
def site(project_a: Project) -> Iterator[str]:
    url = set_auth_config(project_a, {
        "uri_allow_list": "https://*.apps.example.com/**,myapp://callback/**",
        "rate_limits": RELAXED,
        "external": {"github": {"client_id": "cid", "secret": "s"}},
    })
    yield url
    set_auth_config(project_a, {"site_url": "http://localhost:3000"})


def hostile(site: str) -> list[str]:
    host = urlsplit(site).hostname
    assert host
    return [
        f"http://evil.example\\@{host}/",  # WHATWG: backslash ends the authority → host evil.example
        f"https://evil.example\\@{host}/",
        f"https:/\\evil.example/{host}",
        f"https://evil.example%5C@{host}/",
        f"https://{host}@evil.example/",
        f"https://{host}%2F@evil.example/",
        f"https://{host}%40evil.example/",
        f"https://{host}.evil.example/",
        f"https://evil.example#@{host}/",
        f"https://evil.example?@{host}/",
        f"https://evil\t.example/{host}",
        f"https://evil.example\n@{host}/",
        f"https://evil.example\x00@{host}/",
        f"//evil.example/{host}",
        f"javascript:alert(1)//{host}",
        f"javascript://{host}/%0aalert(1)",
        f"https://evil.example/.apps.example.com/{host}",
        "https://evil.example\\.apps.example.com/",
        "https://x.apps.example.com@evil.example/",
        "myapp://evil@callback/x",
        f"https://{host}:abc/",  # non-numeric port: was a 500
        f"https://{host}:99999/",
        f"https://{host}:443:80/",
        "https://xn--/" + host,
        "https://" + "a" * 3000 + ".example.com/",
    ]


def _outbox_redirect(project: Project, email: str) -> str:
    rows = project.sql("select body_html from auth.madbase_mail_outbox where recipient = $1 order by id desc limit 1",
                       email, fetch=True)
    assert rows, f"no mail to {email}"
    link = html.unescape(re.search(r'href="([^"]+)"', rows[0]["body_html"]).group(1))  # type: ignore[union-attr]
    return parse_qs(urlsplit(link).query)["redirect_to"][0]


def _user(project: Project, client: httpx.Client) -> str:
    email = f"victim-{uuid.uuid4().hex[:10]}@example.com"
    r = no_500(client.post(project.url + "/auth/v1/admin/users", headers=project.headers("service_role"),
                           json={"email": email, "password": "correct horse 1", "email_confirm": True}))
    assert r.status_code == 200, r.text
    return email


def _assert_safe(target: str, site: str, raw: str) -> None:
    assert target == site or target.startswith(site + "/") or target.startswith(site + "#"), (raw, target)
    assert "evil" not in target, (raw, target)


def test_recover_link_never_points_elsewhere(project_a: Project, site: str, client: httpx.Client) -> None:
    email = _user(project_a, client)
    for raw in hostile(site):
        r = no_500(client.post(project_a.url + "/auth/v1/recover?redirect_to=" + quote(raw, safe=""),
                               headers=project_a.headers(), json={"email": email}))
        assert r.status_code == 200, (raw, r.text)
        _assert_safe(_outbox_redirect(project_a, email), site, raw)


def test_every_mail_route_and_verify_checks_redirects_alike(project_a: Project, site: str,
                                                          client: httpx.Client) -> None:
    raw = f"http://evil.example\\@{urlsplit(site).hostname}/"
    q = "?redirect_to=" + quote(raw, safe="")
    email = _user(project_a, client)
    for path, body in (("/magiclink", {"email": email}), ("/otp", {"email": email})):
        r = no_500(client.post(project_a.url + "/auth/v1" + path + q, headers=project_a.headers(), json=body))
        assert r.status_code == 200, r.text
        _assert_safe(_outbox_redirect(project_a, email), site, raw)
    fresh = f"new-{uuid.uuid4().hex[:10]}@example.com"
    r = no_500(client.post(project_a.url + "/auth/v1/signup" + q, headers=project_a.headers(),
                           json={"email": fresh, "password": "correct horse 1"}))
    assert r.status_code == 200, r.text
    _assert_safe(_outbox_redirect(project_a, fresh), site, raw)
    invited = f"inv-{uuid.uuid4().hex[:10]}@example.com"
    r = no_500(client.post(project_a.url + "/auth/v1/invite" + q, headers=project_a.headers("service_role"),
                           json={"email": invited}))
    assert r.status_code == 200, r.text
    _assert_safe(_outbox_redirect(project_a, invited), site, raw)
    r = no_500(client.post(project_a.url + "/auth/v1/admin/generate_link", headers=project_a.headers("service_role"),
                           json={"type": "magiclink", "email": email, "redirect_to": raw}))
    assert r.status_code == 200, r.text
    _assert_safe(r.json()["redirect_to"], site, raw)
    for value in (raw, f"https://{urlsplit(site).hostname}:abc/"):
        r = no_500(client.get(project_a.url + "/auth/v1/verify?type=signup&token=x&redirect_to="
                              + quote(value, safe=""), headers=project_a.headers()))
        assert r.status_code == 303, r.text
        _assert_safe(r.headers["location"], site, value)


def test_oauth_authorize_stores_only_allowed_targets(project_a: Project, site: str, client: httpx.Client) -> None:
    for raw in (f"http://evil.example\\@{urlsplit(site).hostname}/", f"https://{urlsplit(site).hostname}:abc/"):
        r = no_500(client.get(project_a.url + "/auth/v1/authorize?provider=github&redirect_to=" + quote(raw, safe=""),
                              headers=project_a.headers()))
        assert r.status_code == 302, r.text
        state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
        rows = project_a.sql("select redirect_to from auth.madbase_oauth_state where id = $1", state, fetch=True)
        _assert_safe(rows[0]["redirect_to"], site, raw)


def test_allowed_targets_still_work(project_a: Project, site: str, client: httpx.Client) -> None:
    email = _user(project_a, client)
    for raw, expected in ((site + "/welcome?x=1", site + "/welcome?x=1"),
                          ("https://one.apps.example.com/cb", "https://one.apps.example.com/cb"),
                          ("https://ONE.apps.example.com/cb", "https://one.apps.example.com/cb"),
                          ("myapp://callback/done", "myapp://callback/done"),
                          ("http://localhost:5173/x", "http://localhost:5173/x")):
        r = no_500(client.post(project_a.url + "/auth/v1/recover?redirect_to=" + quote(raw, safe=""),
                               headers=project_a.headers(), json={"email": email}))
        assert r.status_code == 200, r.text
        assert _outbox_redirect(project_a, email) == expected, raw


def test_the_other_project_keeps_its_own_site(project_a: Project, project_b: Project, site: str,
                                              client: httpx.Client) -> None:
    # project_a's allow-list must not open redirects on project_b
    r = no_500(client.get(project_b.url + "/auth/v1/verify?type=signup&token=x&redirect_to="
                          + quote("https://one.apps.example.com/cb", safe=""), headers=project_b.headers()))
    assert r.status_code == 303 and not r.headers["location"].startswith("https://one.apps"), r.headers


def _recover_link(project: Project, client: httpx.Client, email: str, **headers: str) -> str:
    r = no_500(client.post(project.url + "/auth/v1/recover", headers={**project.headers(), **headers},
                           json={"email": email}))
    assert r.status_code == 200, r.text
    rows = project.sql("select body_html from auth.madbase_mail_outbox where recipient = $1 order by id desc limit 1",
                       email, fetch=True)
    return html.unescape(re.search(r'href="([^"]+)"', rows[0]["body_html"]).group(1))  # type: ignore[union-attr]


def test_mail_links_do_not_follow_a_forged_host(project_a: Project, site: str, client: httpx.Client) -> None:
    """Reset poisoning: the attacker asks for the victim's recovery mail with their own Host / X-Forwarded-Host;
    the genuine mail's link must still lead to this server, not carry the token to the attacker's host."""
    email = _user(project_a, client)
    genuine = urlsplit(_recover_link(project_a, client, email)).netloc
    assert genuine == urlsplit(project_a.url).netloc
    for headers in ({"host": "evil.example"}, {"x-forwarded-host": "evil.example"},
                    {"x-forwarded-host": "evil.example", "x-forwarded-proto": "javascript"},
                    {"host": "evil.example:" + str(urlsplit(project_a.url).port)}):
        link = _recover_link(project_a, client, email, **headers)
        assert urlsplit(link).netloc == genuine and "evil" not in link.split("?")[0], (headers, link)
