// realtime-js re-authorisation: subscribe as user A, switch the token to user B with setAuth(), and print
// the ids of the rows received (RLS decides per token). env: SUPABASE_URL, SUPABASE_KEY, TOKEN_A, TOKEN_B, TABLE
import { createClient } from '@supabase/supabase-js'
import { NodeWebSocket } from './transport.mjs'
import * as readline from 'node:readline'

const env = process.env
let token = env.TOKEN_A
const client = createClient(env.SUPABASE_URL, env.SUPABASE_KEY,
  { accessToken: async () => token, realtime: { transport: NodeWebSocket } })
await client.realtime.setAuth()
const timer = setTimeout(() => { console.log('TIMEOUT'); process.exit(2) }, 20000)
const channel = client.channel('reauth-' + env.TABLE)
channel.on('postgres_changes', { event: 'INSERT', schema: 'public', table: env.TABLE }, (p) => {
  console.log(JSON.stringify({ id: p.new.id }))
})
channel.subscribe((status) => { if (status === 'SUBSCRIBED') console.log('SUBSCRIBED') })
// The test drives us through stdin: "switch" → use token B; "quit" → exit.
const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  if (line === 'switch') {
    token = env.TOKEN_B
    await client.realtime.setAuth()
    console.log('SWITCHED')
  } else if (line === 'quit') {
    clearTimeout(timer)
    console.log('DONE')
    await client.removeAllChannels()
    process.exit(0)
  }
})
