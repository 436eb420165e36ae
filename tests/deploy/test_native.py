"""The compose topology run natively (deploy/native/run.sh): nginx in front of two `madbase start` processes.

Balancing without affinity (refresh-token rotation and TUS resume across processes), unbuffered streaming
through nginx with flat memory, WebSocket upgrade, the client IP taken from X-Forwarded-For only when nginx
(the trusted proxy) sends it, tracing headers echoed; and the HA behaviour: kill -9 of a process under
write load loses no acknowledged write, a rolling restart drops no request, a PostgreSQL restart gives
clean 503s and the processes recover by themselves.

Sizes are kept small for CI (64 MB up and down); MADBASE_DEPLOY_FULL=1 streams 1 GB each way instead.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import psutil

from tests.deploy.conftest import PROXY_BIND, Topology
from tests.realtime.conftest import user_token
from tests.realtime.test_changes import _changes, _no_change, _setup
from tests.realtime.wsclient import RawClient

FULL = os.environ.get("MADBASE_DEPLOY_FULL") == "1"
SIZE = (1024 if FULL else 64) * 2**20  # streamed up, then down
BLOCK = 2**20


async def _table(topology: Topology) -> str:
    name = "ha_" + uuid.uuid4().hex[:10]
    db = await asyncpg.connect(topology.db_url)
    try:
        await _setup(db, name)
        await db.execute(f"grant insert, update on public.{name} to anon")
        await db.execute("notify pgrst, 'reload schema'")
    finally:
        await db.close()
    await asyncio.sleep(0.5)  # both processes reload their schema cache on the notification
    return name


async def test_requests_spread_over_both_processes(topology: Topology) -> None:
    before = len(topology.access_log())
    async with httpx.AsyncClient(base_url=topology.url, timeout=10) as http:
        for _ in range(20):
            r = await http.get("/rest/v1/", headers=topology.headers())
            assert r.status_code == 200
            # tracing: a generated trace context and correlation id come back
            assert r.headers["traceparent"].startswith("00-") and r.headers["x-correlation-id"]
    upstreams = {str(e["upstream"]) for e in topology.access_log()[before:]}
    assert {f"127.0.0.1:{p}" for p in topology.ports} <= upstreams


async def test_refresh_token_rotation_across_processes(topology: Topology) -> None:
    email = f"u{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(timeout=20) as http:
        r = await http.post(topology.url + "/auth/v1/signup", json={"email": email, "password": "pw-123456!"},
                            headers=topology.headers())
        assert r.status_code == 200, r.text
        refresh = r.json()["refresh_token"]
        seen = {refresh}
        for round_ in range(4):  # each rotation on the other process than the previous one
            base = topology.direct(1 + round_ % 2)
            r = await http.post(base + "/auth/v1/token?grant_type=refresh_token", json={"refresh_token": refresh},
                                headers=topology.headers())
            assert r.status_code == 200, r.text
            refresh = r.json()["refresh_token"]
            assert refresh not in seen
            seen.add(refresh)
            user = await http.get(topology.direct(2 - round_ % 2) + "/auth/v1/user",
                                  headers=topology.headers(r.json()["access_token"]))
            assert user.status_code == 200 and user.json()["email"] == email


def _meta(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


async def test_tus_upload_resumes_on_the_other_process(topology: Topology) -> None:
    h = topology.headers(service=True)
    bucket = "tus-" + uuid.uuid4().hex[:8]
    data = os.urandom(3 * 2**20)
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.post(topology.url + "/storage/v1/bucket", json={"id": bucket}, headers=h)
        assert r.status_code == 200, r.text
        tus = {**h, "Tus-Resumable": "1.0.0"}
        r = await http.post(topology.direct(1) + "/storage/v1/upload/resumable", headers={
            **tus, "Upload-Length": str(len(data)),
            "Upload-Metadata": _meta(bucketName=bucket, objectName="a/b.bin", contentType="application/octet-stream")})
        assert r.status_code == 201, r.text
        path = httpx.URL(r.headers["location"]).path
        patch = {**tus, "Content-Type": "application/offset+octet-stream"}
        r = await http.patch(topology.direct(1) + path, content=data[: 2**20],
                             headers={**patch, "Upload-Offset": "0"})
        assert r.status_code == 204, r.text
        r = await http.head(topology.direct(2) + path, headers=tus)
        assert r.headers["upload-offset"] == str(2**20)
        r = await http.patch(topology.direct(2) + path, content=data[2**20:],
                             headers={**patch, "Upload-Offset": str(2**20)})
        assert r.status_code == 204, r.text
        r = await http.get(topology.url + f"/storage/v1/object/{bucket}/a/b.bin", headers=h)
        assert r.status_code == 200 and r.content == data


async def test_admin_session_and_changes_across_processes(topology: Topology) -> None:
    """The control plane's admin: a session opened on one process works on the other, a token created there
    works on the first, an admin created on one is listed by the other, a logout on one ends it everywhere."""
    log = topology.log(1)
    email = re.search(r"Admin created: (\S+)", log)
    password = re.search(r"Admin password: (\S+)", log)
    assert email and password, "the first start prints the first admin"
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(topology.direct(1) + "/admin/v1/login",
                            json={"email": email.group(1), "password": password.group(1)})
        assert r.status_code == 200, r.text
        csrf = r.json()["csrf_token"]
        cookie = {"Cookie": r.headers["set-cookie"].split(";", 1)[0]}
        me = await http.get(topology.direct(2) + "/admin/v1/me", headers=cookie)
        assert me.status_code == 200 and me.json()["email"] == email.group(1)
        r = await http.post(topology.direct(2) + "/admin/v1/me/tokens", json={"name": "ha"},
                            headers={**cookie, "x-csrf-token": csrf})
        assert r.status_code == 201, r.text
        bearer = {"Authorization": "Bearer " + r.json()["token"]}
        new = f"ops-{uuid.uuid4().hex[:8]}@example.com"
        r = await http.post(topology.direct(1) + "/admin/v1/admins", json={"email": new}, headers=bearer)
        assert r.status_code == 201, r.text
        listed = await http.get(topology.direct(2) + "/admin/v1/admins", headers=bearer)
        assert listed.status_code == 200 and new in listed.text
        out = await http.post(topology.direct(2) + "/admin/v1/logout", headers={**cookie, "x-csrf-token": csrf})
        assert out.status_code == 204, out.text
        assert (await http.get(topology.direct(1) + "/admin/v1/me", headers=cookie)).status_code == 401


async def _session_ip(topology: Topology, email: str) -> str:
    db = await asyncpg.connect(topology.db_url)
    try:
        ip = await db.fetchval("select s.ip::text from auth.sessions s join auth.users u on u.id = s.user_id "
                               "where u.email = $1 order by s.created_at desc limit 1", email)
    finally:
        await db.close()
    return str(ip).split("/")[0]


async def test_client_ip_from_forwarded_for_only_via_the_trusted_proxy(topology: Topology) -> None:
    """nginx connects from 127.0.0.2 (the only trusted proxy) and appends the client's address; a client's own
    X-Forwarded-For is not believed, neither through nginx nor directly."""
    spoof = {"X-Forwarded-For": "203.0.113.9"}
    email = f"ip{uuid.uuid4().hex[:8]}@example.com"
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
    async with httpx.AsyncClient(transport=transport, timeout=20) as via_client_addr, \
            httpx.AsyncClient(timeout=20) as http:
        r = await via_client_addr.post(topology.url + "/auth/v1/signup",
                                       json={"email": email, "password": "pw-1234567"},
                                       headers={**topology.headers(), **spoof})
        assert r.status_code == 200, r.text
        assert await _session_ip(topology, email) == "127.0.0.3"
        r = await http.post(topology.direct(1) + "/auth/v1/token?grant_type=password",
                            json={"email": email, "password": "pw-1234567"}, headers={**topology.headers(), **spoof})
        assert r.status_code == 200, r.text
        assert await _session_ip(topology, email) == "127.0.0.1"
    assert PROXY_BIND == "127.0.0.2"


async def test_realtime_websocket_through_nginx(topology: Topology) -> None:
    table = await _table(topology)
    client = await RawClient.open(topology.url, topology.anon_key)
    db = await asyncpg.connect(topology.db_url)
    try:
        await client.join("realtime:deploy", {"postgres_changes": [{"event": "INSERT", "schema": "public",
                                                                      "table": table}]})
        await asyncio.sleep(0.5)
        await db.execute(f"insert into public.{table} (id, title) values (1, 'through nginx')")
        got = await _changes(client, 1, 20)
        assert got[0]["data"]["record"]["title"] == "through nginx"
    finally:
        await client.close()
        await db.close()


class _Peak:
    """Peak RSS (sum) of a set of processes, sampled every 50 ms."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        return sum(p.memory_info().rss for p in self.procs if p.is_running())

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _nginx_pids(topology: Topology) -> list[int]:
    master = psutil.Process(int((topology.dir / "nginx.pid").read_text()))
    return [master.pid, *(c.pid for c in master.children())]


