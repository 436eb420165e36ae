"""The real pattern: a TypeScript function using npm:@supabase/supabase-js against a running MadBase server,
as the caller (RLS applies), with auth.getUser() and storage — bundled at deploy, its fetches done by the host."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from madbase.functions.abi import FunctionRequest, FunctionResult
from madbase.functions.js.bundle import bundle
from madbase.functions.js.runner import JsRunner
from madbase.functions.runner import Limits
from tests.functions.js.conftest import request
from tests.support.servers import MadbaseProcess

FUNCTION = """import { createClient } from 'npm:@supabase/supabase-js@2'
import { corsHeaders } from '../_shared/cors.ts'

Deno.serve(async (req: Request) => {
  if (req.method === 'OPTIONS') {
    return new Response('ok', { headers: corsHeaders })
  }
  const supabase = createClient(
    Deno.env.get('SUPABASE_URL') ?? '',
    Deno.env.get('SUPABASE_ANON_KEY') ?? '',
    { global: { headers: { Authorization: req.headers.get('Authorization')! } } },
  )
  const { data: { user }, error: userError } = await supabase.auth.getUser()
  if (userError || !user) {
    return new Response(JSON.stringify({ error: userError?.message ?? 'no user' }), {
      headers: { ...corsHeaders, 'Content-Type': 'application/json' }, status: 401,
    })
  }
  const { task, bucket } = await req.json()
  const { error: insertError } = await supabase.from('fn_todos').insert({ task })
  const { data: todos, error: selectError } = await supabase.from('fn_todos').select('task, user_id').order('id')
  const path = `${user.id}/note.txt`
  const { error: uploadError } = await supabase.storage.from(bucket)
    .upload(path, new Blob([`note: ${task}`], { type: 'text/plain' }), { upsert: true })
  const { data: file, error: downloadError } = await supabase.storage.from(bucket).download(path)
  const { data: list } = await supabase.storage.from(bucket).list(user.id)
  return new Response(JSON.stringify({
    email: user.email, todos, file: file ? await file.text() : null, listed: (list ?? []).map((o) => o.name),
    errors: [insertError, selectError, uploadError, downloadError].filter(Boolean).map((e) => e.message),
  }), { headers: { ...corsHeaders, 'Content-Type': 'application/json' } })
})
"""
CORS = b"""export const corsHeaders = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'authorization, x-client-info, apikey, content-type',
}
"""


class HostFetch:
    """A minimal OutboundFetch for the test: only the server's own API, blocking, as the service's will be."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.client = httpx.Client(timeout=30, follow_redirects=False)
        self.calls: list[str] = []

    def __call__(self, req: FunctionRequest) -> FunctionResult:
        self.calls.append(f"{req.method} {req.path}")
        if not req.path.startswith(self.base + "/"):
            return FunctionResult(0, (), b"", "", 0, 0, "blocked")
        headers = [(k, v) for k, v in req.headers if k.lower() not in ("host", "content-length")]
        r = self.client.request(req.method, req.path, headers=headers, content=req.body or None)
        return FunctionResult(r.status_code, tuple(r.headers.multi_items()), r.content, "", 0, 0, None)


@pytest.fixture
async def setup(server: MadbaseProcess, server_db: Any) -> dict[str, Any]:
    await server_db.execute("""
        create table if not exists public.fn_todos (
          id bigserial primary key, user_id uuid not null default auth.uid(), task text not null);
        alter table public.fn_todos enable row level security;
        drop policy if exists own_rows on public.fn_todos;
        create policy own_rows on public.fn_todos for all to authenticated
          using (user_id = auth.uid()) with check (user_id = auth.uid());
        grant select, insert on public.fn_todos to authenticated;
        grant usage on sequence public.fn_todos_id_seq to authenticated;
    """)
    bucket = "fn-" + uuid.uuid4().hex[:8]
    check = f"bucket_id = '{bucket}' and (storage.foldername(name))[1] = auth.uid()::text"
    for verb, clause in (("select", "using"), ("insert", "with check"), ("update", "using"), ("delete", "using")):
        await server_db.execute(
            f'create policy "{bucket}-{verb}" on storage.objects for {verb} to authenticated {clause} ({check})')
    service = server.headers(key=server.service_role_key)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        r = await http.post("/storage/v1/bucket", json={"id": bucket, "name": bucket, "public": False},
                            headers=service)
        assert r.status_code == 200, r.text
        email = f"fn-{uuid.uuid4().hex[:8]}@example.com"
        r = await http.post("/auth/v1/admin/users", json={"email": email, "password": "pw-123456",
                                                          "email_confirm": True}, headers=service)
        assert r.status_code in (200, 201), r.text
        r = await http.post("/auth/v1/token?grant_type=password", json={"email": email, "password": "pw-123456"},
                            headers=server.headers())
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
    # another user's row: RLS must hide it from the function acting as our user
    await server_db.execute("insert into public.fn_todos (user_id, task) values ($1, 'not yours')", uuid.uuid4())
    return {"bucket": bucket, "email": email, "token": token}


def test_supabase_js_function_against_madbase(js_runner: JsRunner, server: MadbaseProcess,
                                               setup: dict[str, Any]) -> None:
    code = bundle({"todo/index.ts": FUNCTION.encode(), "_shared/cors.ts": CORS}, "todo/index.ts", None)
    prepared = js_runner.prepare(code)
    env = {"SUPABASE_URL": server.url, "SUPABASE_ANON_KEY": server.anon_key}
    host = HostFetch(server.url)
    try:
        _scenario(js_runner, prepared, env, host, server, setup)
    finally:
        host.client.close()


def _scenario(js_runner: JsRunner, prepared: Any, env: dict[str, str], host: HostFetch, server: MadbaseProcess,
              setup: dict[str, Any]) -> None:
    caller = {"authorization": f"Bearer {setup['token']}", "apikey": server.anon_key}
    body = {"task": "write tests", "bucket": setup["bucket"]}
    result = js_runner.invoke(prepared, request(body=body, headers=caller), env, Limits(), host)
    assert result.status == 200, result.logs + result.body.decode()
    out = json.loads(result.body)
    assert out["errors"] == []
    assert out["email"] == setup["email"]
    assert [t["task"] for t in out["todos"]] == ["write tests"]  # RLS: only the caller's rows
    assert out["file"] == "note: write tests"
    assert out["listed"] == ["note.txt"]
    assert any(c.startswith("GET " + server.url + "/auth/v1/user") for c in host.calls)

    # a second call (warm, from the snapshot) sees both of this user's rows
    body["task"] = "ship it"
    again = js_runner.invoke(prepared, request(body=body, headers=caller), env, Limits(), host)
    assert [t["task"] for t in json.loads(again.body)["todos"]] == ["write tests", "ship it"]

    # without a user session, auth.getUser() fails and the function answers 401 itself
    anon = {"authorization": f"Bearer {server.anon_key}", "apikey": server.anon_key}
    denied = js_runner.invoke(prepared, request(body=body, headers=anon), env, Limits(), host)
    assert denied.status == 401, denied.logs
