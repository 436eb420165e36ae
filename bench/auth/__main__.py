"""Auth benchmark with wrk: MadBase's own single-row REST GET (the reference), GET /user,
grant_type=refresh_token and grant_type=password, each at N connections, in the same run against the same
server. Starts its own PostgreSQL and `madbase start`; prints one Markdown table (medians of --rounds).

    ./dev bench auth [--seconds 10] [--connections 16] [--rounds 3] [--workers 1]
                     [--argon2-time 2] [--argon2-memory 19456] [--only TEXT]

wrk runs with one thread per connection (`-tN -cN`), so each connection has its own Lua state: its own user
token and, for the refresh grant, its own refresh-token chain (every refresh rotates; the script parses the
new `refresh_token` out of each 200 answer and sends it next). Before every point the script waits until no
other wrk/bench process runs on the machine (shared CI box).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
from bench.common import process_cpu_seconds
from tests.support.servers import MadbaseProcess, create_database, external_db_env, free_port

from madbase.auth.config import Argon2Params
from madbase.auth.passwords import hash_sync, verify_sync
from madbase.core.pgcluster import PgCluster

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}

# Per-thread (= per-connection) values are handed out in setup(); `values` is filled in by Python.
_LUA_COMMON = """
local values = {%s}
local n = 0
function setup(thread)
  n = n + 1
  thread:set("v", values[n])
end
local bearer
function init(args)
  bearer = {}
  for k, val in pairs(wrk.headers) do bearer[k] = val end
  bearer["Authorization"] = "Bearer " .. v
end
"""

LUA = {
    "reference": """
function request()
  return wrk.format("GET", "/rest/v1/bench_items?id=eq.1", bearer)
end
""",
    "user": """
function request()
  return wrk.format("GET", "/auth/v1/user", bearer)
end
""",
    "refresh": """
local lost = 0
function request()
  return wrk.format("POST", "/auth/v1/token?grant_type=refresh_token", nil, '{"refresh_token":"' .. v .. '"}')
end
function response(status, headers, body)
  if status == 200 then
    local t = body:match('"refresh_token":"([^"]+)"')
    if t then v = t else lost = lost + 1 end
  end
end
""",
    "password": """
function request()
  return wrk.format("POST", "/auth/v1/token?grant_type=password", nil,
                    '{"email":"' .. v .. '","password":"bench-pass-1"}')
