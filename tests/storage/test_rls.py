"""RLS decides: a Supabase-style own-folder policy is honoured for upload, download, list, move, remove;
anon is refused on private buckets; owner/owner_id come from the JWT `sub`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.storage.conftest import user_token
from tests.support.servers import MadbaseProcess

CHECK = "bucket_id = '{b}' and (storage.foldername(name))[1] = auth.uid()::text"


async def own_folder_policies(db: Any, bucket: str) -> None:
    cond = CHECK.format(b=bucket)
    await db.execute(f'create policy "{bucket} ins" on storage.objects for insert to authenticated '
                     f"with check ({cond})")
    await db.execute(f'create policy "{bucket} sel" on storage.objects for select to authenticated using ({cond})')
    await db.execute(f'create policy "{bucket} upd" on storage.objects for update to authenticated '
                     f"using ({cond}) with check ({cond})")
    await db.execute(f'create policy "{bucket} del" on storage.objects for delete to authenticated using ({cond})')


async def test_own_folder_policy(client: httpx.AsyncClient, server: MadbaseProcess, server_db: Any,
                                 service_headers: dict[str, str], bucket: str) -> None:
    await own_folder_policies(server_db, bucket)
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    ha = server.headers(user_token(server, alice))
    hb = server.headers(user_token(server, bob))
    # upload: own folder yes, other's folder no (403 in storage's shape, before any byte is stored)
    r = await client.post(f"/object/{bucket}/{alice}/a.txt", content=b"alice", headers=ha)
    assert r.status_code == 200, r.text
    r = await client.post(f"/object/{bucket}/{bob}/evil.txt", content=b"evil", headers=ha)
    assert r.status_code == 400
    body = r.json()
    assert body["statusCode"] == "403" and body["error"] == "Unauthorized"
    assert "row-level security" in body["message"]
    r = await client.post(f"/object/{bucket}/{bob}/b.txt", content=b"bob", headers=hb)
    assert r.status_code == 200
    row = await server_db.fetchrow("select owner, owner_id from storage.objects where bucket_id = $1 and name = $2",
                                   bucket, f"{alice}/a.txt")
    assert str(row["owner"]) == alice and row["owner_id"] == alice
    # download / info / sign: only own objects are visible
    assert (await client.get(f"/object/{bucket}/{alice}/a.txt", headers=ha)).content == b"alice"
    r = await client.get(f"/object/{bucket}/{bob}/b.txt", headers=ha)
    assert r.status_code == 400 and r.json()["code"] == "NoSuchKey"
    r = await client.post(f"/object/sign/{bucket}/{bob}/b.txt", json={"expiresIn": 60}, headers=ha)
    assert r.json()["code"] == "NoSuchKey"
    # list: alice sees only her folder
    r = await client.post(f"/object/list/{bucket}", json={"prefix": ""}, headers=ha)
    assert [e["name"] for e in r.json()] == [alice]
    r = await client.post(f"/object/list/{bucket}", json={"prefix": bob}, headers=ha)
    assert r.json() == []
    # move: inside own folder yes, into bob's folder no, bob's object invisible
    r = await client.post("/object/move", json={"bucketId": bucket, "sourceKey": f"{alice}/a.txt",
                                                "destinationKey": f"{alice}/renamed.txt"}, headers=ha)
    assert r.status_code == 200, r.text
    r = await client.post("/object/move", json={"bucketId": bucket, "sourceKey": f"{alice}/renamed.txt",
                                                "destinationKey": f"{bob}/stolen.txt"}, headers=ha)
    assert r.json()["statusCode"] == "403"
    r = await client.post("/object/move", json={"bucketId": bucket, "sourceKey": f"{bob}/b.txt",
                                                "destinationKey": f"{alice}/b.txt"}, headers=ha)
    assert r.json()["code"] == "NoSuchKey"
    # upsert over bob's object is refused too
    r = await client.post(f"/object/{bucket}/{bob}/b.txt", content=b"overwrite", headers={**ha, "x-upsert": "true"})
    assert r.json()["statusCode"] == "403"
    # remove: bob's object is not removed by alice, hers is
    r = await client.request("DELETE", f"/object/{bucket}", json={"prefixes": [f"{bob}/b.txt"]}, headers=ha)
    assert r.status_code == 200 and r.json() == []
    assert (await client.get(f"/object/{bucket}/{bob}/b.txt", headers=hb)).content == b"bob"
    r = await client.request("DELETE", f"/object/{bucket}", json={"prefixes": [f"{alice}/renamed.txt"]}, headers=ha)
    assert [o["name"] for o in r.json()] == [f"{alice}/renamed.txt"]
    # the service role bypasses RLS
    r = await client.post(f"/object/list/{bucket}", json={"prefix": ""}, headers=service_headers)
    assert [e["name"] for e in r.json()] == [bob]


async def test_anon_refused_on_private_bucket(client: httpx.AsyncClient, server: MadbaseProcess,
                                              service_headers: dict[str, str], bucket: str) -> None:
    r = await client.post(f"/object/{bucket}/file.txt", content=b"data", headers=service_headers)
    assert r.status_code == 200
    anon = server.headers()
    r = await client.get(f"/object/{bucket}/file.txt", headers=anon)
    assert r.status_code == 400 and r.json()["code"] == "NoSuchKey"
    r = await client.get(f"/object/public/{bucket}/file.txt")
    assert r.json()["code"] == "NoSuchBucket"
    r = await client.post(f"/object/{bucket}/anon.txt", content=b"data", headers=anon)
    assert r.json()["statusCode"] == "403"
    r = await client.post(f"/object/list/{bucket}", json={"prefix": ""}, headers=anon)
    assert r.json() == []
    r = await client.post(f"/object/upload/sign/{bucket}/anon.txt", json={}, headers=anon)
    assert r.json()["statusCode"] == "403"


async def test_storage_operation_is_visible_to_policies(client: httpx.AsyncClient, server: MadbaseProcess,
                                                        server_db: Any, bucket: str) -> None:
    await server_db.execute(
        f'create policy "{bucket} op" on storage.objects for insert to authenticated '
        f"with check (bucket_id = '{bucket}' and current_setting('storage.operation', true) = "
        "'storage.object.upload')")
    h = server.headers(user_token(server))
    r = await client.post(f"/object/{bucket}/ok.txt", content=b"x", headers=h)
    assert r.status_code == 200, r.text
    r = await client.post(f"/object/upload/sign/{bucket}/no.txt", json={}, headers=h)
    assert r.json()["statusCode"] == "403"


async def test_bucket_policies_decide_for_users(client: httpx.AsyncClient, server: MadbaseProcess,
                                                server_db: Any, bucket_name: str) -> None:
    await server_db.execute(
        f'create policy "{bucket_name} bins" on storage.buckets for insert to authenticated '
        f"with check (id = '{bucket_name}' and owner_id = auth.uid()::text)")
    await server_db.execute(
        f'create policy "{bucket_name} bsel" on storage.buckets for select to authenticated '
        f"using (owner_id = auth.uid()::text)")
    user = str(uuid.uuid4())
    h = server.headers(user_token(server, user))
    r = await client.post("/bucket", json={"id": bucket_name, "public": False}, headers=h)
    assert r.status_code == 200, r.text
    r = await client.get(f"/bucket/{bucket_name}", headers=h)
    assert r.json()["owner"] == user and r.json()["owner_id"] == user
    assert [b["id"] for b in (await client.get("/bucket", headers=h)).json()] == [bucket_name]
    other = server.headers(user_token(server))
    assert (await client.get(f"/bucket/{bucket_name}", headers=other)).json()["code"] == "NoSuchBucket"
    r = await client.post("/bucket", json={"id": bucket_name + "-x"}, headers=h)
    assert r.json()["statusCode"] == "403"


async def test_request_gucs_seen_by_policies(client: httpx.AsyncClient, server: MadbaseProcess, server_db: Any,
                                             bucket: str) -> None:
    token = user_token(server)
    await server_db.execute(
        f'create policy "{bucket} gucs" on storage.objects for insert to authenticated with check ('
        f"bucket_id = '{bucket}' and current_setting('request.jwt', true) = '{token}' "
        "and current_setting('request.method', true) = 'POST' "
        "and auth.jwt() ->> 'aud' = 'authenticated' and auth.role() = 'authenticated')")
    r = await client.post(f"/object/{bucket}/g.txt", content=b"x", headers=server.headers(token))
    assert r.status_code == 200, r.text
