"""`str.isdigit()` accepts `²` and `٣`, which `int()` then refuses or reads as another number: every place that
reads a number from a request must take ASCII digits only and answer a clear 4xx otherwise."""

from __future__ import annotations

import httpx
import pytest

from tests.security.conftest import Project, no_500

HOSTILE = ["²", "٣", "1²", "١٢", "9" * 40]


@pytest.mark.parametrize("value", HOSTILE)
def test_rest_numbers_are_ascii(project_a: Project, client: httpx.Client, value: str) -> None:
    base = project_a.url + "/rest/v1/no_such_table_but_parsed_first"
    for params in ({"limit": value}, {"offset": value}, {"select": f"data->{value}"}):
        r = no_500(client.get(base, params=params, headers=project_a.headers()))
        assert 400 <= r.status_code < 500, (params, r.status_code, r.text)
    prefer = f"handling=strict, max-affected={value}".encode()  # raw UTF-8 bytes in the header
    headers: dict[str, str | bytes] = {**project_a.headers("service_role"), "Prefer": prefer}
    r = no_500(client.delete(base, params={"id": "eq.1"}, headers=headers))
    assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize("value", HOSTILE)
def test_admin_inbox_numbers_are_ascii(project_a: Project, client: httpx.Client, value: str) -> None:
    base = f"{project_a.url}/admin/v1/projects/{project_a.ref}/inbox"
    r = no_500(client.get(base, params={"limit": value}, headers=project_a.server.admin_headers()))
    assert r.status_code == 400, r.text
    r = no_500(client.get(f"{base}/{value}", headers=project_a.server.admin_headers()))
    assert r.status_code == 404, r.text
