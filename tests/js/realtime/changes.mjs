// Subscribe to postgres_changes with supabase-js and print each event as one JSON line.
// env: SUPABASE_URL, SUPABASE_KEY, TOKEN?, TABLE, FILTER?, EVENT?, COUNT, TIMEOUT_MS?, TOPIC?
import { createClient } from '@supabase/supabase-js'
import { NodeWebSocket } from './transport.mjs'

const env = process.env
// A user token the supabase-js way (third-party auth callback), so it survives reconnects and heartbeats.
const options = env.TOKEN ? { accessToken: async () => env.TOKEN } : { auth: { persistSession: false } }
options.realtime = { transport: NodeWebSocket }
if (env.DEBUG) options.realtime.logger = (k, m, d) => console.error(k, m, JSON.stringify(d))
const client = createClient(env.SUPABASE_URL, env.SUPABASE_KEY, options)
if (env.TOKEN) await client.realtime.setAuth()
const want = Number(env.COUNT || '1')
let got = 0
const params = { event: env.EVENT || '*', schema: 'public', table: env.TABLE }
if (env.FILTER) params.filter = env.FILTER
const timer = setTimeout(() => { console.log('TIMEOUT'); process.exit(2) }, Number(env.TIMEOUT_MS || '20000'))
const channel = client.channel(env.TOPIC || 'changes-' + env.TABLE)
channel.on('postgres_changes', params, (p) => {
  console.log(JSON.stringify({ eventType: p.eventType, schema: p.schema, table: p.table, new: p.new, old: p.old,
                               errors: p.errors, commit_timestamp: p.commit_timestamp }))
  got += 1
  if (got >= want) {
    clearTimeout(timer)
    console.log('DONE')
    client.removeAllChannels().then(() => process.exit(0))
  }
})
channel.subscribe((status, err) => {
  if (status === 'SUBSCRIBED') console.log('SUBSCRIBED')
  else if (status !== 'CLOSED') console.log(JSON.stringify({ status, error: err ? String(err) : null }))
})
