// Two supabase-js clients on one channel: presence track/sync, JSON + binary broadcast, self/ack, httpSend.
// env: SUPABASE_URL, SUPABASE_KEY, ROOM
import { createClient } from '@supabase/supabase-js'

const env = process.env
const opts = { auth: { persistSession: false } }
const a = createClient(env.SUPABASE_URL, env.SUPABASE_KEY, opts)
const b = createClient(env.SUPABASE_URL, env.SUPABASE_KEY, opts)
const out = { aReceived: [], bReceived: [], bPresence: null, bLeaves: [] }
const timer = setTimeout(() => { console.log(JSON.stringify({ timeout: true, ...out })); process.exit(2) }, 20000)
const sub = (ch) => new Promise((resolve, reject) => ch.subscribe((s, e) => {
  if (s === 'SUBSCRIBED') resolve(); else if (s !== 'CLOSED') reject(new Error(s + ' ' + e))
}))
const wait = (ms) => new Promise((r) => setTimeout(r, ms))

const chA = a.channel(env.ROOM, { config: { broadcast: { self: true, ack: true }, presence: { key: 'alice' } } })
chA.on('broadcast', { event: '*' }, (m) => out.aReceived.push(m))
const chB = b.channel(env.ROOM, { config: { presence: { key: 'bob' } } })
chB.on('broadcast', { event: '*' }, (m) => {
  const p = m.payload instanceof ArrayBuffer ? { binary: Array.from(new Uint8Array(m.payload)) } : m.payload
  out.bReceived.push({ event: m.event, payload: p })
})
chB.on('presence', { event: 'sync' }, () => { const s = chB.presenceState(); if (s.alice) out.bPresence = s })
chB.on('presence', { event: 'leave' }, ({ key }) => out.bLeaves.push(key))
chA.on('presence', { event: 'sync' }, () => {})
await sub(chA)
await sub(chB)
out.trackStatus = await chA.track({ online_at: 'now', name: 'Alice' })
await wait(300)
out.sendStatus = await chA.send({ type: 'broadcast', event: 'greet', payload: { text: 'hello' } })
out.binStatus = await chA.send({ type: 'broadcast', event: 'bin', payload: new Uint8Array([1, 2, 255]).buffer })
out.httpStatus = await chA.httpSend('viahttp', { via: 'http' }).then((r) => r.success ?? r).catch((e) => String(e))
// A REST broadcast from a client that never joined: realtime-js falls back to POST /api/broadcast.
const c = createClient(env.SUPABASE_URL, env.SUPABASE_KEY, opts)
out.restStatus = await c.channel(env.ROOM).send({ type: 'broadcast', event: 'rest', payload: { via: 'rest' } })
await wait(500)
out.untrack = await chA.untrack()
await wait(500)
clearTimeout(timer)
console.log(JSON.stringify(out))
await a.removeAllChannels(); await b.removeAllChannels()
process.exit(0)
