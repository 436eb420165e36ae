"""JavaScript/TypeScript functions through the service: deployed as source via /admin/v1 (bundled at deploy),
invoked at /functions/v1 with the caller's body, the project's environment and secrets. Runs where the
JavaScript runner (madbase.functions.js, with the `deno` bundler) is installed; skipped elsewhere."""

from __future__ import annotations

import time

import pytest

from tests.functions.conftest import admin, invoke
from tests.support.servers import MadbaseProcess

pytest.importorskip("madbase.functions.js.runner")
bundler = pytest.importorskip("madbase.functions.js.bundle")

# Supabase's quick-start function, as `supabase functions new hello-world` writes it
QUICKSTART = """Deno.serve(async (req) => {
  const { name } = await req.json()
  const data = {
    message: `Hello ${name}!`,
  }
  return new Response(JSON.stringify(data), { headers: { 'Content-Type': 'application/json' } })
})
"""
ENV = """Deno.serve((req: Request) => {
  const body = { url: Deno.env.get('SUPABASE_URL'), secret: Deno.env.get('JS_SECRET') ?? null,
                 anon: Deno.env.get('SUPABASE_ANON_KEY') === req.headers.get('apikey') }
  return new Response(JSON.stringify(body), { status: 201, headers: { 'Content-Type': 'application/json' } })
})
"""


@pytest.fixture(scope="module", autouse=True)
def _deno() -> None:
    try:
        bundler.deno_binary()
    except Exception as exc:  # the bundler's binary comes from the `deno` package
        pytest.skip(f"no deno binary: {exc}")


def test_quickstart_function(fn_server: MadbaseProcess) -> None:
    r = admin(fn_server, "POST", "/functions", json={"slug": "hello-world", "source": QUICKSTART},
              timeout=300)
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "js" and r.json()["version"] == 1
    r = invoke(fn_server, "POST", "hello-world", json={"name": "Functions"})
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Hello Functions!"}


def test_js_environment_and_secrets(fn_server: MadbaseProcess) -> None:
    assert admin(fn_server, "POST", "/secrets", json=[{"name": "JS_SECRET", "value": "s3"}]).status_code == 201
    r = admin(fn_server, "POST", "/functions", json={"slug": "env-js", "files": {"index.ts": ENV}}, timeout=300)
    assert r.status_code == 201, r.text
    time.sleep(0.5)
    r = invoke(fn_server, "GET", "env-js")
    assert r.status_code == 201, r.text
    assert r.json() == {"url": fn_server.url, "secret": "s3", "anon": True}
