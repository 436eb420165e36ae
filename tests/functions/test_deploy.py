"""Reading deploys: JSON and the CLI's multipart shape (metadata part + file parts), checked manifests."""

from __future__ import annotations

import json

import httpx
import pytest

from madbase.functions.deploy import DeployError, from_json, from_multipart
from tests.functions.conftest import invoke, wat_module
from tests.support.servers import MadbaseProcess


def multipart(meta: dict[str, object], files: dict[str, bytes]) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://x/", data={"metadata": json.dumps(meta)},
                            files=[("file", (path, body)) for path, body in files.items()])
    return request.headers["content-type"], request.read()


def test_multipart_like_the_cli() -> None:
    ctype, body = multipart({"entrypoint_path": "file:///home/me/proj/supabase/functions/hi/index.ts",
                             "import_map_path": "/home/me/proj/supabase/functions/hi/deno.json",
                             "name": "hi", "verify_jwt": False},
                            {"index.ts": b"export default {}", "deno.json": b'{"imports": {"a": "npm:a"}}',
                             "lib/util.ts": b"x"})
    wanted = from_multipart(ctype, body)
    assert (wanted.slug, wanted.kind, wanted.entrypoint) == ("hi", "js", "index.ts")
    assert wanted.import_map == {"imports": {"a": "npm:a"}}
    assert wanted.settings == {"verify_jwt": False}
    assert set(wanted.files) == {"index.ts", "deno.json", "lib/util.ts"}
    ctype, body = multipart({}, {"module.wasm": b"\0asm"})
    wasm = from_multipart(ctype, body, slug="w")
    assert (wasm.slug, wasm.kind, wasm.entrypoint) == ("w", "wasm", "module.wasm")


@pytest.mark.parametrize("meta, message", [
    ({"slug": "a"}, "nothing to deploy"),
    ({"slug": "1a", "source": "x"}, "slug"),
    ({"slug": "a", "files": {"../x.ts": "x"}}, "invalid file path"),
    ({"slug": "a", "source": "x", "limits": {"cpu": 1}}, "limits may only set"),
    ({"slug": "a", "source": "x", "limits": {"queue": 0}}, "limits.queue"),
    ({"slug": "a", "source": "x", "allowed_hosts": "a.com"}, "allowed_hosts"),
    ({"slug": "a", "source": "x", "env": {"HTTP_X": "1"}}, "reserved"),
    ({"slug": "a", "source": "x", "env": {"X": "a\0b"}}, "NUL"),
    ({"slug": "a", "wasm_base64": "!!"}, "base64"),
    ({"slug": "a", "files": {"a.ts": "x", "b.ts": "y"}}, "no entrypoint"),
])
def test_refused_manifests(meta: dict[str, object], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        from_json(meta)


def test_multipart_deploy_over_http(fn_server: MadbaseProcess) -> None:
    ctype, body = multipart({"verify_jwt": False}, {"hello.wasm": wat_module("multipart")})
    r = httpx.post(f"{fn_server.url}/admin/v1/projects/{fn_server.project_ref}/functions/deploy?slug=mp",
                   content=body, headers=fn_server.admin_headers(**{"content-type": ctype}), timeout=60)
    assert r.status_code == 201, r.text
    assert r.json()["verify_jwt"] is False and r.json()["entrypoint_path"] == "hello.wasm"
    assert invoke(fn_server, "GET", "mp").text == "hello from wat multipart"
