"""The dashboard end to end in headless chromium: served at /_/, sign-in with TOTP, sign-out, session expiry,
roles (a read-only admin sees no destructive action), keyboard navigation, no console errors, first-load
size, phone and desktop layouts (screenshots kept as artifacts) and an axe-core accessibility check."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import Watched, admin_api, make_admin, shot, sign_in
from tests.support.servers import MadbaseProcess

FIRST_LOAD_BUDGET = 300 * 1024
PHONE = {"width": 390, "height": 844}


def test_served_at_underscore_with_a_strict_policy(dash_server: MadbaseProcess) -> None:
    base = dash_server.url
    with httpx.Client(timeout=10) as c:
        index = c.get(base + "/_/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        csp = index.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert index.headers["x-content-type-options"] == "nosniff"
        assert c.get(base + "/_", follow_redirects=False).headers["location"] == "/_/"
        assert c.get(base + "/_/p/any/deep/link").text == index.text  # no extension: the app itself
        js = c.get(base + "/_/js/app.js", headers={"accept-encoding": "gzip"})
        assert js.headers["content-type"].startswith("text/javascript") and js.headers["content-encoding"] == "gzip"
        assert b"export" in js.content  # httpx decoded it
        raw = c.get(base + "/_/js/app.js", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in raw.headers and b"export" in raw.content
        assert c.get(base + "/_/js/app.js", headers={"if-none-match": raw.headers["etag"]}).status_code == 304
        assert c.get(base + "/_/js/nothing.js").status_code == 404
        assert c.get(base + "/_/../admin/v1/me").status_code in (401, 404)  # normalised by the client or refused
        assert c.get(base + "/_/js/%2e%2e/%2e%2e/app.py").status_code == 404
        assert c.post(base + "/_/", content=b"x").status_code == 405


def test_first_load_is_small(dash_server: MadbaseProcess, page: Watched) -> None:
    sizes: list[int] = []
    page.page.on("requestfinished", lambda req: sizes.append(
        req.sizes()["responseBodySize"] + req.sizes()["responseHeadersSize"]))
    page.page.goto(dash_server.url + "/_/")
    page.page.get_by_label("E-mail").wait_for()
    page.page.wait_for_load_state("networkidle")
    assert 0 < sum(sizes) <= FIRST_LOAD_BUDGET, f"first load transferred {sum(sizes)} bytes"


def test_sign_in_with_totp_then_sign_out(dash_server: MadbaseProcess, page: Watched) -> None:
    admin = make_admin(dash_server, totp=True)
    p = page.page
    p.goto(dash_server.url + "/_/")
    p.get_by_label("E-mail").fill(admin.email)
    p.get_by_label("Password").fill("wrong password, surely")
    p.get_by_role("button", name="Sign in").click()
    p.get_by_text("Invalid login credentials").wait_for()
    p.get_by_label("Password").fill(admin.password)
    p.get_by_role("button", name="Sign in").click()
    code = p.get_by_label("Authentication code")
    code.wait_for()
    code.fill("000000" if admin.next_code() != "000000" else "111111")
    p.get_by_role("button", name="Sign in").click()
    p.get_by_text("Invalid TOTP code").wait_for()
    code.fill(admin.next_code())
    p.get_by_role("button", name="Sign in").click()
    p.get_by_role("button", name="Sign out").wait_for()
    assert p.get_by_text(admin.email).is_visible()
    p.get_by_role("link", name="Account").click()
    p.get_by_text("Two-factor authentication").wait_for()
    assert p.get_by_text("on", exact=True).is_visible()
    p.get_by_role("button", name="Sign out").click()
    p.get_by_text("You are signed out.").wait_for()
    p.reload()
    p.get_by_label("E-mail").wait_for()  # the cookie is gone: still signed out
    assert page.script_errors() == []


def test_session_expiry_goes_back_to_sign_in_and_returns(dash_server: MadbaseProcess, page: Watched) -> None:
    admin = make_admin(dash_server)
    p = page.page
    sign_in(p, dash_server, admin)
    assert admin_api(dash_server, "DELETE", f"/admins/{admin.id}/sessions").status_code == 200
    p.get_by_role("link", name="Account").click()
    p.get_by_text("Your session has expired or was revoked").wait_for()
    p.get_by_label("E-mail").fill(admin.email)
    p.get_by_label("Password").fill(admin.password)
    p.get_by_role("button", name="Sign in").click()
    p.get_by_role("heading", name="Account").wait_for()  # back where the session ran out
    assert page.script_errors() == []


def test_audit_log_shows_the_sign_in(dash_server: MadbaseProcess, page: Watched) -> None:
    admin = make_admin(dash_server)
    p = page.page
    sign_in(p, dash_server, admin, "#/audit")
    p.get_by_role("heading", name="Audit log").wait_for()
    p.get_by_label("Actor").fill(admin.email)
    p.get_by_role("button", name="Filter").click()
    p.get_by_role("cell", name="admin.login").wait_for()
    assert p.get_by_role("cell", name=re.compile(re.escape(admin.email))).count() >= 1
    assert page.script_errors() == []


def test_inbox_shows_a_caught_mail_with_its_link(dash_server: MadbaseProcess, page: Watched) -> None:
    email = "inbox-reader@example.com"
    # a magic link (sign-ups confirm themselves by default: no mail for them)
    r = httpx.post(dash_server.url + "/auth/v1/otp",
                   headers={**dash_server.headers(), "x-project-ref": dash_server.project_ref},
                   json={"email": email, "create_user": True}, timeout=30)
    assert r.status_code == 200, r.text
    deadline = time.time() + 30  # the auth service hands the mail to its sender asynchronously
    inbox = f"/projects/{dash_server.project_ref}/inbox?email={email}"
    while not admin_api(dash_server, "GET", inbox).json()["messages"]:
        assert time.time() < deadline, "the mail was never caught"
        time.sleep(0.3)
    admin = make_admin(dash_server)
    p = page.page
    sign_in(p, dash_server, admin, f"#/p/{dash_server.project_ref}/inbox")
    p.get_by_role("heading", name="Dev inbox").wait_for()
    p.get_by_label("Filter by recipient").fill(email)
    p.get_by_role("button", name="Filter").click()
    row = p.get_by_role("row").filter(has_text=email).first
    row.get_by_role("button").click()
    link = p.locator(".mail .links a").first
    link.wait_for()
    href = link.get_attribute("href") or ""
    assert href.startswith("http") and "token" in href, href
    # the link works (GoTrue signs the user in); the project named as a subdomain would (one may exist by now)
    followed = p.request.get(href, max_redirects=0, headers={"x-project-ref": dash_server.project_ref})
    assert followed.status in (302, 303), followed.status
    assert "access_token=" in followed.headers["location"]
    assert page.script_errors() == []


def test_read_only_admin_sees_no_destructive_action(dash_server: MadbaseProcess, page: Watched) -> None:
    reader = make_admin(dash_server, "read_only")
    writer = make_admin(dash_server)
    p = page.page
    ref = dash_server.project_ref
    sign_in(p, dash_server, writer, f"#/p/{ref}/inbox")
    p.get_by_role("heading", name="Dev inbox").wait_for()
    assert p.get_by_role("button", name="Clear inbox").is_visible()
    p.get_by_role("button", name="Sign out").click()
    p.get_by_label("E-mail").wait_for()
    sign_in(p, dash_server, reader, f"#/p/{ref}/inbox")
    p.get_by_role("heading", name="Dev inbox").wait_for()
    assert p.get_by_role("button", name="Clear inbox").count() == 0
    for page_name in ("projects", f"p/{ref}/api", f"p/{ref}/storage", f"p/{ref}/functions", f"p/{ref}/tables"):
        p.goto(f"{dash_server.url}/_/#/{page_name}")
        p.get_by_role("heading").first.wait_for()
        p.wait_for_load_state("networkidle")
        destructive = p.locator(
            "button.danger, button:text-matches('^(Delete|Pause|Revoke|Rotate|Deploy|Upload)', 'i')")
        assert destructive.count() == 0, f"{page_name}: {destructive.all_inner_texts()}"


def test_keyboard_navigation(dash_server: MadbaseProcess, page: Watched) -> None:
    admin = make_admin(dash_server)
    p = page.page
    p.goto(dash_server.url + "/_/")
    p.get_by_label("E-mail").wait_for()
    assert p.evaluate("document.activeElement.type") == "email"  # the form is ready to type in
    p.keyboard.type(admin.email)
    p.keyboard.press("Tab")
    p.keyboard.type(admin.password)
    p.keyboard.press("Enter")
    p.get_by_role("button", name="Sign out").wait_for()
    focused: list[str] = []
    # from the top of the page: the sequential focus starting point moved to <body>
    p.evaluate("document.body.tabIndex = -1; document.body.focus(); document.body.removeAttribute('tabindex')")
    for _ in range(12):
        p.keyboard.press("Tab")
        focused.append(p.evaluate("document.activeElement.textContent.trim()"))
        if focused[-1] == "Audit log":
            break
    assert focused[0] == "Skip to content" and focused[-1] == "Audit log", focused
    p.keyboard.press("Enter")
    p.get_by_role("heading", name="Audit log").wait_for()
    assert p.evaluate("document.activeElement.id") == "main"  # focus moved to the new page's content
    p.get_by_label("Actor").focus()
    p.keyboard.type(admin.email)
    p.keyboard.press("Enter")
    p.get_by_role("cell", name="admin.login").first.wait_for()


def _pages(ref: str) -> list[str]:
    return ["#/projects", "#/audit", "#/account", *[f"#/p/{ref}/{name}" for name in (
        "overview", "api", "users", "inbox", "tables", "sql", "policies", "storage", "functions", "realtime",
        "logs", "audit", "settings")]]


def _no_horizontal_scroll(p: Any) -> bool:
    return bool(p.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


@pytest.mark.parametrize("page", [PHONE, {"width": 1280, "height": 860}], indirect=True, ids=["phone", "desktop"])
def test_every_page_renders_without_errors(dash_server: MadbaseProcess, page: Watched) -> None:
    admin = make_admin(dash_server)
    p = page.page
    width = p.viewport_size["width"]
    label = "phone" if width < 500 else "desktop"
    sign_in(p, dash_server, admin)
    for hash_ in _pages(dash_server.project_ref):
        p.goto(f"{dash_server.url}/_/{hash_}")
        p.get_by_role("heading", level=1).first.wait_for()
        p.wait_for_load_state("networkidle")
        assert _no_horizontal_scroll(p), f"{hash_} scrolls sideways at {width}px"
        shot(p, f"{label}-{hash_.strip('#/').replace('/', '-')}")
    if label == "phone":
        menu = p.get_by_role("button", name="Menu")
        assert menu.is_visible() and menu.get_attribute("aria-expanded") == "false"
        menu.click()
        assert p.get_by_role("link", name="Audit log").first.is_visible()
    assert page.script_errors() == []
    assert not [r for r in page.responses if r[0] >= 500]


def test_accessibility_has_no_serious_violations(dash_server: MadbaseProcess, browser: Any, axe_source: str) -> None:
    admin = make_admin(dash_server)
    # axe is injected as a script: the page's CSP (scripts from this origin only) is bypassed for the check
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 860})
    try:
        p = context.new_page()
        p.goto(dash_server.url + "/_/")
        p.get_by_label("E-mail").wait_for()
        problems = _axe(p, axe_source, "login")
        sign_in(p, dash_server, admin)
        for hash_ in ("#/projects", "#/audit", "#/account", f"#/p/{dash_server.project_ref}/inbox",
                      f"#/p/{dash_server.project_ref}/overview", f"#/p/{dash_server.project_ref}/sql"):
            p.goto(f"{dash_server.url}/_/{hash_}")
            p.get_by_role("heading", level=1).first.wait_for()
            p.wait_for_load_state("networkidle")
            problems += _axe(p, axe_source, hash_)
        assert problems == []
    finally:
        context.close()


def _axe(p: Any, source: str, where: str) -> list[str]:
    p.add_script_tag(content=source)
    result = p.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{where}: {v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]
