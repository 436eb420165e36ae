"""Auth benchmark: grant_type=password, grant_type=refresh_token and GET /user at N connections, with a
single-row REST GET (or, when /rest/v1 is not available in this build, GET /auth/v1/settings) measured in the
same run as the reference. Starts its own PostgreSQL and `madbase start`; prints a Markdown table.

    ./dev bench auth [--seconds 10] [--connections 16] [--argon2-time 2] [--argon2-memory 19456]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
from tests.support.servers import MadbaseProcess, create_database, external_db_env, free_port

from madbase.core.pgcluster import PgCluster

Op = Callable[[httpx.AsyncClient, int], Awaitable[int]]


async def measure(name: str, op: Op, *, seconds: float, connections: int) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(timeout=30) as client:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                status = await op(client, i)
                latencies.append(time.perf_counter() - start)
                if status >= 400:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {"name": name, "rps": len(latencies) / elapsed, "p50": q[49] * 1000, "p99": q[98] * 1000,
            "n": len(latencies), "errors": errors}


async def run(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="madbase-bench-auth-"))
    cluster = PgCluster(root / "pg", free_port(), "postgres", fsync=False)
    cluster.start()
    server: MadbaseProcess | None = None
    try:
        db_url = await create_database(cluster, "bench")
        server = MadbaseProcess(root / "srv", external_db_env(db_url, ACCESS_LOG="false")).start()
        conn = await asyncpg.connect(server.db_url)
        cfg = {"mailer_autoconfirm": True,
               "rate_limits": {k: 10**9 for k in ("sign_in_sign_ups", "token_refresh", "verify", "otp")},
               "argon2": {"time_cost": args.argon2_time, "memory_cost": args.argon2_memory, "parallelism": 1}}
        await conn.execute("update madbase_control.projects set config = jsonb_set(config, '{auth}', $1::jsonb)",
                           json.dumps(cfg))
        await conn.execute("create table if not exists public.bench_items (id int primary key, name text)")
        await conn.execute("insert into public.bench_items values (1, 'one') on conflict do nothing")
        await conn.execute("grant select on public.bench_items to anon, authenticated")
        await conn.close()
        await asyncio.sleep(1.0)
        base = server.url
        h = {"apikey": server.anon_key, "Authorization": f"Bearer {server.anon_key}",
             "X-Supabase-Api-Version": "2024-01-01"}
        emails, sessions = [], []
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(args.connections):
                email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
                r = await client.post(base + "/auth/v1/signup", json={"email": email, "password": "bench-pass-1"},
                                      headers=h)
                r.raise_for_status()
                emails.append(email)
                sessions.append(r.json())
            rest = await client.get(base + "/rest/v1/bench_items?id=eq.1", headers=h)
        refresh = [s["refresh_token"] for s in sessions]
        user_headers = [{**h, "Authorization": f"Bearer {s['access_token']}"} for s in sessions]

        async def password(client: httpx.AsyncClient, i: int) -> int:
            r = await client.post(base + "/auth/v1/token?grant_type=password",
                                  json={"email": emails[i], "password": "bench-pass-1"}, headers=h)
            return r.status_code

        async def refresh_op(client: httpx.AsyncClient, i: int) -> int:
            r = await client.post(base + "/auth/v1/token?grant_type=refresh_token",
                                  json={"refresh_token": refresh[i]}, headers=h)
            if r.status_code == 200:
                refresh[i] = r.json()["refresh_token"]
            return r.status_code

        async def get_user(client: httpx.AsyncClient, i: int) -> int:
            return (await client.get(base + "/auth/v1/user", headers=user_headers[i])).status_code

        if rest.status_code == 200:
            ref_name = "REST GET single row (reference)"

            async def reference(client: httpx.AsyncClient, i: int) -> int:
                return (await client.get(base + "/rest/v1/bench_items?id=eq.1", headers=user_headers[i])).status_code
        else:
            ref_name = "GET /auth/v1/settings (reference; /rest/v1 not in this build)"

            async def reference(client: httpx.AsyncClient, i: int) -> int:
                return (await client.get(base + "/auth/v1/settings", headers=h)).status_code

        results = []
        for name, op in ((ref_name, reference), ("GET /user", get_user), ("grant_type=refresh_token", refresh_op),
                         ("grant_type=password", password)):
            if args.only and args.only not in name and name != ref_name:
                continue
            results.append(await measure(name, op, seconds=args.seconds, connections=args.connections))
        print(f"\n{args.connections} connections, {args.seconds:g} s each, argon2id t={args.argon2_time} "
              f"m={args.argon2_memory} KiB p=1\n")
        print("| operation | req/s | p50 ms | p99 ms | requests | errors |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in results:
            print(f"| {r['name']} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['n']} | {r['errors']} |")
        by_name = {str(r["name"]): float(r["rps"]) for r in results}  # type: ignore[arg-type]
        if "GET /user" in by_name:
            print(f"\nGET /user / reference = {by_name['GET /user'] / by_name[ref_name]:.2f}")
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--argon2-time", type=int, default=2)
    parser.add_argument("--argon2-memory", type=int, default=19456)
    parser.add_argument("--only", default="", help="run only operations whose name contains this text")
    asyncio.run(run(parser.parse_args()))


main()
