"""The REST grammar is bounded: select lists, nesting of embeds and logic trees, and the query string as a whole.

Each refusal is a 4xx in the shape its layer answers with: PostgREST's PGRST100 for a select list over
MAX_SELECT_ITEMS (PostgreSQL would otherwise refuse the target list with a 500), the gateway's 414 for a request
target over MADBASE_MAX_URL_BYTES (before anything is parsed)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from madbase.rest.parser import MAX_DEPTH, MAX_SELECT_ITEMS
from tests.security.conftest import Project, no_500
from tests.security.rawhttp import address, read_response, send_all


@pytest.fixture(scope="module")
def wide(project_a: Project) -> Project:
    project_a.sql("create table if not exists public.grammar_wide (id int primary key, c1 int, c2 text); "
                  "grant select on public.grammar_wide to anon; "
                  "insert into public.grammar_wide values (1, 2, 'x') on conflict do nothing")
    with httpx.Client(timeout=10) as client:
        deadline = time.time() + 15
        while client.get(project_a.url + "/rest/v1/grammar_wide",
                         headers=project_a.headers()).status_code != 200 and time.time() < deadline:
            time.sleep(0.2)
    return project_a


def _get(client: httpx.Client, project: Project, query: str) -> httpx.Response:
    return no_500(client.get(project.url + "/rest/v1/grammar_wide" + query, headers=project.headers()))


@pytest.mark.parametrize("select", [
    ",".join("id" for _ in range(3000)),                 # one column many times
    ",".join(f"a{i}:id" for i in range(2000)),           # many aliases
    "id,grammar_wide(" + ",".join(f"b{i}:id" for i in range(1200)) + ")",  # inside an embed
])
def test_a_select_list_over_the_bound_is_a_400(wide: Project, client: httpx.Client, select: str) -> None:
    r = _get(client, wide, "?select=" + select)
    assert r.status_code == 400, r.text[:300]
    body = r.json()
    assert body["code"] == "PGRST100"
    assert body["details"] == f"more than {MAX_SELECT_ITEMS} items selected"


def test_a_select_list_within_the_bound_works(wide: Project, client: httpx.Client) -> None:
    r = _get(client, wide, "?select=" + ",".join(f"a{i}:id" for i in range(500)))
    assert r.status_code == 200, r.text[:300]
    assert r.json()[0]["a499"] == 1


@pytest.mark.parametrize("query", [
    "?select=" + "grammar_wide(" * (MAX_DEPTH + 5) + "id" + ")" * (MAX_DEPTH + 5),
    "?and=(" + "and(" * (MAX_DEPTH + 5) + "id.eq.1" + ")" * (MAX_DEPTH + 5) + ")",
    "?or=(" + "not.or(" * (MAX_DEPTH + 5) + "id.eq.1" + ")" * (MAX_DEPTH + 5) + ")",
])
def test_deep_nesting_is_a_400(wide: Project, client: httpx.Client, query: str) -> None:
    r = _get(client, wide, query)
    assert r.status_code == 400, r.text[:300]
    assert r.json()["code"] == "PGRST100"


def test_a_twelve_thousand_column_select_is_refused_before_parsing(wide: Project) -> None:
    select = ",".join(f"c{i}" for i in range(12_000))  # ~78 KB: over the request-target bound
    host, port = address(wide.url)
    head = [f"GET /rest/v1/grammar_wide?select={select} HTTP/1.1", f"Host: {host}:{port}",
            *(f"{k}: {v}" for k, v in wide.headers().items())]
    with socket.create_connection((host, port)) as sock:
        send_all(sock, ("\r\n".join(head) + "\r\n\r\n").encode())
        status, raw = read_response(sock)
    assert status == 414, raw[:300]
