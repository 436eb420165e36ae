"""Storage on the request kit: Server-Timing stages (opt-in per project), the stage histogram, and a body that
passes the JSON limit refused with storage's own error."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.support.servers import MadbaseProcess


async def test_server_timing_stages_and_stage_histogram(client: httpx.AsyncClient, server: MadbaseProcess,
                                                        server_db: Any, service_headers: dict[str, str],
                                                        bucket: str) -> None:
    assert (await client.post(f"/object/{bucket}/t.txt", content=b"timed", headers=service_headers)).status_code == 200
    first = await client.get(f"/object/{bucket}/t.txt", headers=service_headers)
    assert "server-timing" not in first.headers  # off unless the project enables it
    await server_db.execute("update madbase_control.projects set config = config || "
                            "'{\"server_timing_enabled\": true}'::jsonb")
    try:
        deadline = time.time() + 10
        while True:
            r = await client.get(f"/object/{bucket}/t.txt", headers=service_headers)
            if "server-timing" in r.headers or time.time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert r.content == b"timed"
        stages = [p.split(";")[0] for p in r.headers["server-timing"].split(", ")]
        assert stages == ["route", "db", "backend", "handler"]
        missing = await client.get(f"/object/{bucket}/nope.txt", headers=service_headers)
        assert missing.status_code == 400 and missing.json()["code"] == "NoSuchKey"
        assert "server-timing" in missing.headers  # refusals are timed too
    finally:
        await server_db.execute("update madbase_control.projects set config = config - 'server_timing_enabled'")
    metrics = (await client.get(server.url + "/metrics")).text
    assert 'madbase_http_stage_duration_seconds_count{service="storage",stage="db"}' in metrics
    assert 'madbase_http_stage_duration_seconds_count{service="storage",stage="send"}' in metrics


async def test_json_bodies_are_bounded_and_checked(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                   bucket: str) -> None:
    big = b'{"prefixes": ["' + b"x" * (1024 * 1024 + 10) + b'"]}'
    r = await client.request("DELETE", f"/object/{bucket}", content=big, headers=service_headers)
    assert r.status_code == 400 and r.json()["message"] == "Request body too large"
    r = await client.post("/bucket", content=b"{not json", headers=service_headers)
    assert r.status_code == 400 and r.json()["message"] == "Body is not valid JSON"
    r = await client.post("/bucket", content=b"[1]", headers=service_headers)
    assert r.status_code == 400 and r.json()["message"] == "Body must be a JSON object"
    r = await client.request("PATCH", "/bucket", headers=service_headers)
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