async def test_streaming_through_nginx_keeps_memory_flat(topology: Topology) -> None:
    h = topology.headers(service=True)
    bucket = "big-" + uuid.uuid4().hex[:8]
    block = os.urandom(BLOCK)
    async with httpx.AsyncClient(base_url=topology.url + "/storage/v1", timeout=600) as http:
        assert (await http.post("/bucket", json={"id": bucket}, headers=h)).status_code == 200
        await http.post(f"/object/{bucket}/warm.bin", content=os.urandom(4 * BLOCK), headers=h)
        await http.get(f"/object/{bucket}/warm.bin", headers=h)
        pids = [topology.pid(1), topology.pid(2), *_nginx_pids(topology)]

        async def body(total: int) -> AsyncIterator[bytes]:
            for _ in range(total // BLOCK):
                yield block

        with _Peak(pids) as up:
            started = time.perf_counter()
            r = await http.post(f"/object/{bucket}/down.bin", content=body(SIZE),
                                headers={**h, "content-type": "application/octet-stream"})
            up_s = time.perf_counter() - started
        assert r.status_code == 200, r.text
        digest = hashlib.sha256()
        size = 0
        with _Peak(pids) as down:
            started = time.perf_counter()
            async with http.stream("GET", f"/object/{bucket}/down.bin", headers=h) as resp:
                assert resp.status_code == 200
                async for chunk in resp.aiter_raw():
                    digest.update(chunk)
                    size += len(chunk)
            down_s = time.perf_counter() - started
    expected = hashlib.sha256(block * (SIZE // BLOCK)).hexdigest()
    assert size == SIZE and digest.hexdigest() == expected
    mb = SIZE / 2**20
    print(f"\nthrough nginx: {mb:.0f} MB up {mb / up_s:.0f} MB/s (RSS +{up.growth_mb:.1f} MB), "
          f"down {mb / down_s:.0f} MB/s (RSS +{down.growth_mb:.1f} MB), nginx + 2 processes")
    assert up.growth_mb < 40 and down.growth_mb < 40


class _Writers:
    """`n` clients inserting rows through nginx as fast as they can; remembers what was acknowledged."""

    def __init__(self, topology: Topology, table: str, n: int = 4) -> None:
        self.topology, self.table, self.n = topology, table, n
        self.acked: list[int] = []
        self.failed: list[tuple[int, str]] = []
        self._next = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _one(self) -> None:
        async with httpx.AsyncClient(base_url=self.topology.url, timeout=30) as http:
            while not self._stop.is_set():
                self._next += 1
                row = self._next
                try:
                    r = await http.post(f"/rest/v1/{self.table}", json={"id": row, "title": "w"},
                                        headers={**self.topology.headers(service=True), "Prefer": "return=minimal"})
                except httpx.HTTPError as exc:
                    self.failed.append((row, type(exc).__name__))
                    continue
                if r.status_code == 201:
                    self.acked.append(row)
                else:
                    self.failed.append((row, f"{r.status_code} {r.text[:100]}"))

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._one()) for _ in range(self.n)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def stored(self) -> set[int]:
        db = await asyncpg.connect(self.topology.db_url)
        try:
            return {r["id"] for r in await db.fetch(f"select id from public.{self.table}")}
        finally:
            await db.close()


async def test_kill9_under_write_load_loses_no_acknowledged_write(topology: Topology) -> None:
    table = await _table(topology)
    writers = _Writers(topology, table)
    writers.start()
    try:
        await asyncio.sleep(1.5)
        os.kill(topology.pid(2), signal.SIGKILL)
        killed_at = len(writers.acked)
        await asyncio.sleep(2.0)
    finally:
        await writers.stop()
    try:
        stored = await writers.stored()
        assert set(writers.acked) <= stored, "an acknowledged write is missing"
        assert len(writers.acked) > killed_at + 10, "writes did not go on on the surviving process"
        # only the requests in flight on the killed process may fail (one per writer at most)
        assert len(writers.failed) <= writers.n, writers.failed
    finally:
        await asyncio.to_thread(topology.ensure_up)


async def test_realtime_subscriber_of_a_killed_process_rejoins_through_nginx(topology: Topology) -> None:
    """A subscriber's process is killed (-9); the client reconnects through nginx (which now reaches the other
    process), re-joins within the grace window and gets every change committed meanwhile, in order, once."""
    table = "rt_" + uuid.uuid4().hex[:10]
    me, someone = str(uuid.uuid4()), str(uuid.uuid4())
    token = user_token(topology, me)  # type: ignore[arg-type]
    cfg = {"postgres_changes": [{"event": "*", "schema": "public", "table": table}]}
    db = await asyncpg.connect(topology.db_url)
    first = await RawClient.open(topology.direct(2), topology.anon_key)
    second: RawClient | None = None
    try:
        await _setup(db, table, rls=True)

        async def commit(i: int) -> None:  # my row, then someone else's (never delivered to me)
            await db.execute(f"insert into {table} (id, owner, title) values ($1, $2, 'x')", i, me)
            await db.execute(f"insert into {table} (id, owner) values ($1, $2)", 1000 + i, someone)

        await first.join("realtime:ha", cfg, token)
        await asyncio.sleep(0.5)
        await commit(1)
        assert [c["data"]["record"]["id"] for c in await _changes(first, 1, 20)] == [1]
        os.kill(topology.pid(2), signal.SIGKILL)
        await first.close()
        for i in range(2, 6):
            await commit(i)
        second = await RawClient.open(topology.url, topology.anon_key)
        reply = await second.join("realtime:ha", cfg, token)
        assert reply["payload"]["status"] == "ok", reply
        await commit(6)
        got = [c["data"]["record"]["id"] for c in await _changes(second, 5, 30)]
        assert got == [2, 3, 4, 5, 6], got
        await _no_change(second, 1.0)
    finally:
        await first.close()
        if second is not None:
            await second.close()
        await db.close()
        await asyncio.to_thread(topology.ensure_up)


async def test_sigterm_turns_readiness_off_first_then_drains(topology: Topology) -> None:
    """MADBASE_DRAIN_SECONDS=1 here: right after SIGTERM the process still serves requests, but /ready says 503
    and responses close their connection; then it stops accepting and exits."""
    pid = topology.pid(2)
    base = topology.direct(2)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            deadline = time.monotonic() + 60  # a previous test may have just restarted it: wait until it is up
            while True:
                try:
                    if (await http.get(base + "/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "process 2 never became ready"
                await asyncio.sleep(0.2)
            pid = topology.pid(2)
            os.kill(pid, signal.SIGTERM)
            await asyncio.sleep(0.2)
            ready = await http.get(base + "/ready")
            served = await http.get(base + "/rest/v1/", headers=topology.headers())
            assert ready.status_code == 503 and ready.json()["message"] == "shutting down"
            assert served.status_code == 200 and served.headers["connection"] == "close"
        await asyncio.to_thread(psutil.Process(pid).wait, 30)
    finally:
        await asyncio.to_thread(topology.ensure_up)


async def test_rolling_restart_drops_no_request(topology: Topology) -> None:
    table = await _table(topology)
    writers = _Writers(topology, table)
    reads: list[int] = []

    async def reader() -> None:
        async with httpx.AsyncClient(base_url=topology.url, timeout=30) as http:
            while not writers._stop.is_set():
                try:
                    r = await http.get(f"/rest/v1/{table}?select=id&limit=1", headers=topology.headers())
                    reads.append(r.status_code)
                except httpx.HTTPError:
                    reads.append(0)

    writers.start()
    read_task = asyncio.create_task(reader())
    try:
        for index in (1, 2) if FULL else (2,):  # CI: one process (each restart costs a start, ~10-30 s here)
            await asyncio.to_thread(topology.run, "restart", str(index))
            await asyncio.sleep(0.5)
    finally:
        await writers.stop()
        await read_task
    assert writers.failed == [], writers.failed[:5]
    assert reads and set(reads) == {200}, {s: reads.count(s) for s in set(reads)}
    assert set(writers.acked) <= await writers.stored()


async def test_postgres_restart_gives_clean_503s_then_recovers(topology: Topology) -> None:
    table = await _table(topology)
    statuses: list[int] = []
    stop = asyncio.Event()

    async def load() -> None:
        async with httpx.AsyncClient(base_url=topology.url, timeout=30) as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    r = await http.get(f"/rest/v1/{table}?select=id", headers=topology.headers())
                except httpx.HTTPError:
                    statuses.append(-1)
                    continue
                assert time.monotonic() - started < 15, "a request hung during the outage"
                statuses.append(r.status_code)
                if r.status_code >= 500:
                    assert r.status_code == 503, r.text
                    assert r.headers["content-type"].startswith("application/json"), r.text
                    await asyncio.sleep(0.05)

    task = asyncio.create_task(load())
    try:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(topology.cluster.stop)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(topology.cluster.start)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # recovered: a run of successes after the restart
            if len(statuses) > 20 and statuses[-20:] == [200] * 20:
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    assert 503 in statuses, "the outage was not noticed"
    assert -1 not in statuses, "a connection failed instead of a clean 503"
    assert statuses[-20:] == [200] * 20, statuses[-40:]
    async with httpx.AsyncClient(timeout=10) as http:
        for index in (1, 2):
            assert (await http.get(topology.direct(index) + "/ready")).status_code == 200
