"""`./dev bench rest`: wrk against MadBase's `/rest/v1`, pgbench on the same SQL transaction, and the bare
reference app (../shared/perf-anchors/app_asgi.py:db, AUTH=1), all in the same run on a throwaway cluster.

Env: DUR (seconds per point, default 10), ROUNDS (get_pk rounds, default 3), WORKERS (server processes for
MadBase and the bare app alike, default 1), POOL (MadBase's pool size per process, default 10), CONNS
(default "32 64"), SCENARIOS (default all: get_pk get_filtered get_embed insert_one insert_bulk), ANCHORS
(perf-anchors folder), SKIP_REFS=1 to skip pgbench and the bare app. Prints one table; ratios are against
pgbench prepared tps and the bare app, both measured in this run.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from tests.support.servers import MadbaseProcess, create_database, external_db_env, free_port

from madbase.core.jwt import sign_hs256
from madbase.core.pgcluster import PgCluster

DUR = int(os.environ.get("DUR", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
WORKERS = int(os.environ.get("WORKERS", "1"))
CONNS = [int(c) for c in os.environ.get("CONNS", "32 64").split()]
SCENARIOS = os.environ.get("SCENARIOS", "get_pk get_filtered get_embed insert_one insert_bulk").split()
ANCHORS = Path(os.environ.get("ANCHORS", Path(__file__).resolve().parents[3] / "shared" / "perf-anchors"))

SETUP = """
create table categories (id int primary key, name text not null);
insert into categories select g, 'cat-' || g from generate_series(1, 100) g;
create table items (id int primary key, name text, price numeric, category_id int references categories(id),
                    created_at timestamptz default now());
insert into items (id, name, price, category_id)
  select g, 'item-' || g, round((random() * 1000)::numeric, 2), 1 + g % 100 from generate_series(1, 10000) g;
