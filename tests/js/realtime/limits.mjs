// realtime-js against the payload size limit: an acked oversized broadcast resolves 'error', a small one 'ok';
// httpSend and the REST fallback report the refusal too. env: SUPABASE_URL, SUPABASE_KEY, ROOM, SIZE
import { createClient } from '@supabase/supabase-js'

const env = process.env
const opts = { auth: { persistSession: false } }
const a = createClient(env.SUPABASE_URL, env.SUPABASE_KEY, opts)
const out = {}
const timer = setTimeout(() => { console.log(JSON.stringify({ timeout: true, ...out })); process.exit(2) }, 20000)
const big = { blob: 'x'.repeat(Number(env.SIZE)) }
const ch = a.channel(env.ROOM, { config: { broadcast: { self: true, ack: true } } })
const received = []
ch.on('broadcast', { event: '*' }, (m) => received.push(m.payload))
await new Promise((resolve, reject) => ch.subscribe((s, e) => {
  if (s === 'SUBSCRIBED') resolve(); else if (s !== 'CLOSED') reject(new Error(s + ' ' + e))
}))
out.bigStatus = await ch.send({ type: 'broadcast', event: 'e', payload: big })
out.smallStatus = await ch.send({ type: 'broadcast', event: 'e', payload: { small: 1 } })
out.httpBig = await ch.httpSend('e', big).then((r) => r.success ?? r).catch((e) => 'error: ' + String(e))
const c = createClient(env.SUPABASE_URL, env.SUPABASE_KEY, opts)
out.restBig = await c.channel(env.ROOM).send({ type: 'broadcast', event: 'e', payload: big })
await new Promise((r) => setTimeout(r, 300))
out.received = received
clearTimeout(timer)
console.log(JSON.stringify(out))
console.log('DONE')
await a.removeAllChannels()
process.exit(0)