end
""",
}

NAMES = {"reference": "REST GET /rest/v1/bench_items?id=eq.1 (reference)", "user": "GET /auth/v1/user",
         "refresh": "POST /token?grant_type=refresh_token", "password": "POST /token?grant_type=password"}


def _lat(text: str, pct: str) -> float:
    m = re.search(rf"^\s*{re.escape(pct)}\s+([\d.]+)(us|ms|s)", text, re.M)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def _num(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else 0.0


def wait_quiet(max_wait: float = 900) -> None:
    """Block while another benchmark (wrk, `python -m bench.*`) runs on this machine."""
    own = {os.getpid(), os.getppid()}
    deadline = time.time() + max_wait
    while time.time() < deadline:
        out = subprocess.run(["pgrep", "-af", r"bench\.|wrk"], capture_output=True, text=True).stdout
        others = [line for line in out.splitlines() if line and int(line.split()[0]) not in own
                  and "pgrep" not in line]
        if not others:
            return
        print(f"  waiting: another benchmark is running ({others[0][:80]})", flush=True)
        time.sleep(10)


def server_pids(server: MadbaseProcess) -> list[int]:
    """The server process and its worker processes (MADBASE_WORKERS > 1)."""
    assert server.proc is not None
    pid = server.proc.pid
    try:
        return [pid, *(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    except OSError:
        return [pid]


def hash_ms(args: argparse.Namespace, n: int = 20) -> float:
    """One Argon2id verification with the benchmark's parameters, in this process, median of n (ms)."""
    params = Argon2Params(time_cost=args.argon2_time, memory_cost=args.argon2_memory, parallelism=1)
    encoded = hash_sync("bench-pass-1", params)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        verify_sync(encoded, "bench-pass-1", params)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def postgres_pids(cluster: PgCluster) -> list[int]:
    """The postmaster and its children (the backends of the server's pooled connections, background workers)."""
    try:
        pid = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
        return [pid, *(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    except (OSError, ValueError, IndexError):
        return []


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: process_cpu_seconds([pid]) for pid in pids}


def _cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two samples: processes seen at the end count from their start value (or 0
    when they began during the point); processes gone by the end are left out (never a negative figure)."""
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


def wrk(url: str, op: str, values: list[str], headers: dict[str, str], seconds: float,
        pids: list[int] | None = None, pg_pids: Callable[[], list[int]] | None = None) -> dict[str, float]:
    conns = len(values)
    lua = _LUA_COMMON % ", ".join(json.dumps(v) for v in values) + LUA[op]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    args = ["wrk", f"-t{conns}", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "10s", "--latency", "-s", script.name]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    cpu_before = process_cpu_seconds(pids or [])
    pg_before = _cpu_by_pid(pg_pids() if pg_pids else [])
    try:
        out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script.name)
    cpu = process_cpu_seconds(pids or []) - cpu_before
    pg_cpu = _cpu_spent(pg_before, _cpu_by_pid(pg_pids() if pg_pids else []))
    requests = _num(r"(\d+) requests in", out)
    return {"cpu_ms": cpu * 1000 / requests if requests else float("nan"),
            "pg_us": pg_cpu * 1e6 / requests if requests else float("nan"),
            "rps": _num(r"Requests/sec:\s*([\d.]+)", out), "p50": _lat(out, "50%"), "p99": _lat(out, "99%"),
            "non2xx": _num(r"Non-2xx or 3xx responses:\s*(\d+)", out),
            "errors": sum(float(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))}


async def prepare(server: MadbaseProcess, args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(server.db_url)
    try:
        cfg = {"mailer_autoconfirm": True,
               "rate_limits": {k: 10**9 for k in ("sign_in_sign_ups", "token_refresh", "verify", "otp")},
               "argon2": {"time_cost": args.argon2_time, "memory_cost": args.argon2_memory, "parallelism": 1}}
        await conn.execute("update madbase_control.projects set config = jsonb_set(config, '{auth}', $1::jsonb)",
                           json.dumps(cfg))
        await conn.execute("create table if not exists public.bench_items (id int primary key, name text)")
        await conn.execute("insert into public.bench_items values (1, 'one') on conflict do nothing")
        await conn.execute("grant select on public.bench_items to anon, authenticated")
        await conn.execute("notify pgrst, 'reload schema'")
    finally:
        await conn.close()


def sign_in_all(base: str, h: dict[str, str], emails: list[str]) -> list[dict[str, str]]:
    """A fresh session per connection (a new refresh-token chain for each refresh point)."""
    with httpx.Client(timeout=30) as client:
        out = []
        for email in emails:
            r = client.post(base + "/auth/v1/token?grant_type=password", headers=h,
                            json={"email": email, "password": "bench-pass-1"})
            r.raise_for_status()
            out.append(r.json())
        return out


def run(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="madbase-bench-auth-"))
    cluster = PgCluster(root / "pg", free_port(), "postgres", fsync=False)
    cluster.start()
    server: MadbaseProcess | None = None
    try:
        db_url = asyncio.run(create_database(cluster, "bench"))
        env = external_db_env(db_url, MADBASE_ACCESS_LOG="false", LOG_LEVEL="WARNING",
                              MADBASE_WORKERS=str(args.workers))
        server = MadbaseProcess(root / "srv", env).start()
        asyncio.run(prepare(server, args))
        base = server.url
        h = {"apikey": server.anon_key, "Authorization": f"Bearer {server.anon_key}",
             "X-Supabase-Api-Version": "2024-01-01"}
        time.sleep(1.5)  # project config reload
        emails = [f"bench-{uuid.uuid4().hex[:8]}@example.com" for _ in range(args.connections)]
        with httpx.Client(timeout=30) as client:
            for email in emails:
                client.post(base + "/auth/v1/signup", json={"email": email, "password": "bench-pass-1"},
                            headers=h).raise_for_status()
        sessions = sign_in_all(base, h, emails)
        access = [s["access_token"] for s in sessions]
        with httpx.Client(timeout=30) as client:
            for _ in range(100):
                r = client.get(base + "/rest/v1/bench_items?id=eq.1",
                               headers={**h, "Authorization": f"Bearer {access[0]}"})
                if r.status_code == 200 and r.json() == [{"id": 1, "name": "one"}]:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"REST reference not ready: {r.status_code} {r.text[:200]}")
        wrk_headers = {"apikey": server.anon_key, "Authorization": f"Bearer {server.anon_key}",
                       "Content-Type": "application/json",
                       "X-Supabase-Api-Version": "2024-01-01"}
        ops = [op for op in ("reference", "user", "refresh", "password")
               if op == "reference" or not args.only or args.only in op]
        results: dict[str, list[dict[str, float]]] = {op: [] for op in ops}
        ratios: list[float] = []
        for rnd in range(args.rounds):
            for op in ops:
                if op == "refresh":
                    values = [s["refresh_token"] for s in sign_in_all(base, h, emails)]
                elif op == "password":
                    values = emails
                else:
                    values = access
                wait_quiet()
                if op != "refresh":  # warm-up (a refresh warm-up would spend the chains' first tokens)
                    wrk(base, op, values, wrk_headers, 2)
                res = wrk(base, op, values, wrk_headers, args.seconds, server_pids(server),
                          lambda: postgres_pids(cluster))
                results[op].append(res)
                print(f"  round {rnd + 1} {op:<9} {res['rps']:8.0f} req/s  p50 {res['p50']:7.2f} ms  "
                      f"p99 {res['p99']:7.2f} ms  server CPU {res['cpu_ms'] * 1000:.0f} µs/req  "
                      f"PostgreSQL CPU {res['pg_us']:.0f} µs/req  "
                      f"non-2xx {res['non2xx']:.0f}  socket errors {res['errors']:.0f}",
                      flush=True)
            if results.get("user"):
                ratios.append(results["user"][-1]["rps"] / results["reference"][-1]["rps"])
        load = os.getloadavg()
        med = statistics.median
        print(f"\n{args.connections} connections (wrk -t{args.connections} -c{args.connections}), "
              f"{args.seconds:g} s per point, median of {args.rounds} rounds, {args.workers} server process(es), "
              f"argon2id t={args.argon2_time} m={args.argon2_memory} KiB p=1; load average at the end "
              f"{load[0]:.1f}\n")
        print("| operation | req/s | p50 ms | p99 ms | server CPU µs/req | PostgreSQL CPU µs/req | non-2xx |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for op, runs in results.items():
            print(f"| {NAMES[op]} | {med(r['rps'] for r in runs):.0f} | {med(r['p50'] for r in runs):.1f} | "
                  f"{med(r['p99'] for r in runs):.1f} | {med(r['cpu_ms'] for r in runs) * 1000:.0f} | "
                  f"{med(r['pg_us'] for r in runs):.0f} | {sum(r['non2xx'] for r in runs):.0f} |")
        if results.get("password"):
            one = hash_ms(args)
            cpu = med(r["cpu_ms"] for r in results["password"])
            print(f"\nOne Argon2id verification (t={args.argon2_time}, m={args.argon2_memory} KiB, p=1) alone: "
                  f"{one:.1f} ms CPU = {one / cpu:.0%} of the password grant's server CPU per request")
        if ratios:
            print("\nGET /auth/v1/user ÷ REST single-row GET, same user tokens, same run "
                  f"(per round {', '.join(f'{x:.2f}' for x in ratios)}): "
                  f"median {med(ratios):.2f}")
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the server and the cluster on `kill`
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--argon2-time", type=int, default=2)
    parser.add_argument("--argon2-memory", type=int, default=19456)
    parser.add_argument("--only", default="", help="besides the reference, run only operations containing this")
    run(parser.parse_args())


main()
