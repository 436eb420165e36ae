"""Buckets and objects through /admin/v1 (storage/adminroutes.py on storage's own handlers and backend):
create, list, get, update, upload, list by prefix, download, delete one and many, empty, delete (forced) —
one audit record per change, Storage's refusals in the `{"message"}` shape."""

from __future__ import annotations

import uuid

import httpx

from tests.admin.ops.conftest import Admin, audit_count
from tests.support.servers import MadbaseProcess

B = "/projects/{ref}/buckets"


def test_bucket_and_object_lifecycle(platform: Admin, ops_server: MadbaseProcess) -> None:
    name = f"b-{uuid.uuid4().hex[:8]}"
    before = audit_count(ops_server)
    r = platform.post(B, json={"name": name, "public": False, "file_size_limit": 1000})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == name and r.json()["public"] is False and r.json()["file_size_limit"] == 1000
    assert platform.post(B, json={"name": name}).status_code in (400, 409)
    assert name in [b["id"] for b in platform.get(B).json()["buckets"]]
    r = platform.patch(B + "/" + name, json={"public": True})
    assert r.status_code == 200 and r.json()["public"] is True
    # objects
    for key in ("a.txt", "dir/b.txt", "dir/c.txt"):
        r = platform.post(B + f"/{name}/objects/{key}", content=key.encode(),
                          headers={"content-type": "text/plain"})
        assert r.status_code == 201, r.text
    r = platform.post(B + f"/{name}/objects/big.bin", content=b"x" * 2000)
    assert r.status_code == 413, r.text  # the bucket's limit
    listed = platform.get(B + f"/{name}/objects").json()
    assert [o["name"] for o in listed["objects"]] == ["a.txt"]
    assert [f["name"] for f in listed["folders"]] == ["dir/"]
    inside = platform.get(B + f"/{name}/objects", params={"prefix": "dir/"}).json()
    assert sorted(o["name"] for o in inside["objects"]) == ["dir/b.txt", "dir/c.txt"]
    page = platform.get(B + f"/{name}/objects", params={"delimiter": "false", "limit": "2"}).json()
    assert len(page["objects"]) == 2 and page["next_cursor"]
    r = platform.get(B + f"/{name}/objects/dir/b.txt")
    assert r.status_code == 200 and r.content == b"dir/b.txt"
    # the object is real: the Storage API serves it
    public = httpx.get(ops_server.url + f"/storage/v1/object/public/{name}/a.txt", timeout=30)
    assert public.status_code == 200 and public.content == b"a.txt"
    assert platform.delete(B + f"/{name}/objects/a.txt").status_code == 204
    assert platform.get(B + f"/{name}/objects/a.txt").status_code in (400, 404)
    r = platform.delete(B + f"/{name}/objects", json={"prefixes": ["dir/b.txt"]})
    assert r.status_code == 200 and [o["name"] for o in r.json()["objects"]] == ["dir/b.txt"]
    # a bucket with objects is deleted only when forced
    assert platform.delete(B + "/" + name).status_code in (400, 409)
    assert platform.delete(B + "/" + name, params={"force": "true"}).status_code == 204
    assert platform.get(B + "/" + name).status_code == 404
    # create, update, 3 uploads, delete, delete many, forced delete
    assert audit_count(ops_server) == before + 8


def test_empty_a_bucket(platform: Admin, ops_server: MadbaseProcess) -> None:
    name = f"e-{uuid.uuid4().hex[:8]}"
    assert platform.post(B, json={"name": name}).status_code == 201
    assert platform.post(B + f"/{name}/objects/x", content=b"1").status_code == 201
    before = audit_count(ops_server)
    assert platform.post(B + f"/{name}/empty").status_code == 204
    assert audit_count(ops_server) == before + 1
    assert platform.get(B + f"/{name}/objects").json()["objects"] == []
    assert platform.delete(B + "/" + name).status_code == 204


def test_hostile_storage_requests(platform: Admin) -> None:
    assert platform.get(B + "/no-such-bucket").status_code == 404
    assert platform.get(B + "/no-such-bucket/objects").status_code in (200, 404)
    assert platform.get(B + "/no-such-bucket/objects/x").status_code in (400, 404)
    r = platform.post(B, json={"name": "../etc"})
    assert r.status_code == 400 and set(r.json()) == {"message"}
    assert platform.post(B, json={"name": "x" * 5000}).status_code == 400
    assert platform.post(B, content=b"x" * (2 * 1024 * 1024)).status_code == 413
    assert platform.post(B, content=b"[]").status_code == 400
    assert platform.get(B, params={"limit": "-1"}).status_code == 400
    r = platform.post(B + "/no-such-bucket/objects/a/..%2f..%2fx", content=b"1")
    assert r.status_code in (400, 404)
