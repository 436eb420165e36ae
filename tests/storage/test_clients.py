"""The official clients, unchanged: storage-js (supabase-js 2.119.0 under Node) and supabase-py storage."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import MadbaseProcess

JS = Path(__file__).resolve().parents[1] / "js"


def run_node(script: str, env: dict[str, str], timeout: float = 120) -> dict[str, Any]:
    proc = subprocess.run(["node", str(JS / "storage" / script)], env={**os.environ, **env}, cwd=JS,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


async def test_storage_js_every_endpoint(server: MadbaseProcess, bucket_name: str) -> None:
    out = await asyncio.to_thread(run_node, "all.mjs", {
        "SUPABASE_URL": server.url, "SERVICE_KEY": server.service_role_key, "ANON_KEY": server.anon_key,
        "BUCKET": bucket_name})
    assert out["createBucket"] == {"data": {"name": bucket_name}, "error": None}
    assert out["createDuplicate"]["statusCode"] == "409"
    # "10MB" is decimal, as Storage parses it
    assert out["getBucket"] == {"id": bucket_name, "public": False, "limit": 10_000_000, "error": None}
    assert out["listBuckets"] is True
    assert out["updateBucket"]["error"] is None
    assert out["uploadBlob"]["error"] is None
    assert out["uploadBlob"]["data"]["path"] == "folder/blob.txt"
    assert out["uploadBlob"]["data"]["fullPath"] == f"{bucket_name}/folder/blob.txt"
    assert out["uploadBuffer"]["error"] is None and out["uploadString"]["error"] is None
    assert out["uploadDuplicate"]["statusCode"] == "409"
    assert out["uploadUpsert"] is None and out["update"] is None
    assert out["downloadBlob"] == {"text": "upserted", "error": None}
    assert out["downloadBuf"] == [9, 9]
    assert out["downloadMissing"]["statusCode"] == "404"
    info = out["info"]["data"]
    assert info["name"] == "folder/blob.txt" and info["size"] == 8 and info["contentType"] == "text/plain"
    # exists() returns false together with the NoSuchKey error
    assert out["existsTrue"] is True and out["existsFalse"]["data"] is False
    assert out["list"] == [{"name": "sub", "folder": True}, {"name": "blob.txt", "folder": False},
                           {"name": "buf.bin", "folder": False}]
    assert out["listRoot"] == ["folder"]  # listed before "space dir/" was uploaded
    assert out["listSearch"] == ["blob.txt"]
    assert out["listV2"] == {"folders": ["folder/sub/"], "objects": ["folder/blob.txt", "folder/buf.bin"],
                             "hasNext": False}
    assert out["move"]["error"] is None and out["copy"]["error"] is None
    assert out["copiedText"] == "a string body" and out["moveAcross"] is None
    assert out["signedUrlFetch"] == "upserted"
    assert out["signedDownloadDisposition"].startswith("attachment; filename=x.txt")
    assert out["signedUrls"] == [{"path": "folder/blob.txt", "error": None, "ok": True},
                                 {"path": "folder/none.txt", "error": out["signedUrls"][1]["error"], "ok": False}]
    assert out["signedUpload"]["error"] is None and out["signedUploadText"] == "signed upload"
    assert out["spaceUpload"] is None and out["spaceSigned"] == "spaced out" and out["spaceDownload"] == "spaced out"
    assert out["purgeCache"]["error"] is None and out["purgeMissing"]["statusCode"] == "404"
    assert out["publicFetch"] == "upserted"
    # download() uses the authenticated route, where RLS decides (no SELECT policy for anon here), as on Supabase
    assert out["anonPublicDownload"]["statusCode"] == "404"
    assert out["bigUpload"] is None
    assert out["bigSha"]["sent"] == out["bigSha"]["got"] and out["bigSha"]["size"] == 6 * 1024 * 1024
    assert out["range"] == {"status": 206, "ok": True, "len": 1000000}
    assert out["remove"] == ["folder/blob.txt", "folder/buf.bin"]
    assert out["deleteNotEmpty"]["statusCode"] == "409"
    assert out["empty"]["error"] is None
    assert out["deleteBucket"] == {"data": {"message": "Successfully deleted"}, "error": None}
    assert out["getDeleted"]["statusCode"] == "404"


def _supabase_py(server: MadbaseProcess, bucket: str) -> dict[str, Any]:
    from supabase import create_client

    sb = create_client(server.url, server.service_role_key)
    st = sb.storage
    try:
        return _drive_py(st, bucket)
    finally:
        st.session.close()


def _drive_py(st: Any, bucket: str) -> dict[str, Any]:
    from storage3.exceptions import StorageApiError

    out: dict[str, Any] = {}
    st.create_bucket(bucket, options={"public": False, "file_size_limit": 20 * 1024 * 1024})
    out["get_bucket"] = st.get_bucket(bucket).id
    out["list_buckets"] = bucket in [b.id for b in st.list_buckets()]
    st.update_bucket(bucket, {"public": True})
    f = st.from_(bucket)
    data = os.urandom(6 * 1024 * 1024)
    res = f.upload("py/six.bin", data, {"content-type": "application/octet-stream", "cache-control": "60"})
    out["upload_key"] = res.full_path
    try:
        f.upload("py/six.bin", b"again")
    except StorageApiError as exc:
        out["duplicate"] = exc.to_dict()
    f.upload("py/six.bin", b"upserted!", {"upsert": "true", "content-type": "text/plain"})
    out["after_upsert"] = f.download("py/six.bin")
    f.update("py/six.bin", data, {"content-type": "application/octet-stream"})
    got = f.download("py/six.bin")
    out["sha"] = [hashlib.sha256(data).hexdigest(), hashlib.sha256(got).hexdigest()]
    out["info_size"] = f.info("py/six.bin")["size"]
    out["exists"] = [f.exists("py/six.bin"), f.exists("py/none.bin")]
    f.upload("py/small.txt", b"small", {"content-type": "text/plain", "metadata": {"m": "1"}})
    out["list"] = [e["name"] for e in f.list("py")]
    f.move("py/small.txt", "py/moved.txt")
    f.copy("py/moved.txt", "py/copied.txt")
    out["copied"] = f.download("py/copied.txt")
    signed = f.create_signed_url("py/moved.txt", 60)
    import httpx

    out["signed"] = httpx.get(signed["signedURL"]).content
    urls = f.create_signed_urls(["py/moved.txt", "py/copied.txt"], 60)
    out["signed_many"] = [httpx.get(u["signedURL"]).content for u in urls]
    up = f.create_signed_upload_url("py/signed.txt")
    f.upload_to_signed_url("py/signed.txt", up["token"], b"via token", {"content-type": "text/plain"})
    out["signed_upload"] = f.download("py/signed.txt")
    out["public"] = httpx.get(f.get_public_url("py/moved.txt")).content
    f.upload("py/with space ü.txt", b"spaced", {"content-type": "text/plain"})
    out["space_signed"] = httpx.get(f.create_signed_url("py/with space ü.txt", 60)["signedURL"]).content
    out["space_download"] = f.download("py/with space ü.txt")
    removed = f.remove(["py/moved.txt", "py/copied.txt"])
    out["removed"] = sorted(o["name"] for o in removed)
    st.empty_bucket(bucket)
    st.delete_bucket(bucket)
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # supabase-py passes storage3 a deprecated timeout
async def test_supabase_py_every_endpoint(server: MadbaseProcess, bucket_name: str) -> None:
    out = await asyncio.to_thread(_supabase_py, server, bucket_name)
    assert out["get_bucket"] == bucket_name and out["list_buckets"] is True
    assert out["upload_key"] == f"{bucket_name}/py/six.bin"
    assert out["duplicate"]["status"] == "409" and out["duplicate"]["code"] == "Duplicate"
    assert out["after_upsert"] == b"upserted!"
    assert out["sha"][0] == out["sha"][1]
    assert out["info_size"] == 6 * 1024 * 1024
    assert out["exists"] == [True, False]
    assert out["list"] == ["six.bin", "small.txt"]
    assert out["copied"] == b"small" and out["signed"] == b"small"
    assert out["signed_many"] == [b"small", b"small"]
    assert out["signed_upload"] == b"via token"
    assert out["public"] == b"small"
    assert out["space_signed"] == b"spaced" and out["space_download"] == b"spaced"
    assert out["removed"] == ["py/copied.txt", "py/moved.txt"]

