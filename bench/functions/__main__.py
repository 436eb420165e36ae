"""Edge-function benchmark: a WASM (C) echo function against a plain route of the same server, same run.

    ./dev bench functions            (ROUNDS=3 DUR=8 by default)

Starts a throwaway PostgreSQL and one `madbase start` process, builds tests/functions/modules/echo.c with
Debian's clang + wasi-libc and deploys it through /admin/v1, then measures:
- cold start: a new module's deploy (compile + on-disk cache write included) and its first invocation (the
  module deserialized from the on-disk cache: compile excluded), medians of COLD runs;
- warm: wrk GET /functions/v1/echo (apikey + JWT verified, fresh Store+Instance per request) at 16 and 64
  connections vs `GET /gateway/v1/whoami` (the server's plain authenticated echo route) — req/s, p50/p99,
  server CPU per request, and the ratio;
- memory: idle server RSS before and after deploying 100 functions (not invoked: loaded lazily).
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from tests.support.servers import MadbaseProcess, create_database, external_db_env, free_port

from bench.common import median_result, rss_mb, table, wrk
from madbase.core.jwt import sign_hs256
from madbase.core.pgcluster import PgCluster

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DUR = int(os.environ.get("DUR", "8"))
COLD = int(os.environ.get("COLD", "7"))
ECHO_C = Path(__file__).resolve().parents[2] / "tests" / "functions" / "modules" / "echo.c"


def build_echo(out: Path) -> bytes:
    subprocess.run(["clang", "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wl,--strip-all", "-o", str(out),
                    str(ECHO_C)], check=True, timeout=120)
    return out.read_bytes()


def with_custom_section(wasm: bytes, tag: str) -> bytes:
    """The same module with a custom section appended: another hash, so nothing is cached for it."""
    name = b"bench"
    payload = bytes([len(name)]) + name + tag.encode()
    return wasm + bytes([0, len(payload)]) + payload


def deploy(client: httpx.Client, server: MadbaseProcess, slug: str, wasm: bytes) -> float:
    started = time.perf_counter()
    r = client.post(f"{server.url}/admin/v1/projects/{server.project_ref}/functions",
                    json={"slug": slug, "wasm_base64": base64.b64encode(wasm).decode()}, headers=server.admin_headers())
    assert r.status_code == 201, r.text
    return (time.perf_counter() - started) * 1000


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="madbase-bench-fn-"))
    cluster = PgCluster(root / "pg", free_port(), "postgres", fsync=False)
    cluster.start()
    server = None
    try:
        db_url = asyncio.run(create_database(cluster, "bench"))
        server = MadbaseProcess(root / "srv", external_db_env(db_url, LOG_LEVEL="WARNING")).start()
        assert server.proc is not None
        echo = build_echo(root / "echo.wasm")
        token = sign_hs256({"role": "authenticated", "sub": "00000000-0000-0000-0000-000000000001",
                            "aud": "authenticated", "exp": int(time.time()) + 3600}, server.jwt_secret)
        auth = {"apikey": server.anon_key, "Authorization": f"Bearer {token}"}
        client = httpx.Client(timeout=120)

        deploys, firsts, seconds = [], [], []
        for i in range(COLD):
            slug = f"cold{i}"
            deploys.append(deploy(client, server, slug, with_custom_section(echo, f"cold-{i}-{time.time()}")))
            for bucket in (firsts, seconds):
                started = time.perf_counter()
                r = client.get(f"{server.url}/functions/v1/{slug}", headers=auth)
                bucket.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200, r.text

        deploy(client, server, "echo", echo)
        assert client.get(f"{server.url}/functions/v1/echo", headers=auth).status_code == 200
        cases = [("plain route GET /gateway/v1/whoami (reference)", f"{server.url}/gateway/v1/whoami"),
                 ("WASM C echo GET /functions/v1/echo", f"{server.url}/functions/v1/echo")]
        rows = []
        for conns in (16, 64):
            med = {}
            for name, url in cases:
                med[name] = median_result([wrk(url, headers=auth, conns=conns, duration=DUR, pids=[server.proc.pid])
                                           for _ in range(ROUNDS)])
            base = med[cases[0][0]]
            for name, _ in cases:
                r = med[name]
                rows.append([name, str(conns), f"{r.rps:,.0f}", f"{r.rps / base.rps:.2f}x", f"{r.p50_ms:.2f}",
                             f"{r.p99_ms:.2f}", f"{r.cpu_us_per_request:.0f}", str(r.non_2xx)])

        time.sleep(2)
        rss_before = rss_mb(server.proc.pid)
        for i in range(100):
            deploy(client, server, f"idle{i}", with_custom_section(echo, f"idle-{i}"))
        time.sleep(2)
        rss_after = rss_mb(server.proc.pid)

        print(f"\nwrk -t2 -d{DUR}s, {ROUNDS} rounds, medians; 1 server process; apikey + user JWT on every request\n")
        print(table(["case", "conns", "req/s", "vs plain", "p50 ms", "p99 ms", "server CPU µs/req", "non-2xx"], rows))
        print(f"\nCold start ({COLD} new modules, medians): deploy incl. compile {statistics.median(deploys):.1f} ms; "
              f"first request (module from the on-disk cache) {statistics.median(firsts):.2f} ms; "
              f"second request {statistics.median(seconds):.2f} ms")
        print(f"Server RSS: {rss_before:.1f} MB before deploying 100 functions, {rss_after:.1f} MB after "
              f"({rss_after - rss_before:+.1f} MB)")
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()


if __name__ == "__main__":
    main()