create index on items (category_id);
create table sink (id bigserial primary key, name text, price numeric);
create table big (id int primary key, name text, price numeric, note text);
insert into big select g, 'big-' || g, g * 1.5, repeat('x', 40) from generate_series(1, 100000) g;
"""

# What each scenario sends (method, path, query, body); R stands for the value the wrk script draws at random
# (ids 1..10000 or categories 1..100), which pgbench draws from the same range.
REQUESTS: dict[str, tuple[str, str, str, bytes, int]] = {
    "get_pk": ("GET", "/items", "id=eq.R", b"", 10000),
    "get_filtered": ("GET", "/items", "select=id,name,price&category_id=eq.R&price=gte.0&order=price.desc&limit=10",
                     b"", 100),
    "get_embed": ("GET", "/items", "select=id,name,categories(name)&id=eq.R", b"", 10000),
    "insert_one": ("POST", "/sink", "", b'{"name":"x","price":1.5}', 0),
    "insert_bulk": ("POST", "/sink", "", ("[" + ",".join(f'{{"name":"n{i}","price":{i}}}'
                                                        for i in range(1, 1001)) + "]").encode(), 0),
}
_MARK = "7777777"


def pgbench_scripts(db_url: str, claims: str) -> dict[str, str]:
    """Per scenario, a pgbench script running the exact statement MadBase generates for its request (planned
    against the bench database) in BEGIN; set_config(role, claims); …; COMMIT. MadBase's statements take their
    values as elements of one text array; here the random value is a pgbench variable and the others literals."""
    from madbase.rest.planner import PlanOptions, plan_request
    from madbase.rest.request import parse_request
    from madbase.rest.schema import introspect

    async def run() -> dict[str, str]:
        conn = await asyncpg.connect(db_url)
        try:
            cache = await introspect(conn, ["public"])
        finally:
            await conn.close()
        scripts: dict[str, str] = {}
        for name, (method, path, query, body, top) in REQUESTS.items():
            req = parse_request(method, path, query.replace("R", _MARK), {}, [], ("public",))
            stmt = plan_request(req, cache, body, PlanOptions()).statement
            sql = stmt.sql
            for i, value in reversed(list(enumerate(stmt.args(), 1))):
                literal = ":r::text" if value == _MARK else (
                    "NULL::text" if value is None else "'" + value.replace("'", "''") + "'::text")
                sql = sql.replace(f"($1::text[])[{i}]", literal)
            head = f"\\set r random(1, {top})\n" if top else ""
            scripts[name] = (f"{head}BEGIN;\nselect set_config('role','authenticated',true), "
                             f"set_config('request.jwt.claims','{claims}',true);\n{' '.join(sql.split())};\nCOMMIT;\n")
        return scripts

    return asyncio.run(run())


LUA = {
    "get_pk": 'request = function() return wrk.format("GET", "/rest/v1/items?id=eq." .. math.random(1, 10000)) end',
    "get_filtered": ('request = function() local c = math.random(1, 100) return wrk.format("GET", '
                     '"/rest/v1/items?select=id,name,price&category_id=eq." .. c .. "&price=gte.0&order=price.desc'
                     '&limit=10") end'),
    "get_embed": ('request = function() return wrk.format("GET", "/rest/v1/items?select=id,name,categories(name)'
                  '&id=eq." .. math.random(1, 10000)) end'),
    "insert_one": ('wrk.method = "POST"\nwrk.body = \'{"name":"x","price":1.5}\'\n'
                   'request = function() return wrk.format("POST", "/rest/v1/sink") end'),
    "insert_bulk": ('wrk.method = "POST"\nlocal rows = {}\nfor i = 1, 1000 do rows[i] = \'{"name":"n\' .. i .. '
                    '\'","price":\' .. i .. \'}\' end\nwrk.body = "[" .. table.concat(rows, ",") .. "]"\n'
                    'request = function() return wrk.format("POST", "/rest/v1/sink") end'),
}


def wrk(url: str, conns: int, headers: dict[str, str], lua: str | None, dur: int) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{conns}", f"-d{dur}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    script = None
    if lua is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(lua)
        script.close()
        args += ["-s", script.name]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=dur + 60).stdout
    if script is not None:
        os.unlink(script.name)
    return {"rps": _num(r"Requests/sec:\s*([\d.]+)", out), "p50": _lat(out, "50%"), "p99": _lat(out, "99%"),
            "non2xx": _num(r"Non-2xx or 3xx responses:\s*(\d+)", out)}


def _num(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else 0.0


def _lat(text: str, pct: str) -> float:
    m = re.search(rf"^\s*{re.escape(pct)}\s+([\d.]+)(us|ms|s)", text, re.M)
    if not m:
        return 0.0
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def pgbench(dsn_parts: dict[str, str], conns: int, dur: int, script_text: str) -> float:
    script = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    script.write(script_text)
    script.close()
    env = {**os.environ, "PGPASSWORD": dsn_parts.get("password", "")}
    out = subprocess.run(["pgbench", "-n", "-M", "prepared", "-f", script.name, "-c", str(conns), "-j", "2",
                          "-T", str(dur), "-h", dsn_parts["host"], "-p", dsn_parts["port"], "-U", dsn_parts["user"],
                          dsn_parts["db"]], capture_output=True, text=True, env=env, timeout=dur + 60)
    os.unlink(script.name)
    return _num(r"tps = ([\d.]+)", out.stdout)


def _server_pids(server: MadbaseProcess) -> list[int]:
    assert server.proc is not None
    pids = [server.proc.pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()]
    except OSError:
        pass
    return pids


def _cpu_seconds(server: MadbaseProcess) -> tuple[float, float]:
    """CPU seconds used so far by the server's processes and by all postgres processes (utime + stime)."""
    hz = os.sysconf("SC_CLK_TCK")
    own = set(_server_pids(server))
    mine = pg = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        ticks = int(rest[11]) + int(rest[12])
        if int(d) in own:
            mine += ticks
        elif comm == "postgres":
            pg += ticks
    return mine / hz, pg / hz


