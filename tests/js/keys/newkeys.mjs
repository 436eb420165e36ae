// supabase-js with the new key style (sb_publishable_… for the app, sb_secret_… for the backend) against a
// running MadBase: REST, auth sign-up/sign-in, storage, realtime broadcast and postgres_changes.
// Usage: node --experimental-websocket newkeys.mjs <json-args>; env SUPABASE_URL, PUB_KEY, SECRET_KEY.
// Prints one JSON line with what each step saw.
import { createClient } from '@supabase/supabase-js'
import { NodeWebSocket } from '../realtime/transport.mjs'

const url = process.env.SUPABASE_URL
const args = JSON.parse(process.argv[2] || '{}')
const options = { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: NodeWebSocket } }
const app = createClient(url, process.env.PUB_KEY, options)
const backend = createClient(url, process.env.SECRET_KEY, options)
const err = (e) => (e ? { name: e.name, status: e.status, code: e.code, message: e.message } : null)
const out = {}
// never hang: print what was seen so far
setTimeout(() => { console.log(JSON.stringify({ ...out, timedOut: true })); process.exit(3) }, 60000).unref()

function subscribed(channel, timeoutMs = 15000) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('TIMEOUT'), timeoutMs)
    channel.subscribe((status, e) => {
      if (status !== 'CLOSED') { clearTimeout(timer); resolve(e ? `${status}: ${e}` : status) }
    })
  })
}

function waitFor(channel, setup, timeoutMs = 15000) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ status: 'TIMEOUT' }), timeoutMs)
    setup(channel, (value) => { clearTimeout(timer); resolve(value) })
  })
}

// REST, nobody signed in: the publishable key is anon (RLS applies), the secret key service_role
{
  const a = await app.from(args.table).select('body').order('id')
  const s = await backend.from(args.table).select('body').order('id')
  out.restAnon = { error: err(a.error), rows: (a.data || []).map((r) => r.body) }
  out.restService = { error: err(s.error), rows: (s.data || []).map((r) => r.body) }
}

// realtime broadcast with no session: the socket's key (publishable) decides; the sb_ access token is ignored
{
  const channel = app.channel('keys-room', { config: { broadcast: { self: true } } })
  const got = waitFor(channel, (ch, done) => {
    ch.on('broadcast', { event: 'ping' }, (p) => done({ status: 'RECEIVED', payload: p.payload }))
  })
  out.broadcastJoin = await subscribed(channel)
  await channel.send({ type: 'broadcast', event: 'ping', payload: { n: 1 } })
  out.broadcast = await got
  await app.removeChannel(channel)
}

// auth with the publishable key: sign up, sign in, then the user's JWT decides the role
{
  const up = await app.auth.signUp({ email: args.email, password: args.password })
  out.signUp = { error: err(up.error), hasSession: !!up.data.session }
  await app.auth.signOut()
  const inn = await app.auth.signInWithPassword({ email: args.email, password: args.password })
  out.signIn = { error: err(inn.error), userId: inn.data.user && inn.data.user.id }
  const user = await app.auth.getUser()
  out.getUser = { error: err(user.error), id: user.data.user && user.data.user.id }
  const ins = await app.from(args.table).insert({ body: 'mine' }).select('body, owner').single()
  out.restUserInsert = { error: err(ins.error), row: ins.data }
  const mine = await app.from(args.table).select('body').order('id')
  out.restUser = { error: err(mine.error), rows: (mine.data || []).map((r) => r.body) }
}

// realtime postgres_changes as the signed-in user (RLS: only the user's own rows)
{
  await app.realtime.setAuth()
  const channel = app.channel('keys-changes')
  const bodies = []  // until the user's own row arrives (an earlier insert of theirs may come first)
  const got = waitFor(channel, (ch, done) => {
    ch.on('postgres_changes', { event: 'INSERT', schema: 'public', table: args.table }, (p) => {
      bodies.push(p.new.body)
      if (p.new.body === 'for you') done({ status: 'RECEIVED', bodies })
    })
  })
  out.changesJoin = await subscribed(channel)
  await new Promise((r) => setTimeout(r, 500))
  // the backend writes two rows: somebody else's (invisible to the user) and then the user's own
  await backend.from(args.table).insert({ body: 'not yours', owner: '00000000-0000-0000-0000-000000000000' })
  await backend.from(args.table).insert({ body: 'for you', owner: out.signIn.userId })
  out.changes = await got
  await app.removeChannel(channel)
}

// storage: the backend (secret key) creates a private bucket and uploads; the app (user, no policy) cannot read
{
  const made = await backend.storage.createBucket(args.bucket, { public: false })
  const up = await backend.storage.from(args.bucket).upload('hello.txt', new Blob(['hello keys']), { contentType: 'text/plain' })
  const down = await backend.storage.from(args.bucket).download('hello.txt')
  const denied = await app.storage.from(args.bucket).download('hello.txt')
  out.storage = { create: err(made.error), upload: err(up.error), text: down.data ? await down.data.text() : null,
                  downloadError: err(down.error), userDenied: !!denied.error }
}

await app.auth.signOut()
await app.removeAllChannels()
await backend.removeAllChannels()
console.log(JSON.stringify(out))
process.exit(0)
