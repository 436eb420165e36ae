"""Partial writes of a process that died are removed at the next start (not after the one-hour grace), while
the uploads in flight of live processes sharing the same folder — other workers, other servers — are not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

from madbase.core.pgcluster import PgCluster
from madbase.storage.backends.fs_owner import TempOwner, sweep_dead
from tests.storage.test_consistency import start_partial_upload, wait_for
from tests.support.servers import MadbaseProcess, create_database, external_db_env

_HOLDER = """
import sys, time
from pathlib import Path
from madbase.storage.backends.fs_owner import TempOwner
owner = TempOwner(Path(sys.argv[1]))
(Path(sys.argv[1]) / (owner.prefix() + "partial")).write_bytes(b"in flight")
print(owner.id, flush=True)
time.sleep(600)
"""


def _holder(folder: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_dead_owners_files_go_live_owners_stay(tmp_path: Path) -> None:
    folder = tmp_path / ".tmp"
    live, live_id = _holder(folder)
    dead, dead_id = _holder(folder)
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)
        mine = TempOwner(folder)
        (folder / (mine.prefix() + "partial")).write_bytes(b"mine")
        legacy = folder / "0123456789abcdef0123456789abcdef"  # a name from before owners: left to the grace sweep
        legacy.write_bytes(b"old")
        assert sweep_dead(folder, mine.id) == 1
        names = set(os.listdir(folder))
        assert f"{dead_id}-partial" not in names and f"{dead_id}.lock" not in names
        assert {f"{live_id}-partial", f"{live_id}.lock", f"{mine.id}-partial", f"{mine.id}.lock", legacy.name} <= names
        assert sweep_dead(folder, mine.id) == 0
    finally:
        for proc in (live, dead):
            proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
    assert sweep_dead(folder, mine.id) == 1  # now the other holder is gone too


def _tmp(root: Path) -> list[str]:
    folder = root / ".tmp"
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


async def test_kill_mid_upload_partial_removed_at_restart_other_server_untouched(pg_cluster: PgCluster,
                                                                                 tmp_path: Path) -> None:
    """Two servers on one database share a storage folder (`storage.root`); one is killed mid-upload while
    the other has an upload in flight. The killed one's partial file is gone right after its restart (grace
    still one hour); the other's upload is untouched and completes."""
    db_url = await create_database(pg_cluster, "orphan")
    shared = tmp_path / "shared-storage"
    env = external_db_env(db_url)
    a = MadbaseProcess(tmp_path / "a", env).start()
    b = MadbaseProcess(tmp_path / "b", env).start()
    sockets = []
    try:
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("update madbase_control.projects set config = config || jsonb_build_object("
                               "'storage', jsonb_build_object('root', $1::text))", str(shared))
        finally:
            await conn.close()
        headers = a.headers(key=a.service_role_key)
        async with httpx.AsyncClient(timeout=30) as c:
            deadline = time.time() + 15
            while True:  # both servers learn of the new storage root through NOTIFY
                r = await c.post(a.url + "/storage/v1/bucket", json={"id": "orphans"}, headers=headers)
                if r.status_code == 200 or time.time() > deadline:
                    break
            assert r.status_code == 200, r.text
        await wait_for(lambda: False, 1.0)
        sockets.append(start_partial_upload(b, "orphans", "live.bin", 4 * 1024 * 1024, 1024 * 1024))
        assert await wait_for(lambda: len(_tmp(shared)) == 1, 20), _tmp(shared)
        live = _tmp(shared)
        sockets.append(start_partial_upload(a, "orphans", "dead.bin", 4 * 1024 * 1024, 1024 * 1024))
        assert await wait_for(lambda: len(_tmp(shared)) == 2, 20), _tmp(shared)
        a.stop(signal.SIGKILL)
        assert len(_tmp(shared)) == 2
        a.start()
        assert await wait_for(lambda: _tmp(shared) == live, 20), (_tmp(shared), live)
        # the live upload on b finishes normally
        sock = sockets[0]
        sock.sendall(b"z" * (3 * 1024 * 1024))
        response = sock.recv(4096)
        assert b" 200 " in response.split(b"\r\n", 1)[0], response[:200]
        async with httpx.AsyncClient(timeout=30) as c:
            r = await c.get(b.url + "/storage/v1/object/info/orphans/live.bin", headers=headers)
            assert r.status_code == 200 and r.json()["size"] == 4 * 1024 * 1024, r.text
    finally:
        for s in sockets:
            s.close()
        a.stop()
        b.stop()