def _rss_kb(server: MadbaseProcess) -> int:
    """Peak resident set (VmHWM) of the server process and its worker processes, in kB."""
    total = 0
    for pid in _server_pids(server):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="madbase-bench-"))
    cluster = PgCluster(root / "pg", free_port(), "postgres", fsync=False)
    cluster.start()
    server: MadbaseProcess | None = None
    bare: subprocess.Popen[bytes] | None = None
    try:
        db_url = asyncio.run(create_database(cluster, "bench"))
        env = external_db_env(db_url, MADBASE_ACCESS_LOG="false", LOG_LEVEL="WARNING", MADBASE_WORKERS=str(WORKERS),
                              MADBASE_POOL_SIZE=os.environ.get("POOL", "10"))
        server = MadbaseProcess(root / "srv", env).start()
        h = server.headers()
        assert httpx.get(server.url + "/rest/v1/", headers=h, timeout=30).status_code == 200

        async def setup() -> None:
            conn = await asyncpg.connect(db_url)
            try:
                await conn.execute(SETUP)
                await conn.execute("vacuum analyze")
                await conn.execute("notify pgrst, 'reload schema'")
            finally:
                await conn.close()

        asyncio.run(setup())
        now = int(time.time())
        claims = {"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated", "aud": "authenticated",
                  "iat": now, "exp": now + 7200}
        token = sign_hs256(claims, server.jwt_secret)
        headers = {"apikey": server.anon_key, "Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for _ in range(100):
            if httpx.get(server.url + "/rest/v1/items?id=eq.1", headers=headers).status_code == 200:
                break
            time.sleep(0.1)
        rss_before = _rss_kb(server)
        big = httpx.get(server.url + "/rest/v1/big", headers=headers, timeout=120)
        assert big.status_code == 200 and big.content.startswith(b"[")
        rss_after = _rss_kb(server)
        rss_line = (f"100k-row GET: {len(big.content) / 1e6:.1f} MB body; server peak RSS growth "
                    f"{(rss_after - rss_before) / 1024:.1f} MB "
                    f"(VmHWM {rss_before / 1024:.0f} → {rss_after / 1024:.0f} MB)")
        del big
        # get_pk first: ROUNDS rounds of (MadBase, bare app, pgbench) back to back per connection count; ratios are
        # taken within each round (the machine is shared and noisy), then the median is reported.
        rounds: dict[int, list[tuple[dict[str, float], float, float]]] = {c: [] for c in CONNS}
        bare_lat: dict[int, list[dict[str, float]]] = {c: [] for c in CONNS}
        refs = os.environ.get("SKIP_REFS") != "1"
        m = re.match(r"postgres(?:ql)?://(?P<user>[^:@]+)(?::(?P<password>[^@]*))?@(?P<host>[^:/]+):"
                     r"(?P<port>\d+)/(?P<db>[^?]+)", db_url)
        assert m is not None
        parts = {k: v or "" for k, v in m.groupdict().items()}
        scripts = pgbench_scripts(db_url, '{"role":"authenticated","sub":"00000000-0000-0000-0000-000000000001"}')

        def measure(name: str, c: int) -> dict[str, float]:
            wrk(server.url + "/", c, headers, LUA[name], 2)  # warm-up
            cpu_before = _cpu_seconds(server)
            mine = wrk(server.url + "/", c, headers, LUA[name], DUR)
            cpu_after = _cpu_seconds(server)
            requests = max(mine["rps"] * DUR, 1.0)
            mine["py_us"] = (cpu_after[0] - cpu_before[0]) / requests * 1e6
            mine["pg_us"] = (cpu_after[1] - cpu_before[1]) / requests * 1e6
            mine["tps"] = pgbench(parts, c, DUR, scripts[name]) if refs else 0.0
            return mine

        if "get_pk" in SCENARIOS:
            port = 0
            if refs:
                port = free_port()
                env = {**os.environ, "DSN": db_url, "AUTH": "1", "JWT_SECRET": server.jwt_secret, "POOL_SIZE": "8"}
                bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "app_asgi:db", "--host", "127.0.0.1",
                                         "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                                         "--workers", str(WORKERS), "--no-access-log", "--log-level", "warning"],
                                        cwd=ANCHORS, env=env)
                time.sleep(2)
            bare_headers = {"Authorization": f"Bearer {token}"}
            for _ in range(ROUNDS):
                for c in CONNS:
                    mine = measure("get_pk", c)
                    bare_rps = 0.0
                    if port:
                        wrk(f"http://127.0.0.1:{port}/", c, bare_headers, None, 2)
                        b = wrk(f"http://127.0.0.1:{port}/", c, bare_headers, None, DUR)
                        bare_rps = b["rps"]
                        bare_lat[c].append(b)
                    rounds[c].append((mine, mine["tps"], bare_rps))
        # the other scenarios after get_pk: the bulk inserts leave autovacuum work behind that would disturb it
        results = [(name, c, measure(name, c)) for name in SCENARIOS if name != "get_pk" for c in CONNS]
        print(f"\nMadBase /rest/v1 benchmark — {DUR}s per point, wrk -t2, JWT (authenticated), "
              f"{WORKERS} server process(es)\n")
        print(f"{'scenario':<14}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non2xx':>8}"
              f"{'pgbench tps':>13}{'bare req/s':>12}{'/pgbench':>10}{'/bare':>8}{'py µs':>7}{'pg µs':>7}")
        med = statistics.median
        for c, runs in rounds.items():
            for i, (r, tps, bare_rps) in enumerate(runs):
                print(f"{f'get_pk r{i + 1}':<14}{c:>6}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}"
                      f"{r['non2xx']:>8.0f}{tps:>13.0f}{bare_rps:>12.0f}"
                      f"{(r['rps'] / tps if tps else 0):>10.2f}{(r['rps'] / bare_rps if bare_rps else 0):>8.2f}"
                      f"{r['py_us']:>7.0f}{r['pg_us']:>7.0f}")
            if runs:
                print(f"{'get_pk median':<14}{c:>6}{med(r['rps'] for r, _, _ in runs):>10.0f}"
                      f"{med(r['p50'] for r, _, _ in runs):>9.2f}{med(r['p99'] for r, _, _ in runs):>9.2f}{'':>8}"
                      f"{med(t for _, t, _ in runs):>13.0f}{med(b for _, _, b in runs):>12.0f}"
                      f"{med(r['rps'] / t if t else 0 for r, t, _ in runs):>10.2f}"
                      f"{med(r['rps'] / b if b else 0 for r, _, b in runs):>8.2f}"
                      f"{med(r['py_us'] for r, _, _ in runs):>7.0f}{med(r['pg_us'] for r, _, _ in runs):>7.0f}")
        for c, lats in bare_lat.items():
            if lats:
                print(f"{'bare app':<14}{c:>6}{med(b['rps'] for b in lats):>10.0f}{med(b['p50'] for b in lats):>9.2f}"
                      f"{med(b['p99'] for b in lats):>9.2f}{'':>8}  (median of {len(lats)} rounds)")
        for name, c, r in results:
            print(f"{name:<14}{c:>6}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['non2xx']:>8.0f}"
                  f"{r['tps']:>13.0f}{'-':>12}{(r['rps'] / r['tps'] if r['tps'] else 0):>10.2f}{'-':>8}"
                  f"{r['py_us']:>7.0f}{r['pg_us']:>7.0f}")
        print("\n" + rss_line)
        print("\npgbench: BEGIN; set_config(role, claims); the statement MadBase generates for the scenario's request; "
              "COMMIT (-M prepared, -j 2, same connection count, right after MadBase's point). bare (single-row GET "
              f"only): perf-anchors app_asgi:db, AUTH=1, uvicorn {WORKERS} worker(s), pool 8.\n"
              "py µs / pg µs: CPU time per request of MadBase's processes / of all postgres processes (from /proc).")
    finally:
        if bare is not None:
            bare.terminate()
            bare.wait(10)
        if server is not None:
            server.stop()
        cluster.destroy()


if __name__ == "__main__":
    main()
