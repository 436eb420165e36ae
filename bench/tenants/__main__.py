"""`./dev bench tenants`: many projects on one server and one PostgreSQL cluster.

PROJECTS projects (default 100) are created through `/admin/v1/projects` (each a database of its own on the
server's default cluster, bootstrapped and migrated), each with an `items` table of 1,000 rows. wrk sends
single-row REST GETs (`/rest/v1/items?id=eq.R`, each project's own anon key and `x-project-ref`): first all
to one project (the reference, same run), then spread over every project by a Zipf law (s = ZIPF_S, default
1.0: the busiest project gets ~1/H(n) of the traffic). Then REGISTERED projects in all (default 1,000; the
extra ones are control-plane rows that never see a request) to show what merely registered projects cost.
RSS of the server process and open PostgreSQL connections of the project login roles are read busy (right
after a wrk run) and idle (after IDLE_WAIT seconds, default 400: pools close connections idle for 300 s,
checked every 75 s).

Env: PROJECTS, REGISTERED, DUR (seconds per wrk run, default 10), CONNS (default 32), ROUNDS (default 2),
ZIPF_S, IDLE_WAIT. Prints one table; the ratio is against the one-project run of the same session.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from tests.support.servers import MASTER_KEY, MadbaseProcess, create_database, external_db_env, free_port

from bench.common import WrkResult, rss_mb, table, wrk
from madbase.core.control import ControlStore
from madbase.core.pgcluster import PgCluster
from madbase.core.secretbox import SecretBox

PROJECTS = int(os.environ.get("PROJECTS", "100"))
REGISTERED = int(os.environ.get("REGISTERED", "1000"))
DUR = int(os.environ.get("DUR", "10"))
CONNS = int(os.environ.get("CONNS", "32"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
ZIPF_S = float(os.environ.get("ZIPF_S", "1.0"))
IDLE_WAIT = float(os.environ.get("IDLE_WAIT", "400"))

SETUP = """
create table items (id int primary key, name text not null);
insert into items select g, 'item-' || g from generate_series(1, 1000) g;
grant select on items to anon;
notify pgrst, 'reload schema';
"""

LUA = """
local projects = {%s}
local cdf = {%s}
local n = #projects
local seeded = false
request = function()
  if not seeded then math.randomseed(os.time() + math.floor(os.clock() * 1e6)); seeded = true end
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  local p = projects[lo]
  wrk.headers["apikey"] = p[2]
  wrk.headers["Authorization"] = "Bearer " .. p[2]
  wrk.headers["x-project-ref"] = p[1]
  return wrk.format("GET", "/rest/v1/items?id=eq." .. math.random(1, 1000))
