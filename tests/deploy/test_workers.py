"""Metrics of a multi-process server (`madbase start --workers 2`): whichever worker answers /metrics serves
every worker's series, labelled `worker`, so counters summed over workers never go backwards between scrapes
(core/workermetrics.py); and `madbase migrate` on a running deployment (nothing left to apply, twice at once)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from madbase.core.workermetrics import merge
from tests.support.servers import MASTER_KEY, MadbaseProcess, create_database, external_db_env


def test_merge_labels_and_groups_families() -> None:
    a = (b"# HELP x_total X\n# TYPE x_total counter\nx_total{s=\"r\"} 1.0\nx_created{s=\"r\"} 5.0\n"
         b"# HELP g G\n# TYPE g gauge\ng 3.0\n")
    b = b"# HELP x_total X\n# TYPE x_total counter\nx_total{s=\"r\"} 2.0\n# HELP g G\n# TYPE g gauge\ng 4.0\n"
    out = merge([("0", a), ("1", b)]).decode().splitlines()
    assert out == ['# HELP x_total X', '# TYPE x_total counter', 'x_total{worker="0",s="r"} 1.0',
                   'x_created{worker="0",s="r"} 5.0', 'x_total{worker="1",s="r"} 2.0',
                   '# HELP g G', '# TYPE g gauge', 'g{worker="0"} 3.0', 'g{worker="1"} 4.0']


@pytest.fixture(scope="module")
def workers(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    db_url = asyncio.run(create_database(pg_cluster, "wk"))
    proc = MadbaseProcess(tmp_path_factory.mktemp("workers"), external_db_env(db_url), args=["--workers", "2"])
    proc.start(timeout=120)
    try:
        yield proc
    finally:
        proc.stop()


_REQ = re.compile(r'^madbase_http_requests_total\{worker="(\d+)",([^}]*)\} ([0-9.e+]+)$', re.M)


def test_every_scrape_has_every_worker_and_sums_never_go_back(workers: MadbaseProcess) -> None:
    totals: list[float] = []
    seen_workers: list[set[str]] = []
    with httpx.Client(base_url=workers.url, timeout=10) as http:
        for _ in range(8):
            for _ in range(4):  # fresh connections: the kernel spreads them over both workers
                with httpx.Client(base_url=workers.url, timeout=10) as one:
                    one.get("/rest/v1/", headers=workers.headers())
            text = http.get("/metrics").text
            samples = _REQ.findall(text)
            # a gauge every worker always has (the kernel may hand all these requests to one worker)
            seen_workers.append(set(re.findall(r'^madbase_realtime_sockets\{worker="(\d+)"\} ', text, re.M)))
            totals.append(sum(float(v) for _, _, v in samples))
            assert text.count("# TYPE madbase_http_requests_total counter") == 1
    assert all(s == {"0", "1"} for s in seen_workers), seen_workers
    assert totals == sorted(totals) and totals[-1] >= 32, totals


def test_madbase_migrate_on_a_running_deployment(workers: MadbaseProcess) -> None:
    env = {**os.environ, **workers.env, "MADBASE_MASTER_KEY": MASTER_KEY}
    cmd = [sys.executable, "-m", "madbase", "migrate"]
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=Path(workers.data_dir)) for _ in range(2)]
    outs = [r.communicate(timeout=120) for r in runs]
    for run, (out, err) in zip(runs, outs, strict=True):
        assert run.returncode == 0, err
        assert "control: up to date" in out and f"project {workers.project_ref}: up to date" in out, out
    bad = subprocess.run(cmd, env={**env, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("madbase: cannot reach the control database")
    assert "Traceback" not in bad.stderr


async def test_madbase_migrate_from_the_previous_schema_with_data(pg_cluster: PgCluster) -> None:
    """The schema one migration behind on both tracks (what the previous release left), with data in it:
    `madbase migrate` applies exactly the missing migrations and keeps the data."""
    import asyncpg

    from madbase.core import migrations
    from madbase.core.control import ControlStore
    from madbase.core.secretbox import SecretBox

    control_url = await create_database(pg_cluster, "mgc")
    tenant_url = await create_database(pg_cluster, "mgt")
    control, tenant = migrations.load("control"), migrations.load("tenant")
    conn = await asyncpg.connect(control_url)
    try:
        await migrations.apply(conn, "control", control[:-1])
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(control_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        record = await ControlStore(pool, SecretBox(MASTER_KEY)).create(name="old", db_url=tenant_url,
                                                                        login_role="auth_mg_old")
    finally:
        await pool.close()
    conn = await asyncpg.connect(tenant_url)
    try:
        await migrations.apply(conn, "tenant", tenant[:-1])
        await conn.execute("create table public.keepme (id int primary key, note text)")
        await conn.execute("insert into public.keepme values (1, 'still here')")
    finally:
        await conn.close()
    env = {**os.environ, "DATABASE_URL": control_url, "MADBASE_MASTER_KEY": MASTER_KEY}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "madbase", "migrate"], env=env,
                                   capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"control: applied {control[-1].version}" in done.stdout, done.stdout
    assert f"project {record.ref}: applied {tenant[-1].version}" in done.stdout, done.stdout
    conn = await asyncpg.connect(tenant_url)
    try:
        assert await conn.fetchval("select note from public.keepme where id = 1") == "still here"
        versions = {r["version"] for r in await conn.fetch("select version from madbase_migrations.applied "
                                                           "where track = 'tenant'")}
        assert versions == {m.version for m in tenant}
    finally:
        await conn.close()
