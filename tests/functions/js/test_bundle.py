"""Deploy-time bundling (deno bundle): Supabase's quick-start and CORS example as written, TypeScript, import
maps, deno.land/std's serve, and clear BundleErrors."""

from __future__ import annotations

import json

import pytest

from madbase.functions.js.bundle import BundleError, bundle
from tests.functions.js.conftest import Invoke, request

# `supabase functions new hello-world`, unchanged
QUICKSTART = """// Follow this setup guide to integrate the Deno language server with your editor:
// https://deno.land/manual/getting_started/setup_your_environment
// This enables autocomplete, go to definition, etc.

// Setup type definitions for built-in Supabase Runtime APIs
import "jsr:@supabase/functions-js/edge-runtime.d.ts"

console.log("Hello from Functions!")

Deno.serve(async (req) => {
  const { name } = await req.json()
  const data = {
    message: `Hello ${name}!`,
  }

  return new Response(
    JSON.stringify(data),
    { headers: { "Content-Type": "application/json" } },
  )
})
"""

SHARED_CORS = """export const corsHeaders = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'authorization, x-client-info, apikey, content-type',
}
"""

# Supabase's "browser-with-cors" example, unchanged (it imports ../_shared/cors.ts)
CORS_EXAMPLE = """import { corsHeaders } from '../_shared/cors.ts'

console.log(`Function "browser-with-cors" up and running!`)

Deno.serve(async (req) => {
  // This is needed if you're planning to invoke your function from a browser.
  if (req.method === 'OPTIONS') {
    return new Response('ok', { headers: corsHeaders })
  }

  try {
    const { name } = await req.json()
    const data = {
      message: `Hello ${name}!`,
    }

    return new Response(JSON.stringify(data), {
      headers: { ...corsHeaders, 'Content-Type': 'application/json' },
      status: 200,
    })
  } catch (error) {
    return new Response(JSON.stringify({ error: error.message }), {
      headers: { ...corsHeaders, 'Content-Type': 'application/json' },
      status: 400,
    })
  }
})
"""


def test_quickstart_as_written(invoke: Invoke) -> None:
    code = bundle({"hello-world/index.ts": QUICKSTART.encode()}, "hello-world/index.ts", None)
    result = invoke(code, request(body={"name": "Functions"}))
    assert result.status == 200, result.logs
    assert json.loads(result.body) == {"message": "Hello Functions!"}
    assert "Hello from Functions!" in result.logs


def test_cors_example_with_shared_module(invoke: Invoke) -> None:
    files = {"browser-with-cors/index.ts": CORS_EXAMPLE.encode(), "_shared/cors.ts": SHARED_CORS.encode()}
    code = bundle(files, "browser-with-cors/index.ts", None)
    pre = invoke(code, request("OPTIONS"))
    assert pre.status == 200 and pre.body == b"ok"
    assert ("access-control-allow-origin", "*") in pre.headers
    ok = invoke(code, request(body={"name": "you"}))
    assert json.loads(ok.body) == {"message": "Hello you!"}
    bad = invoke(code, request(body="{", headers={"content-type": "application/json"}))
    assert bad.status == 400


def test_typescript_import_map_and_std_serve(invoke: Invoke) -> None:
    source = """
    import { serve } from "https://deno.land/std@0.168.0/http/server.ts"
    import { shout } from "utils/shout.ts"
    interface Payload { word: string }
    enum Mode { Loud = "loud" }
    serve(async (req: Request): Promise<Response> => {
      const { word } = (await req.json()) as Payload
      return new Response(shout(word) + ":" + Mode.Loud)
    })
    """
    files = {
        "loud/index.ts": source.encode(),
        "loud/deno.json": json.dumps({"imports": {"utils/": "./lib/"}}).encode(),
        "loud/lib/shout.ts": b"export const shout = (s: string): string => s.toUpperCase() + '!'\n",
    }
    code = bundle(files, "loud/index.ts", None)
    result = invoke(code, request(body={"word": "hey"}))
    assert result.body == b"HEY!:loud", result.logs
    # an import map given with the deploy wins over the folder's own
    given = {"imports": {"utils/": "./loud/lib/"}}
    files["loud/deno.json"] = b"{}"
    assert invoke(bundle(files, "loud/index.ts", given), request(body={"word": "x"})).body == b"X!:loud"


def test_bundle_errors() -> None:
    with pytest.raises(BundleError, match="entrypoint"):
        bundle({"a/index.ts": b""}, "b/index.ts", None)
    with pytest.raises(BundleError, match="invalid file path"):
        bundle({"../../etc/x.ts": b""}, "../../etc/x.ts", None)
    with pytest.raises(BundleError, match=r"missing\.ts"):
        bundle({"a/index.ts": b"import './missing.ts'\n"}, "a/index.ts", None)
    with pytest.raises(BundleError, match="deno bundle"):
        bundle({"a/index.ts": b"export const = ;\n"}, "a/index.ts", None)


def test_cdn_and_jsr_imports_come_from_npm(invoke: Invoke) -> None:
    source = """import { createClient } from 'https://esm.sh/@supabase/supabase-js@2'
    import { createClient as fromJsr } from 'jsr:@supabase/supabase-js@2'
    Deno.serve(() => new Response(String(typeof createClient === 'function' && createClient === fromJsr)))
    """
    code = bundle({"cdn/index.ts": source.encode()}, "cdn/index.ts", None)
    assert invoke(code, request("GET")).body == b"true"
