// realtime-js broadcast replay on a private channel: prints the broadcasts received (payload + meta).
// env: SUPABASE_URL, SUPABASE_KEY, TOKEN, ROOM, SINCE, LIMIT, COUNT
import { createClient } from '@supabase/supabase-js'

const env = process.env
const client = createClient(env.SUPABASE_URL, env.SUPABASE_KEY, { accessToken: async () => env.TOKEN })
await client.realtime.setAuth()
const got = []
const timer = setTimeout(() => { console.log(JSON.stringify({ timeout: true, got })); process.exit(2) }, 15000)
const ch = client.channel(env.ROOM, {
  config: { private: true, broadcast: { replay: { since: Number(env.SINCE), limit: Number(env.LIMIT) } } },
})
ch.on('broadcast', { event: 'ev' }, (m) => {
  got.push({ payload: m.payload, meta: m.meta ?? null })
  if (got.length >= Number(env.COUNT)) {
    clearTimeout(timer)
    console.log(JSON.stringify({ got }))
    console.log('DONE')
    process.exit(0)
  }
})
ch.subscribe((s, e) => { if (s !== 'SUBSCRIBED' && s !== 'CLOSED') { console.log(JSON.stringify({ status: s, error: String(e) })) } })
