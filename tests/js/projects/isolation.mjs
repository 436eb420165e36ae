// Two projects of one MadBase server, each on its own PostgreSQL cluster, driven with supabase-js pointed at
// each project's own URL (<ref>.madbase.localhost): nothing of one may be visible from the other.
// env: URL_A, ANON_A, SERVICE_A, URL_B, ANON_B, SERVICE_B, TABLE; prints one JSON object of results.
import dns from 'node:dns'
import { createClient } from '@supabase/supabase-js'
import { NodeWebSocket } from '../realtime/transport.mjs'

// <ref>.madbase.localhost is this machine (the system resolver may not know *.localhost names)
const lookup = dns.lookup
dns.lookup = (host, opts, cb) => {
  if (typeof opts === 'function') { cb = opts; opts = {} }
  if (!host.endsWith('.madbase.localhost')) return lookup(host, opts, cb)
  if (opts && opts.all) return process.nextTick(cb, null, [{ address: '127.0.0.1', family: 4 }])
  return process.nextTick(cb, null, '127.0.0.1', 4)
}

const env = process.env
const table = env.TABLE
const opts = (extra = {}) => ({ auth: { persistSession: false, autoRefreshToken: false },
                                realtime: { transport: NodeWebSocket }, ...extra })
const client = (url, key, extra) => createClient(url, key, opts(extra))
const A = { url: env.URL_A, anon: env.ANON_A, service: env.SERVICE_A }
const B = { url: env.URL_B, anon: env.ANON_B, service: env.SERVICE_B }
const out = {}
const err = (e) => (e ? { message: e.message, status: e.status ?? e.statusCode ?? null } : null)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// -- keys: each project's keys open only their own project
let r = await client(A.url, A.anon).from(table).select('id')
out.ownKey = err(r.error)
r = await client(B.url, A.anon).from(table).select('id')
out.anonKeyOfAOnB = err(r.error)
r = await client(B.url, A.service).storage.listBuckets()
out.serviceKeyOfAOnB = err(r.error)

// -- users: a user of A is unknown to B, and A's user JWT is refused by B
const email = `iso-${Date.now()}@example.com`
const password = 'isolation-pw-1'
const userA = client(A.url, A.anon)
r = await userA.auth.signUp({ email, password })
out.signUpA = { error: err(r.error), session: !!r.data?.session }
const jwtA = r.data?.session?.access_token
r = await client(B.url, B.anon).auth.signInWithPassword({ email, password })
out.signInOnB = err(r.error)
r = await client(B.url, B.anon).auth.getUser(jwtA)
out.getUserOnB = err(r.error)
r = await client(B.url, B.anon, { accessToken: async () => jwtA }).from(table).select('id')
out.jwtOfAOnBRest = err(r.error)
r = await client(B.url, B.anon, { accessToken: async () => jwtA }).storage.listBuckets()
out.jwtOfAOnBStorage = err(r.error)
r = await client(A.url, A.anon, { accessToken: async () => jwtA }).from(table).select('id')
out.jwtOfAOnA = err(r.error)

// -- realtime: a change and a broadcast in A reach A's subscribers only
const seen = { A: [], B: [] }
const rt = {}
for (const [name, p] of [['A', A], ['B', B]]) {
  const c = client(p.url, p.service)
  rt[name] = c
  const ch = c.channel('iso-changes', { config: { broadcast: { self: true } } })
  ch.on('postgres_changes', { event: 'INSERT', schema: 'public', table }, (m) => seen[name].push(['change', m.new.body]))
  ch.on('broadcast', { event: 'ping' }, (m) => seen[name].push(['broadcast', m.payload.from]))
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('subscribe timeout ' + name)), 20000)
    ch.subscribe((status) => { if (status === 'SUBSCRIBED') { clearTimeout(t); resolve() } })
  })
}
// -- rows: a row of A is not in B
r = await client(A.url, A.anon, { accessToken: async () => jwtA }).from(table).insert({ body: 'secret-of-a' }).select()
out.insertA = { error: err(r.error), rows: r.data?.length ?? 0 }
r = await client(B.url, B.service).from(table).select('body')
out.rowsOnB = r.data?.map((x) => x.body) ?? err(r.error)
r = await client(A.url, A.service).from(table).select('body')
out.rowsOnA = r.data?.map((x) => x.body) ?? err(r.error)
await rt.A.channel('iso-changes').send({ type: 'broadcast', event: 'ping', payload: { from: 'A' } })
r = await client(B.url, B.service).from(table).insert({ body: 'row-of-b' })
out.insertB = err(r.error)

// -- storage: a bucket and object of A are not in B
const sa = client(A.url, A.service).storage
const sb = client(B.url, B.service).storage
r = await sa.createBucket('iso-bucket', { public: false })
out.bucketA = err(r.error)
r = await sa.from('iso-bucket').upload('hello.txt', new Blob(['hello from A'], { type: 'text/plain' }))
out.uploadA = err(r.error)
r = await sb.listBuckets()
out.bucketsOnB = r.data?.map((b) => b.id) ?? err(r.error)
r = await sb.from('iso-bucket').download('hello.txt')
out.downloadOnB = err(r.error)
r = await sb.createBucket('iso-bucket', { public: false })
out.sameNameBucketOnB = err(r.error)
r = await sb.from('iso-bucket').list()
out.listOnB = r.data?.map((o) => o.name) ?? err(r.error)
r = await sa.from('iso-bucket').download('hello.txt')
out.downloadOnA = r.data ? await r.data.text() : err(r.error)

await sleep(3000)
out.realtime = seen
for (const c of Object.values(rt)) await c.removeAllChannels()
console.log(JSON.stringify(out))
process.exit(0)
