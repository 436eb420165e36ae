"""Gateway benchmark: /health and an authenticated no-op route vs the bare ASGI app, same run.

    ./dev bench gateway            (ROUNDS=3 DUR=10 CONNS=64 by default)

Starts a throwaway PostgreSQL and one `madbase start` process (1 worker, uvicorn + httptools + uvloop, as
the anchor app), runs wrk against: the anchor `plain` app, MadBase `/health`, MadBase `/gateway/v1/whoami`
with apikey + a user JWT (project resolved, key checked, JWT verified from cache), the same with `?db=1`
(plus one request transaction), and prints req/s, p50/p99, server CPU per request, and idle RSS.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from tests.support.servers import MadbaseProcess, create_database, external_db_env, free_port

from bench.common import median_result, rss_mb, start_anchor_app, table, wrk
from madbase.core.jwt import sign_hs256
from madbase.core.pgcluster import PgCluster

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DUR = int(os.environ.get("DUR", "10"))
CONNS = int(os.environ.get("CONNS", "64"))


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="madbase-bench-gw-"))
    cluster = PgCluster(root / "pg", free_port(), "postgres", fsync=False)
    cluster.start()
    server = None
    anchor = None
    try:
        db_url = asyncio.run(create_database(cluster, "bench"))
        server = MadbaseProcess(root / "srv", external_db_env(db_url, LOG_LEVEL="WARNING")).start()
        assert server.proc is not None
        time.sleep(2)
        idle_rss = rss_mb(server.proc.pid)
        token = sign_hs256({"role": "authenticated", "sub": "00000000-0000-0000-0000-000000000001",
                            "aud": "authenticated", "exp": int(time.time()) + 3600}, server.jwt_secret)
        auth = {"apikey": server.anon_key, "Authorization": f"Bearer {token}"}
        anchor_port = free_port()
        anchor = start_anchor_app("plain", anchor_port)
        cases = [
            ("bare ASGI app `plain` (anchor)", f"http://127.0.0.1:{anchor_port}/", {}, [anchor.pid]),
            ("MadBase GET /health", server.url + "/health", {}, [server.proc.pid]),
            ("MadBase GET /gateway/v1/whoami (apikey + JWT)", server.url + "/gateway/v1/whoami", auth,
             [server.proc.pid]),
            ("MadBase GET /gateway/v1/whoami?db=1 (+ request transaction)", server.url + "/gateway/v1/whoami?db=1",
             auth, [server.proc.pid]),
        ]
        results = {name: [] for name, *_ in cases}  # type: ignore[var-annotated]
        for _ in range(ROUNDS):
            for name, url, headers, pids in cases:
                results[name].append(wrk(url, headers=headers, conns=CONNS, duration=DUR, pids=pids))
        med = {name: median_result(rs) for name, rs in results.items()}
        base = med[cases[0][0]].rps
        rows = []
        for name, *_ in cases:
            r = med[name]
            rows.append([name, f"{r.rps:,.0f}", f"{r.rps / base:.2f}x", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
                         f"{r.cpu_us_per_request:.1f}", str(r.non_2xx)])
        print(f"\nwrk -t2 -c{CONNS} -d{DUR}s, {ROUNDS} rounds, medians; 1 server process each\n")
        print(table(["case", "req/s", "vs bare", "p50 ms", "p99 ms", "server CPU µs/req", "non-2xx"], rows))
        health = med[cases[1][0]]
        whoami = med[cases[2][0]]
        print(f"\nJWT check + project resolution + access log + metrics: "
              f"{whoami.cpu_us_per_request - health.cpu_us_per_request:.1f} µs of server CPU per request "
              f"over /health")
        print(f"Idle server RSS (PostgreSQL excluded): {idle_rss:.1f} MB; after the load: "
              f"{rss_mb(server.proc.pid):.1f} MB")
    finally:
        if anchor is not None:
            anchor.terminate()
            anchor.wait(10)
        if server is not None:
            server.stop()
        cluster.destroy()


if __name__ == "__main__":
    main()
