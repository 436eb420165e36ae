"""A real browser (Chromium, headless) calling functions from another origin with supabase-js's UMD build:
CORS preflights, a relay error for a missing function (not a network failure), and a function that sets its
own Access-Control-Allow-Origin (kept single: a duplicate would void it)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.functions.conftest import deploy
from tests.support.servers import MadbaseProcess

UMD = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "@supabase" / "supabase-js" / "dist" / "umd" / \
    "supabase.js"
PAGE = """<!doctype html><html><body><pre id="out">pending</pre>
<script src="supabase.js"></script>
<script>
(async () => {
  const sb = supabase.createClient(%(url)s, %(key)s, { auth: { persistSession: false } })
  const out = {}
  let r = await sb.functions.invoke('no-such-function', { body: { a: 1 } })
  out.missing = { name: r.error && r.error.name, status: r.error && r.error.context && r.error.context.status }
  r = await sb.functions.invoke('cors-echo', { body: { hello: 'browser' } })
  out.echo = { data: r.data, error: r.error && r.error.name }
  r = await sb.functions.invoke('cors-echo/status?code=409', { body: {} })
  out.http = { name: r.error && r.error.name, status: r.error && r.error.context && r.error.context.status }
  document.getElementById('out').textContent = JSON.stringify(out)
})().catch((e) => { document.getElementById('out').textContent = 'failed: ' + e })
</script></body></html>"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def page(fn_server: MadbaseProcess, tmp_path: Path) -> Iterator[str]:
    shutil.copy(UMD, tmp_path / "supabase.js")
    (tmp_path / "index.html").write_text(PAGE % {"url": json.dumps(fn_server.url),
                                                 "key": json.dumps(fn_server.anon_key)})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}/index.html"  # another origin than the API's
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_browser_sees_relay_and_http_errors(fn_server: MadbaseProcess, echo_wasm: bytes, page: str,
                                            tmp_path: Path) -> None:
    deploy(fn_server, "cors-echo", echo_wasm)
    proc = subprocess.run(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000", "--dump-dom",
                           page], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="out">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(html.unescape(found.group(1)))
    assert out["missing"] == {"name": "FunctionsRelayError", "status": 404}
    assert out["echo"] == {"data": {"hello": "browser"}, "error": None}
    assert out["http"] == {"name": "FunctionsHttpError", "status": 409}
