"""`./dev bench cluster`: the deployment topology's throughput — REST single-row GET and a storage download,
each measured directly against one MadBase process, through nginx in front of that one process, and through
nginx in front of two processes (deploy/native/run.sh's topology), all in the same run on a throwaway cluster.

Ratios: "nginx overhead" = nginx→1 process / direct; "scale-out" = nginx→2 processes / nginx→1 process.
Env: DUR (seconds per point, default 10), CONNS (default 32), OBJECT_KB (download size, default 256).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import httpx
from tests.support.servers import MASTER_KEY, free_port

from bench.common import table, wait_http, wrk
from madbase.core.pgcluster import PgCluster

DUR = int(os.environ.get("DUR", "10"))
CONNS = int(os.environ.get("CONNS", "32"))
OBJECT_KB = int(os.environ.get("OBJECT_KB", "256"))
RUN = Path(__file__).resolve().parents[2] / "deploy" / "native" / "run.sh"


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="madbase-bench-cluster-"))
    cluster = PgCluster(root / "pg", free_port(), "postgres", fsync=False)
    cluster.start()
    ports = [free_port(), free_port()]
    nginx2, nginx1 = free_port(), free_port()
    env = {**os.environ, "NATIVE_DIR": str(root / "native"), "NGINX_PORT": str(nginx2),
           "MADBASE_PORTS": " ".join(map(str, ports)), "REDIS_PORT": str(free_port()),
           "MADBASE": f"{sys.executable} -m madbase", "DATABASE_URL": cluster.dsn("postgres"),
           "MADBASE_MASTER_KEY": MASTER_KEY, "LOG_LEVEL": "WARNING", "MADBASE_ACCESS_LOG": "false",
           "FILE_STORAGE_BACKEND_PATH": str(root / "objects")}
    one_dir = root / "nginx-one"
    one_dir.mkdir()
    try:
        subprocess.run([str(RUN), "up"], env=env, check=True, capture_output=True, timeout=300)
        conf = subprocess.run([str(RUN), "nginx-conf", str(nginx1), f"127.0.0.1:{ports[0]}"],
                              env={**env, "NATIVE_DIR": str(one_dir)}, check=True, capture_output=True, text=True)
        (one_dir / "nginx.conf").write_text(conf.stdout)
        subprocess.run(["nginx", "-c", str(one_dir / "nginx.conf"), "-p", str(one_dir), "-e",
                        str(one_dir / "error.log")], check=True, timeout=30)
        wait_http(f"http://127.0.0.1:{nginx1}/health")
        keys = json.loads((root / "native" / "madbase-1" / "state.json").read_text())
        service = {"apikey": keys["service_role_key"], "Authorization": f"Bearer {keys['service_role_key']}"}
        asyncio.run(_prepare(cluster.dsn("postgres"), f"http://127.0.0.1:{nginx2}", service))
        pids = [int((root / "native" / f"madbase-{i}.pid").read_text()) for i in (1, 2)]
        targets = {"direct → 1 process": (f"http://127.0.0.1:{ports[0]}", pids[:1]),
                   "nginx → 1 process": (f"http://127.0.0.1:{nginx1}", pids[:1]),
                   "nginx → 2 processes": (f"http://127.0.0.1:{nginx2}", pids)}
        anon = {"apikey": keys["anon_key"], "Authorization": f"Bearer {keys['anon_key']}"}
        rows = []
        for label, path, headers in (("REST GET one row", "/rest/v1/items?id=eq.42", anon),
                                     (f"storage GET {OBJECT_KB} KB", "/storage/v1/object/public/bench/obj.bin", anon)):
            results = {name: wrk(base + path, headers=headers, conns=CONNS, duration=DUR, pids=p)
                       for name, (base, p) in targets.items()}
            direct, via1, via2 = (results[k] for k in targets)
            for name, res in results.items():
                rows.append([label, name, f"{res.rps:,.0f}", f"{res.p50_ms:.2f}", f"{res.p99_ms:.2f}",
                             str(res.non_2xx), f"{res.cpu_us_per_request:.0f}"])
            rows.append([label, "ratios", f"nginx overhead {via1.rps / direct.rps:.2f}x",
                         f"scale-out {via2.rps / via1.rps:.2f}x", "", "", ""])
        print(f"\ncluster bench: {DUR}s per point, {CONNS} connections, {os.cpu_count()} cores")
        print(table(["request", "path", "req/s", "p50 ms", "p99 ms", "non-2xx", "MadBase CPU µs/req"], rows))
    finally:
        if (one_dir / "nginx.pid").exists():
            subprocess.run(["nginx", "-c", str(one_dir / "nginx.conf"), "-p", str(one_dir), "-s", "quit"],
                           capture_output=True, timeout=30)
        subprocess.run([str(RUN), "down"], env=env, capture_output=True, timeout=120)
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


async def _prepare(db_url: str, api: str, service: dict[str, str]) -> None:
    db = await asyncpg.connect(db_url)
    try:
        await db.execute("create table if not exists items (id int primary key, name text, price numeric)")
        await db.execute("insert into items select g, 'item-' || g, g from generate_series(1, 1000) g "
                         "on conflict do nothing")
        await db.execute("grant select on items to anon")
        await db.execute("notify pgrst, 'reload schema'")
    finally:
        await db.close()
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        await http.post("/storage/v1/bucket", json={"id": "bench", "public": True}, headers=service)
        r = await http.post("/storage/v1/object/bench/obj.bin", content=os.urandom(OBJECT_KB * 1024),
                            headers={**service, "content-type": "application/octet-stream", "x-upsert": "true"})
        r.raise_for_status()
    await asyncio.sleep(1.0)


if __name__ == "__main__":
    main()
