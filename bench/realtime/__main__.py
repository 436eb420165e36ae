"""Realtime benchmark: RSS per 1,000 idle sockets, change→client latency with RLS, delivered events/s.

Run: `./dev bench realtime [--sockets 10000] [--seconds 10] [--workers 4] [--only idle,a,b,ceiling]`. Starts
its own PostgreSQL cluster and one `madbase start` process. The idle sockets and the load generator run in
this process; the latency runs' subscribers (raw Phoenix vsn 2 clients on the `websockets` library) run in
`--workers` separate processes (`subscriber.py`), so client-side decoding does not queue behind reception.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import tempfile
import time
import uuid
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import asyncpg
from tests.support.servers import MadbaseProcess, create_database, external_db_env, free_port
from websockets.asyncio.client import ClientConnection, connect

from bench.realtime import subscriber
from madbase.core.jwt import sign_hs256
from madbase.core.pgcluster import PgCluster


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def token(secret: str, sub: str) -> str:
    now = int(time.time())
    return sign_hs256({"sub": sub, "role": "authenticated", "iat": now, "exp": now + 7200}, secret)


async def open_socket(url: str) -> ClientConnection:
    return await connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=60)


async def idle_sockets(srv: MadbaseProcess, n: int, table: str) -> dict[str, float]:
    assert srv.proc is not None
    url = srv.url.replace("http", "ws", 1) + f"/realtime/v1/websocket?apikey={srv.anon_key}&vsn=2.0.0"
    warm = await open_socket(url)
    await subscriber.join(warm, "realtime:warm", table, None)
    await asyncio.sleep(1.0)
    before = rss_kb(srv.proc.pid)
    sockets: list[ClientConnection] = [warm]
    started = time.perf_counter()
    for i in range(0, n, 200):
        batch = await asyncio.gather(*(open_socket(url) for _ in range(min(200, n - i))))
        await asyncio.gather(*(subscriber.join(ws, f"realtime:idle-{i + k}", table, None)
                               for k, ws in enumerate(batch)))
        sockets.extend(batch)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(2.0)
    after = rss_kb(srv.proc.pid)
    for ws in sockets:
        await ws.close()
    return {"sockets": n, "rss_before_mb": before / 1024, "rss_after_mb": after / 1024,
            "kb_per_socket": (after - before) / n, "joins_per_s": n / elapsed}


def clock_check_ms(samples: list[tuple[float, float, float]]) -> float:
    """Largest distance (ms) of PostgreSQL's clock_timestamp() outside [before, after] of Python's time.time()."""
    worst = 0.0
    for before, pg, after in samples:
        worst = max(worst, (before - pg) * 1000, (pg - after) * 1000)
    return worst


async def latency(srv: MadbaseProcess, db: asyncpg.Connection, table: str, subscribers: int, rate: int,
                  seconds: float, own_rows: bool, workers: int) -> dict[str, float]:
    """Subscribers run in `workers` separate processes (bench/realtime/subscriber.py) that timestamp every
    frame on receipt with time.time(); the load generator runs here. Both clocks are this machine's
    CLOCK_REALTIME (PostgreSQL's clock_timestamp() and Python's time.time()), checked below."""
    url = srv.url.replace("http", "ws", 1) + f"/realtime/v1/websocket?apikey={srv.anon_key}&vsn=2.0.0"
    users = [str(uuid.uuid4()) for _ in range(subscribers)]
    subs = [(f"realtime:lat-{u}", table, token(srv.jwt_secret, u), f"owner=eq.{u}" if own_rows else None)
            for u in users]
    clock = []
    for _ in range(20):
        before = time.time()
        pg = await db.fetchval("select extract(epoch from clock_timestamp())::float8")
        clock.append((before, float(pg), time.time()))
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    counts = ctx.Array("q", workers, lock=False)
    procs: list[tuple[BaseProcess, Any]] = []
    for w in range(workers):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=subscriber.main, args=(url, subs[w::workers], child, stop, counts, w), daemon=True)
        proc.start()
        procs.append((proc, parent))
    for _, parent in procs:
        assert await asyncio.to_thread(parent.recv) == "ready"
    expected = int(rate * seconds) if own_rows else int(rate * seconds) * subscribers
    await asyncio.sleep(0.5)
    # The cluster runs with fsync=off, which PgCluster pairs with synchronous_commit=off: a commit's WAL would
    # then be flushed only by the WAL writer (every wal_writer_delay = 200 ms), and a logical walsender sends
    # only flushed WAL — ~100 ms of latency that is PostgreSQL's configuration, not the server. The generator
    # commits with synchronous_commit=on, PostgreSQL's default (cheap here: fsync stays off).
    pool = await asyncpg.create_pool(srv.db_url, min_size=4, max_size=4,
                                     server_settings={"synchronous_commit": "on"})
    assert pool is not None
    total = int(rate * seconds)
    sent = 0
    t0 = time.perf_counter()

    async def insert(i: int) -> None:
        owner = users[i % len(users)]
        await pool.execute(f"insert into {table} (owner, t) values ($1, extract(epoch from clock_timestamp()))",
                           owner)

    while sent < total:
        due = int((time.perf_counter() - t0) * rate) + 1
        batch = min(due, total) - sent
        if batch > 0:
            await asyncio.gather(*(insert(sent + k) for k in range(batch)))
            sent += batch
        await asyncio.sleep(0.005)
    gen_elapsed = time.perf_counter() - t0
    deadline = time.perf_counter() + 30
    while sum(counts) < expected and time.perf_counter() < deadline:  # noqa: ASYNC110 (another process counts)
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    received = sum(counts)
    stop.set()
    samples: list[float] = []
    for worker, parent in procs:
        samples.extend(await asyncio.to_thread(parent.recv))
        worker.join(10)
    await pool.close()
    samples.sort()
    return {"subscribers": subscribers, "workers": workers, "rate": total / gen_elapsed, "expected": expected,
            "received": received, "clock_skew_ms": clock_check_ms(clock),
            "p50_ms": statistics.median(samples) if samples else float("nan"),
            "p99_ms": samples[int(len(samples) * 0.99) - 1] if samples else float("nan"),
            "max_ms": samples[-1] if samples else float("nan"),
            "delivered_per_s": received / elapsed}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4, help="subscriber processes for the latency runs")
    parser.add_argument("--only", default="idle,a,b,ceiling", help="comma-separated subset of idle,a,b,ceiling")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="madbase-bench-rt-"))
    cluster = PgCluster(root / "pg", free_port(), "postgres", fsync=False)
    cluster.start()
    srv: MadbaseProcess | None = None
    try:
        db_url = await create_database(cluster, "bench")
        srv = MadbaseProcess(root / "srv", external_db_env(db_url, MADBASE_ACCESS_LOG="false",
                                                           MADBASE_POOL_SIZE="8"))
        await asyncio.to_thread(srv.start)
        db = await asyncpg.connect(srv.db_url)
        table = "bench_items"
        await db.execute(f"create table {table} (id bigint generated always as identity primary key, "
                         "owner uuid not null, t double precision not null, body text default 'x')")
        await db.execute(f"alter table {table} enable row level security")
        await db.execute(f"create policy own on {table} for select to authenticated using (owner = auth.uid())")
        await db.execute(f"create policy all_rows on {table} for select to authenticated using (true)")
        await db.execute(f"grant select on {table} to authenticated")
        await db.execute(f"alter publication supabase_realtime add table {table}")
        # Idle sockets subscribe to a table of their own: when they close, their subscriptions stay as ghosts
        # for the grace window and would otherwise take part in the latency runs below.
        await db.execute("create table bench_idle (id bigint primary key)")
        await db.execute("alter publication supabase_realtime add table bench_idle")
        rows = []
        only = set(args.only.split(","))
        if "idle" in only:
            rows.append(("idle", await idle_sockets(srv, args.sockets, "bench_idle")))
        # (a) 100 subscribers, each filtered to its own rows, 1,000 changes/s (policy: owner = auth.uid()).
        await db.execute(f"drop policy all_rows on {table}")
        if "a" in only:
            rows.append(("a", await latency(srv, db, table, 100, 1000, args.seconds, True, args.workers)))
        # (b) 100 subscribers, one table, no filter, 100 changes/s (policy: every authenticated user sees all).
        await db.execute(f"create policy all_rows on {table} for select to authenticated using (true)")
        if "b" in only:
            rows.append(("b", await latency(srv, db, table, 100, 100, args.seconds, False, args.workers)))
        # ceiling: the same fan-out at a higher commit rate
        if "ceiling" in only:
            rows.append(("ceiling", await latency(srv, db, table, 100, 400, args.seconds, False, args.workers)))
        await db.close()
        for name, row in rows:
            print(name, json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}))
    finally:
        if srv is not None:
            await asyncio.to_thread(srv.stop)
        cluster.destroy()


if __name__ == "__main__":
    asyncio.run(main())
