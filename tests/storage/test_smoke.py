from __future__ import annotations

import httpx


async def test_bucket_and_object_roundtrip(client: httpx.AsyncClient, service_headers: dict[str, str],
                                           bucket: str) -> None:
    r = await client.post(f"/object/{bucket}/a/b.txt", content=b"hello",
                          headers={**service_headers, "content-type": "text/plain"})
    assert r.status_code == 200, r.text
    r = await client.get(f"/object/{bucket}/a/b.txt", headers=service_headers)
    assert r.status_code == 200, r.text
    assert r.content == b"hello"