end
"""


def zipf_script(projects: list[tuple[str, str]], s: float, folder: Path, name: str) -> str:
    weights = [1 / (k ** s) for k in range(1, len(projects) + 1)]
    total = sum(weights)
    running, cdf = 0.0, []
    for w in weights:
        running += w / total
        cdf.append(running)
    cdf[-1] = 1.0
    path = folder / f"{name}.lua"
    path.write_text(LUA % (", ".join(f'{{"{r}", "{k}"}}' for r, k in projects), ", ".join(f"{c:.9f}" for c in cdf)))
    return str(path)


async def create_projects(server: MadbaseProcess, n: int) -> list[tuple[str, str, str]]:
    """(ref, anon key, database URL) of n new projects, four created at a time."""
    gate = asyncio.Semaphore(4)
    base = server.db_url.rsplit("/", 1)[0]

    async def one(client: httpx.AsyncClient, i: int) -> tuple[str, str, str]:
        async with gate:
            r = await client.post("/admin/v1/projects", json={"name": f"tenant-{i}"})
            assert r.status_code == 201, r.text
            ref, key = r.json()["ref"], r.json()["api_keys"]["anon"]
            conn = await asyncpg.connect(f"{base}/mb_{ref}")
            try:
                await conn.execute(SETUP)
            finally:
                await conn.close()
            return ref, key, f"{base}/mb_{ref}"

    async with httpx.AsyncClient(base_url=server.url, headers=server.admin_headers(), timeout=120) as client:
        return list(await asyncio.gather(*(one(client, i) for i in range(n))))


async def register_more(server: MadbaseProcess, count: int, db_url: str) -> None:
    """Control-plane rows only (never requested, so never bootstrapped): what registration alone costs."""
    pool = await asyncpg.create_pool(server.db_url, min_size=1, max_size=2)
    try:
        store = ControlStore(pool, SecretBox(MASTER_KEY))
        for i in range(count):
            await store.create(name=f"registered-{i}", db_url=db_url, login_role=f"mbl_reg{i}")
    finally:
        await pool.close()


async def project_connections(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("select count(*) from pg_stat_activity where usename like 'mbl\\_%'"))
    finally:
        await conn.close()


async def warm(server: MadbaseProcess, pairs: list[tuple[str, str]]) -> tuple[float, int, list[str]]:
    """One request per project, four at a time (each process's first request of a project opens its pool and
    checks its migrations); returns the seconds it took and the requests that had to be retried."""
    gate = asyncio.Semaphore(4)
    started = time.time()
    retried = 0
    failed: list[str] = []

    async def one(client: httpx.AsyncClient, ref: str, key: str) -> None:
        nonlocal retried
        async with gate:
            for attempt in range(5):
                r = await client.get("/rest/v1/items?id=eq.1",
                                     headers={"apikey": key, "Authorization": f"Bearer {key}", "x-project-ref": ref})
                if r.status_code == 200:
                    return
                retried += 1
                await asyncio.sleep(1 + attempt)
            failed.append(f"{ref}: {r.status_code} {r.json().get('message')}")

    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        await asyncio.gather(*(one(client, ref, key) for ref, key in pairs))
    return time.time() - started, retried, failed


async def all_connections(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("select usename, count(*) as n from pg_stat_activity group by 1 order by 2 desc "
                                "limit 5")
        limit = await conn.fetchval("select current_setting('max_connections')")
    finally:
        await conn.close()
    return f"max_connections {limit}; by user " + ", ".join(f"{r['usename']}={r['n']}" for r in rows)


def run_wrk(server: MadbaseProcess, script: str) -> WrkResult:
    assert server.proc is not None
    runs = [wrk(server.url + "/rest/v1/items", conns=CONNS, duration=DUR, pids=[server.proc.pid], script=script)
            for _ in range(ROUNDS)]
    ordered = sorted(runs, key=lambda r: r.rps)
    mid = ordered[len(ordered) // 2]
    return WrkResult(statistics.median(r.rps for r in runs), mid.p50_ms, mid.p99_ms, sum(r.non_2xx for r in runs),
                     statistics.median(r.server_cpu_s for r in runs))


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="madbase-bench-tenants-"))
    cluster = PgCluster(root / "cluster", free_port(), "postgres", fsync=False)
    cluster.start()
    server: MadbaseProcess | None = None
    try:
        db_url = asyncio.run(create_database(cluster, "tenants"))
        server = MadbaseProcess(root / "server", external_db_env(db_url, LOG_LEVEL="WARNING",
                                                                 MADBASE_ACCESS_LOG="false")).start(timeout=120)
        assert server.proc is not None
        pid = server.proc.pid
        rss_start = rss_mb(pid)
        started = time.time()
        projects = asyncio.run(create_projects(server, PROJECTS))
        created_s = time.time() - started
        pairs = [(ref, key) for ref, key, _ in projects]
        warm_s, retried, failed = asyncio.run(warm(server, pairs))
        warm_conns = asyncio.run(project_connections(server.db_url))
        if failed:
            total = asyncio.run(all_connections(server.db_url))
            print(f"first requests failing after 5 tries: {len(failed)} (e.g. {failed[0]}); project connections "
                  f"{warm_conns}, all connections {total}; server log: {server.output()[-1500:]}")
        one = run_wrk(server, zipf_script(pairs[:1], ZIPF_S, root, "one"))
        spread = run_wrk(server, zipf_script(pairs, ZIPF_S, root, "zipf"))
        busy = (rss_mb(pid), asyncio.run(project_connections(server.db_url)))
        asyncio.run(register_more(server, max(0, REGISTERED - PROJECTS), projects[0][2]))
        time.sleep(6)  # every process re-reads the projects (NOTIFY, then the 5 s safety net)
        registered = run_wrk(server, zipf_script(pairs, ZIPF_S, root, "zipf2"))
        busy_all = (rss_mb(pid), asyncio.run(project_connections(server.db_url)))
        time.sleep(IDLE_WAIT)
        idle_all = (rss_mb(pid), asyncio.run(project_connections(server.db_url)))
        rows = [
            ["1 project (reference)", f"{one.rps:.0f}", f"{one.p99_ms:.1f}", "1.00", str(one.non_2xx), "", ""],
            [f"{PROJECTS} projects, Zipf s={ZIPF_S}", f"{spread.rps:.0f}", f"{spread.p99_ms:.1f}",
             f"{spread.rps / one.rps:.2f}", str(spread.non_2xx), f"{busy[0]:.0f}", str(busy[1])],
            [f"same, {REGISTERED} registered", f"{registered.rps:.0f}", f"{registered.p99_ms:.1f}",
             f"{registered.rps / one.rps:.2f}", str(registered.non_2xx), f"{busy_all[0]:.0f}", str(busy_all[1])],
            [f"idle {IDLE_WAIT:.0f} s, {REGISTERED} registered", "", "", "", "", f"{idle_all[0]:.0f}",
             str(idle_all[1])],
        ]
        print(f"tenants: {PROJECTS} projects created through /admin/v1 in {created_s:.0f} s, first request to each "
              f"in {warm_s:.1f} s ({retried} retried; then {warm_conns} project connections); server RSS at start "
              f"{rss_start:.0f} MB; wrk {CONNS} connections, {DUR} s x {ROUNDS} rounds (median)")
        print(table(["load", "req/s", "p99 ms", "ratio", "non-2xx", "RSS MB", "PG conns"], rows))
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()


if __name__ == "__main__":
    main()
