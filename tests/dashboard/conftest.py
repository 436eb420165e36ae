"""Dashboard fixtures: a server of its own, admins made through /admin/v1 (with a password, optionally TOTP),
and Debian's chromium driven by Playwright (its own browser download is not reachable: `executable_path`).

Screenshots go to `.test-artifacts/dashboard/` at the repository root (ignored by git; CI may keep it) or to
`$MADBASE_TEST_ARTIFACTS/dashboard/`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARTIFACTS = Path(os.environ.get("MADBASE_TEST_ARTIFACTS", ROOT / ".test-artifacts")) / "dashboard"
PASSWORD = "correct horse battery staple"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Admin:
    email: str
    password: str
    id: str
    totp_secret: str | None = None

    def next_code(self) -> str:
        """A TOTP code not yet used: the next time step's (one step of drift is accepted, a replay is not)."""
        assert self.totp_secret is not None
        return pyotp.TOTP(self.totp_secret).at(time.time() + 30)


@pytest.fixture(scope="package")
def dash_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    db_url = asyncio.run(create_database(pg_cluster, "dash"))
    # every test signs in through the page: more than the default 20 logins a minute from 127.0.0.1
    env = external_db_env(db_url, MADBASE_ADMIN_LOGIN_PER_IP_PER_MINUTE="1000")
    proc = MadbaseProcess(tmp_path_factory.mktemp("dash-server"), env).start()
    try:
        yield proc
    finally:
        proc.stop()


def make_admin(server: MadbaseProcess, role: str = "platform_admin", project_ref: str | None = None, *,
               totp: bool = False) -> Admin:
    email = f"dash-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=server.url + "/admin/v1", timeout=30) as c:
        r = c.post("/admins", headers=server.admin_headers(),
                   json={"email": email, "password": PASSWORD, "roles": [{"role": role, "project_ref": project_ref}]})
        assert r.status_code == 201, r.text
        admin = Admin(email, PASSWORD, r.json()["id"])
        if totp:
            login = c.post("/login", json={"email": email, "password": PASSWORD})
            assert login.status_code == 200, login.text
            csrf = {"x-csrf-token": login.json()["csrf_token"]}
            secret = c.post("/me/totp", headers=csrf).json()["secret"]
            verify = c.post("/me/totp/verify", headers=csrf, json={"code": pyotp.TOTP(secret).now()})
            assert verify.status_code == 200, verify.text
            admin.totp_secret = secret
    return admin


def admin_api(server: MadbaseProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """/admin/v1 as the local platform admin (for setting things up and checking what the UI did)."""
    return httpx.request(method, server.url + "/admin/v1" + path, headers=server.admin_headers(), timeout=30, **kwargs)


def route_missing(server: MadbaseProcess, path: str) -> bool:
    """Whether an admin route is not on this server yet (a part built on another branch)."""
    r = admin_api(server, "GET", path)
    return r.status_code == 404 and "no route matched" in r.text.lower()


@pytest.fixture(scope="package")
def axe_source() -> str:
    """axe-core's browser bundle, from tests/dashboard's own npm install."""
    script = HERE / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True,
                       timeout=300)
    return script.read_text()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is required for the dashboard tests (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page with its console errors, uncaught exceptions and failed responses recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.responses: list[tuple[int, str]] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("response", lambda r: self.responses.append((r.status, r.url)))

    def script_errors(self) -> list[str]:
        """Console errors other than the browser's own line for an HTTP error answer the app handled (401 before
        sign-in, 404 of a route not on this server): those are API answers, not faults of the page."""
        return [e for e in self.errors if not e.startswith("Failed to load resource: the server responded")]


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Watched]:
    viewport = getattr(request, "param", None) or {"width": 1280, "height": 860}
    context = browser.new_context(viewport=viewport)
    p = context.new_page()
    p.set_default_timeout(15_000)
    try:
        yield Watched(p)
    finally:
        context.close()


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, server: MadbaseProcess, admin: Admin, hash_: str = "") -> None:
    page.goto(f"{server.url}/_/{hash_}")
    page.wait_for_load_state("networkidle")  # a hash change re-renders the sign-in form: fill the last one
    page.get_by_label("E-mail").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Sign in").click()
    if admin.totp_secret:
        page.get_by_label("Authentication code").fill(admin.next_code())
        page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
