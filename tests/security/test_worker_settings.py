"""Every setting reaches every worker process: a worker that rebuilt its settings from the environment lost the
command-line flags, so `--workers 2 --data-dir X` stored objects under ./.madbase (where another start, or
another user of that folder, finds them) and reported them "not found" after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env


def _service(proc: MadbaseProcess) -> dict[str, str]:
    return proc.headers(key=proc.service_role_key)


def test_workers_use_the_command_line_data_dir(pg_cluster: PgCluster, tmp_path: Path) -> None:
    """`--workers 2 --data-dir X`: objects stored by a worker are under X, found by a later 1-process start."""
    db_url = asyncio.run(create_database(pg_cluster, "wflags"))
    env = external_db_env(db_url)
    cwd = tmp_path / "elsewhere"  # a worker falling back to ./.madbase would write here
    cwd.mkdir()
    data = tmp_path / "data"
    multi = MadbaseProcess(data, env, args=["--workers", "2"], flags=True, cwd=cwd).start()
    try:
        with httpx.Client(base_url=multi.url + "/storage/v1", headers=_service(multi), timeout=30) as client:
            r = client.post("/bucket", json={"id": "keep", "name": "keep", "public": False})
            assert r.status_code == 200, r.text
            for i in range(6):  # several connections: both workers take some
                with httpx.Client(base_url=multi.url + "/storage/v1", headers=_service(multi)) as one:
                    r = one.post(f"/object/keep/f{i}.txt", content=f"hello {i}".encode(),
                                 headers={"content-type": "text/plain"})
                    assert r.status_code == 200, r.text
    finally:
        assert multi.stop() == 0
    assert not (cwd / ".madbase").exists()
    assert any((data / "storage").rglob("*")), "objects must live under --data-dir"
    single = MadbaseProcess(data, env, port=multi.port, flags=True, cwd=cwd).start()
    try:
        for i in range(6):
            r = httpx.get(f"{single.url}/storage/v1/object/keep/f{i}.txt", headers=_service(single))
            assert r.status_code == 200 and r.text == f"hello {i}", (i, r.status_code, r.text[:200])
    finally:
        single.stop()


def test_worker_settings_round_trip() -> None:
    """Every Settings field, secrets included, survives the trip to a worker (not only the data folder)."""
    from madbase.config import load_settings
    from madbase.server import settings_for_worker, settings_of_worker

    settings = load_settings(port=6001, data_dir=Path("/tmp/x"), host="127.0.0.2", db_port=6002, workers=3,
                             master_key="m" * 32, jwt_secret="s" * 40, max_body_bytes=4096, log_level="ERROR",
                             database_url="postgresql://u:p@127.0.0.1:1/db")
    again = settings_of_worker(settings_for_worker(settings))
    for name in type(settings).model_fields:
        assert getattr(again, name) == getattr(settings, name), name
