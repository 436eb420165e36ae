"""JsRunner on real Wasmtime + QuickJS: Supabase's examples, the web APIs, host fetch, timers, limits, sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from madbase.functions.abi import FunctionRequest, FunctionResult
from madbase.functions.js.runner import JsRunner
from madbase.functions.runner import Limits
from tests.functions.js.conftest import Invoke, request

FUNCTIONS = Path(__file__).parent / "functions"

HELLO = """
console.log("Hello from Functions!")

Deno.serve(async (req) => {
  const { name } = await req.json()
  const data = {
    message: `Hello ${name}!`,
  }

  return new Response(
    JSON.stringify(data),
    { headers: { "Content-Type": "application/json" } },
  )
})
"""

CORS = """
const corsHeaders = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'authorization, x-client-info, apikey, content-type',
}

console.log(`Function "browser-with-cors" up and running!`)

Deno.serve(async (req) => {
  // This is needed if you're planning to invoke your function from a browser.
  if (req.method === 'OPTIONS') {
    return new Response('ok', { headers: corsHeaders })
  }

  try {
    const { name } = await req.json()
    const data = {
      message: `Hello ${name}!`,
    }

    return new Response(JSON.stringify(data), {
      headers: { ...corsHeaders, 'Content-Type': 'application/json' },
      status: 200,
    })
  } catch (error) {
    return new Response(JSON.stringify({ error: error.message }), {
      headers: { ...corsHeaders, 'Content-Type': 'application/json' },
      status: 400,
    })
  }
})
"""


def hdr(result: FunctionResult, name: str) -> str | None:
    return next((v for k, v in result.headers if k.lower() == name), None)


def test_hello_world(invoke: Invoke) -> None:
    result = invoke(HELLO, request(body={"name": "Functions"}))
    assert result.error is None, result.logs
    assert result.status == 200
    assert hdr(result, "content-type") == "application/json"
    assert json.loads(result.body) == {"message": "Hello Functions!"}
    assert "Hello from Functions!" in result.logs  # the top level's log comes with the first invocation
    assert result.fuel_used > 0 and result.memory_bytes > 0


def test_warm_invocations_reuse_the_snapshot(js_runner: JsRunner) -> None:
    prepared = js_runner.prepare(HELLO.encode())
    for name in ("a", "b", "c"):
        result = js_runner.invoke(prepared, request(body={"name": name}), {}, Limits(), None)
        assert json.loads(result.body) == {"message": f"Hello {name}!"}
        assert "Hello from Functions!" not in result.logs or name == "a"
    assert len(prepared.snapshots) == 1


def test_cors_example(invoke: Invoke) -> None:
    pre = invoke(CORS, request("OPTIONS", headers={"origin": "http://x", "access-control-request-method": "POST"}))
    assert pre.status == 200 and pre.body == b"ok"
    assert hdr(pre, "access-control-allow-origin") == "*"
    assert hdr(pre, "access-control-allow-headers") == "authorization, x-client-info, apikey, content-type"
    ok = invoke(CORS, request(body={"name": "cors"}))
    assert ok.status == 200 and json.loads(ok.body) == {"message": "Hello cors!"}
    assert hdr(ok, "access-control-allow-origin") == "*"
    bad = invoke(CORS, request(body="not json", headers={"content-type": "text/plain"}))
    assert bad.status == 400 and "error" in json.loads(bad.body)


def test_export_default_fetch_and_request_shape(invoke: Invoke) -> None:
    source = """
    export default {
      async fetch(req) {
        const url = new URL(req.url)
        return Response.json({
          method: req.method, path: url.pathname, q: url.searchParams.get("q"), host: url.host,
          auth: req.headers.get("authorization"), apikey: req.headers.get("apikey"),
          body: await req.text(),
        }, { status: 201, headers: { "x-custom": "yes" } })
      },
    }
    """
    req = request("PUT", "/echo/sub/path", "héllo", {"authorization": "Bearer t", "apikey": "k"}, "q=a%20b&x=1")
    result = invoke(source, req)
    assert result.status == 201, result.logs
    assert hdr(result, "x-custom") == "yes"
    assert json.loads(result.body) == {"method": "PUT", "path": "/echo/sub/path", "q": "a b",
                                       "host": "localhost:54321", "auth": "Bearer t", "apikey": "k",
                                       "body": "héllo"}


def test_binary_and_form_bodies(invoke: Invoke) -> None:
    source = """
    Deno.serve(async (req) => {
      if (req.headers.get("content-type").startsWith("multipart/")) {
        const form = await req.formData()
        const file = form.get("file")
        return Response.json({ name: form.get("name"), file: file.name, type: file.type, size: file.size,
                               text: await file.text() })
      }
      const bytes = new Uint8Array(await req.arrayBuffer())
      return new Response(bytes.map((b) => 255 - b), { headers: { "content-type": "application/octet-stream" } })
    })
    """
    raw = bytes(range(256))
    result = invoke(source, request(body=raw, headers={"content-type": "application/octet-stream"}))
    assert result.body == bytes(255 - b for b in raw)
    boundary = "XyZ"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nalice\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\nfile body\r\n--{boundary}--\r\n")
    result = invoke(source, request(body=form, headers={"content-type": f"multipart/form-data; boundary={boundary}"}))
    assert json.loads(result.body) == {"name": "alice", "file": "a.txt", "type": "text/plain", "size": 9,
                                       "text": "file body"}, result.logs


WEB_APIS = (FUNCTIONS / "web_apis.js").read_text()


def test_web_apis(invoke: Invoke) -> None:
    result = invoke(WEB_APIS, env={"MY_SECRET": "s3cret"})
    assert result.status == 200, result.logs
    checks = json.loads(result.body)
    assert checks["url"] == "https://user:pw@example.com/b/c?x=1&y=two+words#h"
    assert checks["params"] == "a=1&b=x%26y"
    assert checks["pattern"] == "42"
    assert checks["text"] == "żółw €"
    assert checks["b64"] == "aGVsbG8=hi"
    assert checks["headers"] == "a,1, 2"
    assert checks["blob"] == "3:abc:text/plain"
    assert checks["formdata"] == "v"
    assert checks["stream"] == "stream"
    assert checks["uuid"] is True and checks["random"] is True
    assert checks["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert checks["sha512"] == hashlib.sha512(b"abc").hexdigest()
    assert checks["sha1"] == hashlib.sha1(b"abc").hexdigest()
    assert checks["hmac"] == hmac.new(b"secret", b"msg", "sha256").hexdigest() + ":true"
    assert checks["timeout"] == "fired"
    assert checks["abort"] == "aborted:AbortError"
    assert checks["env"] == ["s3cret", "s3cret", None]
    assert checks["clone"] == 2
    assert checks["responseJson"] == 1
    assert checks["console"] is True
    assert checks["fs"] == "PermissionDenied"
    assert checks["quickjsModules"] == "undefined,undefined"
    assert "log line { a: 1 }" in result.logs
    assert "ERROR: Error: boom" in result.logs


def test_random_differs_between_requests(js_runner: JsRunner) -> None:
    prepared = js_runner.prepare(b"Deno.serve(() => new Response(crypto.randomUUID() + Math.random()))")
    seen = {js_runner.invoke(prepared, request("GET"), {}, Limits(), None).body for _ in range(3)}
    assert len(seen) == 3


def test_outbound_fetch_through_the_host(invoke: Invoke) -> None:
    calls: list[FunctionRequest] = []

    def host_fetch(req: FunctionRequest) -> FunctionResult:
        calls.append(req)
        if "blocked" in req.path:
            return FunctionResult(0, (), b"", "", 0, 0, "blocked")
        body = json.dumps({"got": req.body.decode(), "auth": dict(req.headers).get("authorization")}).encode()
        return FunctionResult(200, (("content-type", "application/json"), ("x-from", "host")), body, "", 0, 0, None)

    source = (FUNCTIONS / "fetch_host.js").read_text()
    result = invoke(source, fetch=host_fetch)
    assert result.status == 200, result.logs
    out = json.loads(result.body)
    assert out["a"] == {"got": "one", "auth": "Bearer z"}
    assert out["b"] == {"got": '{"n":2}', "auth": None}
    assert out["status"] == 200 and out["x"] == "host"
    assert "allow-list" in out["blocked"]
    assert calls[0].method == "POST" and calls[0].path == "http://api.local/rest/v1/x?select=*" and calls[0].query == ""
    assert calls[1].method == "PUT"


def test_fetch_without_host_fetch_rejects(invoke: Invoke) -> None:
    source = """Deno.serve(async () => { try { await fetch("http://x/"); return new Response("no") }
                catch (e) { return new Response(e.message, { status: 502 }) } })"""
    result = invoke(source)
    assert result.status == 502 and b"not enabled" in result.body


def test_handler_exception_is_a_500_with_logs(invoke: Invoke) -> None:
    result = invoke("Deno.serve(() => { throw new Error('kaput') })")
    assert result.status == 500 and result.error is None
    assert "kaput" in result.logs


def test_boot_errors(invoke: Invoke, js_runner: JsRunner) -> None:
    result = invoke("throw new Error('at top level')")
    assert result.error == "boot" and "at top level" in result.logs
    result = invoke("const x = 1")  # no handler registered
    assert result.status == 500 and result.error is None and "no handler" in result.logs
    try:
        js_runner.prepare(b"Deno.serve(() => {")
    except ValueError as exc:
        assert "SyntaxError" in str(exc)
    else:
        raise AssertionError("a syntax error must fail the deploy")


def test_cpu_limit(invoke: Invoke) -> None:
    result = invoke("Deno.serve(() => { while (true) {} })", limits=Limits(cpu_time_ms=100))
    assert result.error == "cpu" and result.status == 546


def test_memory_limit(invoke: Invoke) -> None:
    source = "Deno.serve(() => { const all = []; while (true) all.push(new Uint8Array(8 * 2 ** 20).fill(1)) })"
    result = invoke(source, limits=Limits(memory_mb=64))
    assert result.error == "memory" and result.status == 546, result.logs
    result = invoke("Deno.serve(() => new Response(new ArrayBuffer(512 * 1024 * 1024).byteLength))",
                    limits=Limits(memory_mb=64))
    assert result.error == "memory", result.logs


def test_wall_clock_limit(invoke: Invoke) -> None:
    source = "Deno.serve(() => new Promise((resolve) => setTimeout(() => resolve(new Response('late')), 5000)))"
    result = invoke(source, limits=Limits(wall_clock_ms=200))
    assert result.error == "wall" and result.status == 504


def test_pending_forever_is_a_crash(invoke: Invoke) -> None:
    result = invoke("Deno.serve(() => new Promise(() => {}))")
    assert result.error == "crash" and "never returned a response" in result.logs


def test_env_read_at_top_level_is_per_environment(js_runner: JsRunner) -> None:
    prepared = js_runner.prepare(b"const url = Deno.env.get('SUPABASE_URL'); Deno.serve(() => new Response(url))")
    one = js_runner.invoke(prepared, request("GET"), {"SUPABASE_URL": "http://one"}, Limits(), None)
    two = js_runner.invoke(prepared, request("GET"), {"SUPABASE_URL": "http://two"}, Limits(), None)
    assert (one.body, two.body) == (b"http://one", b"http://two")


def test_fetch_follows_redirects_through_the_host(invoke: Invoke) -> None:
    seen: list[str] = []

    def host_fetch(req: FunctionRequest) -> FunctionResult:
        seen.append(f"{req.method} {req.path}")
        if req.path.endswith("/old"):
            return FunctionResult(303, (("location", "/new?x=1"),), b"", "", 0, 0, None)
        return FunctionResult(200, (), b"landed", "", 0, 0, None)

    source = """Deno.serve(async () => {
      const r = await fetch("http://api.local/old", { method: "POST", body: "x" })
      const m = await fetch("http://api.local/old", { redirect: "manual" })
      return new Response(`${r.status} ${await r.text()} ${m.status}`)
    })"""
    result = invoke(source, fetch=host_fetch)
    assert result.body == b"200 landed 303", result.logs
    assert seen == ["POST http://api.local/old", "GET http://api.local/new?x=1", "GET http://api.local/old"]


def test_concurrent_invocations(js_runner: JsRunner) -> None:
    from concurrent.futures import ThreadPoolExecutor

    prepared = js_runner.prepare(HELLO.encode())
    names = [f"n{i}" for i in range(16)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(
            lambda n: js_runner.invoke(prepared, request(body={"name": n}), {}, Limits(), None), names))
    assert [json.loads(r.body)["message"] for r in results] == [f"Hello {n}!" for n in names]


def test_import_meta_main(invoke: Invoke) -> None:
    source = "if (import.meta.main) Deno.serve(() => new Response(`${import.meta.main} ${import.meta.url}`))"
    result = invoke(source, request("GET"))
    assert result.body == b"true file:///main.js", result.logs


def test_output_is_capped_and_internals_hidden(invoke: Invoke) -> None:
    source = """Deno.serve(() => {
      const line = "x".repeat(10000)
      for (let i = 0; i < 500; i++) console.log(line)
      let frozen = false
      try { globalThis.__madbase.run = () => {} } catch { frozen = true }
      return new Response(JSON.stringify({ frozen, frame: typeof globalThis.__madbase.frame }))
    })"""
    result = invoke(source, request("GET"))
    assert json.loads(result.body) == {"frozen": True, "frame": "undefined"}, result.logs
    assert len(result.logs) < 1100 * 1024 and "log limit reached" in result.logs


def test_utf8_edge_cases(invoke: Invoke) -> None:
    source = r"""Deno.serve(() => {
      const enc = new TextEncoder(), dec = new TextDecoder()
      let fatal = "no"
      try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])) } catch (e) { fatal = e.name }
      const big = "ab€😀".repeat(5000)
      return Response.json({
        lone: [...enc.encode("a\ud800b")],
        invalid: dec.decode(new Uint8Array([0x61, 0xff, 0xc3, 0x62])),
        emoji: [...enc.encode("😀")], back: dec.decode(enc.encode("żółw 😀")), fatal,
        big: dec.decode(enc.encode(big)) === big, exact: enc.encode("héllo").buffer.byteLength,
      })
    })"""
    result = invoke(source, request("GET"))
    out = json.loads(result.body)
    assert out == {"lone": [97, 239, 191, 189, 98], "invalid": "a\ufffd\ufffdb", "emoji": [240, 159, 152, 128],
                   "back": "żółw 😀", "fatal": "TypeError", "big": True, "exact": 6}, result.logs


def test_reused_instances_start_from_the_snapshot(js_runner: JsRunner) -> None:
    source = b"""let count = 0
    globalThis.seen = []
    Deno.serve(async (req) => {
      count++
      globalThis.seen.push(await req.text())
      if (req.url.endsWith("/grow")) { globalThis.big = new Uint8Array(32 * 1024 * 1024).fill(7) }
      if (req.url.endsWith("/spin")) { while (true) {} }
      setTimeout(() => { count = 100 }, 0)
      return Response.json({ count, seen: globalThis.seen, big: typeof globalThis.big })
    })"""
    prepared = js_runner.prepare(source)
    expect = {"count": 1, "big": "undefined"}
    for i, path in enumerate(["/a", "/b", "/grow", "/c", "/spin", "/d", "/e"]):
        result = js_runner.invoke(prepared, request("POST", path, f"body{i}"), {"K": "v"},
                                  Limits(cpu_time_ms=300), None)
        if path == "/spin":
            assert result.error == "cpu"
            continue
        out = json.loads(result.body)
        assert out["count"] == 1 and out["seen"] == [f"body{i}"], (path, out)
        assert out["big"] == ("object" if path == "/grow" else expect["big"])
    assert sum(len(p) for p in prepared.idle.values()) >= 1  # instances were kept and reused


def test_event_stream_response_is_collected(invoke: Invoke) -> None:
    source = """Deno.serve(() => {
      let n = 0
      const body = new ReadableStream({
        start(controller) {
          const tick = () => {
            controller.enqueue(new TextEncoder().encode(`data: ${n}\\n\\n`))
            if (++n === 3) controller.close(); else setTimeout(tick, 10)
          }
          tick()
        },
      })
      return new Response(body, { headers: { "content-type": "text/event-stream" } })
    })"""
    result = invoke(source, request("GET"))
    assert result.body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n", result.logs


def test_top_level_await_fetch_at_boot(invoke: Invoke) -> None:
    def host_fetch(req: FunctionRequest) -> FunctionResult:
        return FunctionResult(200, (("content-type", "application/json"),), b'{"greeting": "hi"}', "", 0, 0, None)

    source = """const config = await (await fetch("http://api.local/config")).json()
    Deno.serve(() => new Response(config.greeting))"""
    result = invoke(source, request("GET"), fetch=host_fetch)
    assert result.body == b"hi", result.logs


def test_binary_fetch_response(invoke: Invoke) -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB, not UTF-8: travels base64-encoded into the guest

    def host_fetch(req: FunctionRequest) -> FunctionResult:
        return FunctionResult(200, (("content-type", "application/octet-stream"),), blob, "", 0, 0, None)

    source = """Deno.serve(async () => {
      const bytes = new Uint8Array(await (await fetch("http://api.local/file.bin")).arrayBuffer())
      let sum = 0
      for (let i = 0; i < bytes.length; i += 4099) sum += bytes[i]
      return Response.json({ n: bytes.length, sum, last: bytes[bytes.length - 1] })
    })"""
    result = invoke(source, request("GET"), fetch=host_fetch)
    expected = sum(blob[i] for i in range(0, len(blob), 4099))
    assert json.loads(result.body) == {"n": len(blob), "sum": expected, "last": 255}, result.logs
    assert result.fuel_used < 2_000_000_000  # decoded by native code, not a JS loop per byte
