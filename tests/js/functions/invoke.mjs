// Drives functions-js (supabase.functions.invoke) against deployed MadBase edge functions; prints one JSON object.
// env: SUPABASE_URL, ANON_KEY, ECHO (a deployed echo function), HOOK (the same with verify_jwt = false)
import { createClient } from '@supabase/supabase-js'
import { FunctionsHttpError, FunctionsRelayError } from '@supabase/supabase-js'

const sb = createClient(process.env.SUPABASE_URL, process.env.ANON_KEY, {
  auth: { persistSession: false }, realtime: { transport: class {} } })
const echo = process.env.ECHO
const out = {}
const kind = (e) => (e instanceof FunctionsRelayError ? 'relay' : e instanceof FunctionsHttpError ? 'http' : e ? e.name : null)

let r = await sb.functions.invoke(echo, { body: { hello: 'world', n: [1, 2] } })
out.json = { data: r.data, error: kind(r.error), path: r.response?.headers.get('x-path-info') }
r = await sb.functions.invoke(echo, { body: 'some text' })
out.text = { data: r.data, error: kind(r.error), type: r.response?.headers.get('content-type') }
r = await sb.functions.invoke(echo, { body: new Uint8Array([0, 1, 2, 255]).buffer })
out.binary = { data: r.data ? Array.from(new Uint8Array(await r.data.arrayBuffer())) : null, error: kind(r.error) }
const form = new FormData()
form.append('field', 'value')
form.append('file', new Blob(['file body'], { type: 'text/plain' }), 'a.txt')
r = await sb.functions.invoke(echo, { body: form })
out.form = { field: r.data?.get?.('field') ?? null, file: r.data?.get ? await r.data.get('file').text() : null,
  error: kind(r.error) }
r = await sb.functions.invoke(`${echo}/sub?x=1`, { method: 'GET', headers: { 'x-custom': 'yes' } })
out.get = { method: r.response?.headers.get('x-method'), path: r.response?.headers.get('x-path-info'),
  query: r.response?.headers.get('x-query'), custom: r.response?.headers.get('x-echo-x-custom'),
  clientInfo: r.response?.headers.get('x-echo-x-client-info'), auth: r.response?.headers.get('x-echo-authorization'),
  apikey: r.response?.headers.get('x-echo-apikey') }
r = await sb.functions.invoke(`${echo}/status?code=418`)
out.non2xx = { error: kind(r.error), status: r.error?.context?.status, body: r.error ? await r.error.context.json() : null }
r = await sb.functions.invoke('does-not-exist', { body: {} })
out.missing = { error: kind(r.error), status: r.error?.context?.status }
r = await sb.functions.invoke(`${echo}/spin`)
out.limit = { error: kind(r.error), status: r.error?.context?.status,
  code: r.error ? (await r.error.context.json()).code : null }
sb.functions.setAuth('not-a-jwt')
r = await sb.functions.invoke(echo, { body: 'x' })
out.badJwt = { error: kind(r.error), status: r.error?.context?.status }
r = await sb.functions.invoke(process.env.HOOK, { body: 'hook body' })
out.hookWithBadJwt = { data: r.data, error: kind(r.error) }
console.log(JSON.stringify(out))
