"""One anonymous client must not be able to take a project offline with slow queries.

- the API roles have Supabase's statement timeouts (anon 3 s, authenticated 8 s, service_role none), applied in
  every request transaction (a role setting does not apply on SET ROLE), configurable per project; a timeout is
  answered as PostgREST answers 57014;
- a request whose client goes away has its query cancelled and its pool slot freed;
- abandoned slow requests do not starve the project's other requests, and one client IP flooding the pool with
  slow requests does not keep other clients waiting.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.security.conftest import Project, no_500, run_sql
from tests.support.servers import MadbaseProcess, create_database, external_db_env

SLOW_FN = """
create or replace function public.mb_sleep(s float8) returns int language sql stable as
$$ select 1 from pg_sleep(s) $$;
grant execute on function public.mb_sleep(float8) to anon, authenticated, service_role;
"""


def _install(project: Project, client: httpx.Client) -> None:
    project.sql(SLOW_FN)
    deadline = time.time() + 15
    while time.time() < deadline:  # the schema cache learns of the function
        r = client.get(project.url + "/rest/v1/rpc/mb_sleep?s=0", headers=project.headers())
        if r.status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(r.text)


@pytest.fixture(scope="module")
def slow_a(project_a: Project) -> Project:
    with httpx.Client(timeout=30) as client:
        _install(project_a, client)
    return project_a


@pytest.fixture(scope="module")
def slow_b(project_b: Project) -> Project:
    with httpx.Client(timeout=30) as client:
        _install(project_b, client)
    return project_b


def _sleep(client: httpx.Client, project: Project, seconds: float, role: str = "anon",
           tx: bool = False, token: str | None = None) -> tuple[httpx.Response, float]:
    headers = project.headers(role, token=token)
    if tx:  # not one statement: the request_transaction path (BEGIN, settings, statement, ROLLBACK)
        headers["Prefer"] = "tx=rollback"
    started = time.monotonic()
    r = client.get(project.url + f"/rest/v1/rpc/mb_sleep?s={seconds}", headers=headers)
    return r, time.monotonic() - started


def _assert_timeout(r: httpx.Response) -> None:
    # PostgREST answers 57014 with 500 (mapSQLtoHTTP: class 57 is 500) and the server's message
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["code"] == "57014", body
    assert body["message"] == "canceling statement due to statement timeout", body
    assert r.headers.get("proxy-status") == "PostgREST; error=57014"
    for leak in ("Traceback", "asyncpg", "pg_sleep"):
        assert leak not in r.text


@pytest.mark.parametrize("tx", [False, True], ids=["one-statement", "transaction"])
def test_anon_requests_stop_after_three_seconds(slow_a: Project, client: httpx.Client, tx: bool) -> None:
    r, took = _sleep(client, slow_a, 20, tx=tx)
    _assert_timeout(r)
    assert 2.5 < took < 6, took


def test_authenticated_requests_stop_after_eight_seconds(slow_a: Project, client: httpx.Client) -> None:
    token = slow_a.user_token("00000000-0000-0000-0000-0000000000aa")
    r, took = _sleep(client, slow_a, 4, role="authenticated", token=token)
    assert r.status_code == 200, r.text  # longer than anon's 3 s is fine
    r, took = _sleep(client, slow_a, 30, role="authenticated", token=token, tx=True)
    _assert_timeout(r)
    assert 7.5 < took < 12, took


def test_service_role_has_no_timeout(slow_a: Project, client: httpx.Client) -> None:
    r, took = _sleep(client, slow_a, 3.5, role="service_role")
    assert r.status_code == 200, r.text
    assert took >= 3.5


def test_the_timeouts_are_configurable_per_project(slow_a: Project, slow_b: Project, client: httpx.Client) -> None:
    slow_b.set_config({"statement_timeouts": {"anon": "1s", "service_role": "1500ms"}})
    try:
        deadline = time.time() + 15
        while True:  # the server learns of the change through NOTIFY
            r, took = _sleep(client, slow_b, 2)
            if r.status_code == 500 or time.time() > deadline:
                break
        _assert_timeout(r)
        assert took < 2, took
        r, _ = _sleep(client, slow_b, 2.5, role="service_role", tx=True)
        _assert_timeout(r)
        # the other project keeps Supabase's defaults
        r, _ = _sleep(client, slow_a, 2)
        assert r.status_code == 200, r.text
    finally:
        slow_b.set_config({"statement_timeouts": None})
    deadline = time.time() + 15
    while True:
        r, _ = _sleep(client, slow_b, 1.5)
        if r.status_code == 200 or time.time() > deadline:
            break
    assert r.status_code == 200, r.text


def test_the_roles_carry_supabases_settings(slow_a: Project) -> None:
    rows = slow_a.sql("select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole "
                      "where s.setdatabase = (select oid from pg_database where datname = current_database()) "
                      "order by 1", fetch=True)
    settings = {row["rolname"]: row["setconfig"] for row in rows}
    assert "statement_timeout=3s" in settings["anon"]
    assert "statement_timeout=8s" in settings["authenticated"]
    assert "service_role" not in settings


def _active_sleeps(project: Project) -> int:
    return int(project.sql("select count(*) from pg_stat_activity where datname = current_database() "
                           "and wait_event = 'PgSleep' and pid <> pg_backend_pid()", fetch=True)[0][0])


def _abandon(project: Project, path: str, headers: dict[str, str], linger: float = 0.5) -> None:
    """Send a GET, wait `linger` seconds, and go away without reading the answer."""
    host, port = project.url.removeprefix("http://").split(":")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"] + [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        time.sleep(linger)


def _wait_no_sleepers(project: Project, within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if _active_sleeps(project) == 0:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{_active_sleeps(project)} queries still running {within} s after their clients left")


@pytest.mark.parametrize("tx", [False, True], ids=["one-statement", "transaction"])
def test_a_query_is_cancelled_when_its_client_goes_away(slow_a: Project, tx: bool) -> None:
    headers = slow_a.headers("service_role")  # no statement timeout: only the disconnect can stop it
    if tx:
        headers["Prefer"] = "tx=rollback"
    _abandon(slow_a, "/rest/v1/rpc/mb_sleep?s=60", headers)
    _wait_no_sleepers(slow_a, 5)


def test_abandoned_slow_requests_do_not_take_the_project_offline(slow_a: Project, client: httpx.Client) -> None:
    headers = slow_a.headers("service_role")
    with ThreadPoolExecutor(16) as pool:  # more abandoned requests than the pool has connections
        list(pool.map(lambda _: _abandon(slow_a, "/rest/v1/rpc/mb_sleep?s=60", headers, 1.0), range(16)))
    started = time.monotonic()
    r = no_500(client.get(slow_a.url + "/rest/v1/rpc/mb_sleep?s=0", headers=slow_a.headers()))
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 2
    _wait_no_sleepers(slow_a, 5)


# -- one client's slow requests and everybody else ----------------------------------------------------------------

@pytest.fixture(scope="module")
def share_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    """A server of its own with a small pool and a trusted proxy, so the test can speak for several client IPs."""
    db_url = asyncio.run(create_database(pg_cluster, "share"))
    env = external_db_env(db_url, MADBASE_POOL_SIZE="4", MADBASE_TRUSTED_PROXIES="127.0.0.1")
    proc = MadbaseProcess(Path(tmp_path_factory.mktemp("share-server")), env).start()
    try:
        run_sql(proc.db_url, SLOW_FN)
        yield proc
    finally:
        proc.stop()


def test_one_client_cannot_hold_the_whole_pool(share_server: MadbaseProcess) -> None:
    url = share_server.url + "/rest/v1/rpc/mb_sleep"
    flood = {**share_server.headers(), "x-forwarded-for": "203.0.113.7"}
    other = {**share_server.headers(), "x-forwarded-for": "198.51.100.9"}
    with httpx.Client(timeout=30) as client:
        deadline = time.time() + 15
        while client.get(url + "?s=0", headers=other).status_code != 200 and time.time() < deadline:
            time.sleep(0.2)
        with ThreadPoolExecutor(12) as pool:
            # twelve slow requests from one client against a pool of four: it holds two at most
            flooding = [pool.submit(client.get, url + "?s=2.5", headers=flood) for _ in range(12)]
            time.sleep(0.5)
            started = time.monotonic()
            r = client.get(url + "?s=0", headers=other)
            took = time.monotonic() - started
            assert r.status_code == 200, r.text
            # without the share the request would queue behind the whole flood (≥ 2.5 s)
            assert took < 1.5, took
            statuses = [f.result().status_code for f in flooding]
    # the flood itself is served in turn (within the pool's acquire timeout) or refused as unavailable
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 4


def test_a_role_setting_in_the_database_is_honoured(pg_cluster: PgCluster,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    """`alter role anon in database … set statement_timeout` (Supabase's way) is what the requests get; the
    migration leaves an operator's own setting alone."""
    db_url = asyncio.run(create_database(pg_cluster, "roleset"))
    dbname = db_url.rsplit("/", 1)[1]
    run_sql(db_url, "do $$ begin create role anon nologin noinherit; exception when duplicate_object then null; "
                    "end $$")
    run_sql(db_url, f"alter role anon in database \"{dbname}\" set statement_timeout = '1500ms'")
    proc = MadbaseProcess(Path(tmp_path_factory.mktemp("roleset-server")), external_db_env(db_url)).start()
    try:
        run_sql(proc.db_url, SLOW_FN)
        with httpx.Client(timeout=30) as client:
            url = proc.url + "/rest/v1/rpc/mb_sleep"
            deadline = time.time() + 15
            while client.get(url + "?s=0", headers=proc.headers()).status_code != 200 and time.time() < deadline:
                time.sleep(0.2)
            started = time.monotonic()
            r = client.get(url + "?s=10", headers=proc.headers())
            took = time.monotonic() - started
        _assert_timeout(r)
        assert 1.2 < took < 2.8, took
    finally:
        proc.stop()
        run_sql(db_url, f"alter role anon in database \"{dbname}\" reset statement_timeout")


def test_storage_requests_get_the_roles_timeout_too(share_server: MadbaseProcess) -> None:
    """Storage's request transactions run as the caller's role: a slow RLS policy stops at anon's 3 s and is
    answered in Storage's shape."""
    run_sql(share_server.db_url, """
        create policy slow_listing on storage.objects for select to anon using (public.mb_sleep(20) = 1);
    """)
    service = {"apikey": share_server.service_role_key, "Authorization": f"Bearer {share_server.service_role_key}"}
    with httpx.Client(timeout=30) as client:
        r = client.post(share_server.url + "/storage/v1/bucket", headers=service,
                        json={"name": "slowb", "public": True})
        assert r.status_code == 200, r.text
        r = client.post(share_server.url + "/storage/v1/object/slowb/a.txt",
                        headers={**service, "content-type": "text/plain"}, content=b"x")
        assert r.status_code == 200, r.text
        started = time.monotonic()
        r = client.post(share_server.url + "/storage/v1/object/list/slowb", headers=share_server.headers(),
                        json={"prefix": ""})
        took = time.monotonic() - started
    assert r.status_code == 500, r.text
    assert r.json()["error"] == "DatabaseTimeout", r.text
    assert 2.5 < took < 6, took
