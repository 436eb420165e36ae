// Drives auth flows with the official supabase-js client against a running MadBase server.
// Usage: node flows.mjs <scenario> <json-args>; env SUPABASE_URL, ANON_KEY, SERVICE_KEY. Prints one JSON line.
import { createClient } from '@supabase/supabase-js'
import { createHmac } from 'node:crypto'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'

const url = process.env.SUPABASE_URL
const args = JSON.parse(process.argv[3] || '{}')

// A storage that survives between runs (for PKCE code verifiers), kept in a JSON file.
function fileStorage(path) {
  const load = () => (existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {})
  return {
    getItem: (k) => load()[k] ?? null,
    setItem: (k, v) => { const d = load(); d[k] = v; writeFileSync(path, JSON.stringify(d)) },
    removeItem: (k) => { const d = load(); delete d[k]; writeFileSync(path, JSON.stringify(d)) },
  }
}

// Node 20 has no global WebSocket; these tests never open one, so realtime gets an inert transport.
class NoWebSocket { constructor() { throw new Error('WebSocket not available in auth tests') } }

function client(key, extra = {}) {
  return createClient(url, key, {
    realtime: { transport: NoWebSocket },
    auth: { persistSession: !!extra.storage, autoRefreshToken: false, detectSessionInUrl: false, ...extra },
  })
}
const anon = () => client(process.env.ANON_KEY)
const service = () => client(process.env.SERVICE_KEY)

function err(e) { return e ? { name: e.name, status: e.status, code: e.code, message: e.message, reasons: e.reasons } : null }

function totp(secret, now = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const c of secret.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0')
  const bytes = []
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 30000)))
  const h = createHmac('sha1', Buffer.from(bytes)).update(counter).digest()
  const o = h[h.length - 1] & 0xf
  const code = ((h.readUInt32BE(o) & 0x7fffffff) % 1000000).toString().padStart(6, '0')
  return code
}

const scenarios = {
  async password({ email, password }) {
    const sb = anon()
    const out = {}
    const up = await sb.auth.signUp({ email, password, options: { data: { plan: 'free' } } })
    out.signUp = { error: err(up.error), hasSession: !!up.data.session, userEmail: up.data.user?.email,
      meta: up.data.user?.user_metadata }
    const dup = await sb.auth.signUp({ email, password })
    out.duplicate = err(dup.error)
    const weak = await sb.auth.signUp({ email: 'x' + email, password: '1' })
    out.weak = err(weak.error)
    const bad = await sb.auth.signInWithPassword({ email, password: 'wrong-' + password })
    out.badLogin = err(bad.error)
    const si = await sb.auth.signInWithPassword({ email, password })
    out.signIn = { error: err(si.error), userId: si.data.user?.id, expiresAt: si.data.session?.expires_at }
    const gu = await sb.auth.getUser()
    out.getUser = { error: err(gu.error), email: gu.data.user?.email }
    const claims = await sb.auth.getClaims()
    out.claims = { error: err(claims.error), role: claims.data?.claims?.role, aal: claims.data?.claims?.aal,
      sub: claims.data?.claims?.sub }
    const uu = await sb.auth.updateUser({ data: { plan: 'pro' } })
    out.updateUser = { error: err(uu.error), meta: uu.data.user?.user_metadata }
    const before = (await sb.auth.getSession()).data.session.refresh_token
    const rs = await sb.auth.refreshSession()
    out.refresh = { error: err(rs.error), rotated: rs.data.session?.refresh_token !== before,
      meta: rs.data.user?.user_metadata }
    const token = rs.data.session.access_token
    const so = await sb.auth.signOut()
    out.signOut = err(so.error)
    out.afterSignOut = err((await sb.auth.getUser(token)).error)
    const an = await anon().auth.signInAnonymously({ options: { data: { guest: true } } })
    out.anonymous = { error: err(an.error), isAnonymous: an.data.user?.is_anonymous }
    return out
  },

  async admin({ emails }) {
    const sb = service()
    const out = { created: [] }
    for (const email of emails) {
      const { data, error } = await sb.auth.admin.createUser({ email, password: 'secret-pass-1', email_confirm: true,
        user_metadata: { n: email } })
      out.created.push({ error: err(error), email: data.user?.email, confirmed: !!data.user?.email_confirmed_at })
    }
    const page = await sb.auth.admin.listUsers({ page: 1, perPage: 2 })
    out.list = { error: err(page.error), count: page.data.users?.length, nextPage: page.data.nextPage,
      lastPage: page.data.lastPage, total: page.data.total, aud: page.data.aud }
    const id = (await sb.auth.admin.listUsers()).data.users.find((u) => u.email === emails[0]).id
    const got = await sb.auth.admin.getUserById(id)
    out.get = { error: err(got.error), email: got.data.user?.email }
    const upd = await sb.auth.admin.updateUserById(id, { user_metadata: { extra: 1 }, ban_duration: '1h' })
    out.update = { error: err(upd.error), meta: upd.data.user?.user_metadata, banned: !!upd.data.user?.banned_until }
    const login = await anon().auth.signInWithPassword({ email: emails[0], password: 'secret-pass-1' })
    out.bannedLogin = err(login.error)
    const link = await sb.auth.admin.generateLink({ type: 'magiclink', email: emails[1] })
    out.link = { error: err(link.error), hasLink: !!link.data.properties?.action_link,
      otpLen: link.data.properties?.email_otp?.length, type: link.data.properties?.verification_type,
      user: link.data.user?.email }
    const vo = await anon().auth.verifyOtp({ email: emails[1], token: link.data.properties.email_otp, type: 'email' })
    out.verifyLinkOtp = { error: err(vo.error), hasSession: !!vo.data.session }
    const inv = await sb.auth.admin.inviteUserByEmail('inv-' + emails[0])
    out.invite = { error: err(inv.error), email: inv.data.user?.email, invited: !!inv.data.user?.invited_at }
    const del = await sb.auth.admin.deleteUser(id)
    out.delete = err(del.error)
    out.afterDelete = err((await sb.auth.admin.getUserById(id)).error)
    const notAdmin = await anon().auth.admin.listUsers()
    out.notAdmin = err(notAdmin.error)
    return out
  },

  async mfa({ email, password }) {
    const sb = anon()
    const out = {}
    await sb.auth.signUp({ email, password })
    const en = await sb.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone app' })
    out.enroll = { error: err(en.error), type: en.data?.type, qr: en.data?.totp?.qr_code?.slice(0, 30),
      uri: en.data?.totp?.uri?.slice(0, 15) }
    const ch = await sb.auth.mfa.challenge({ factorId: en.data.id })
    out.challenge = { error: err(ch.error), hasId: !!ch.data?.id }
    const wrong = await sb.auth.mfa.verify({ factorId: en.data.id, challengeId: ch.data.id, code: '000000' === totp(en.data.totp.secret) ? '111111' : '000000' })
    out.wrong = err(wrong.error)
    const ver = await sb.auth.mfa.verify({ factorId: en.data.id, challengeId: ch.data.id, code: totp(en.data.totp.secret) })
    out.verify = { error: err(ver.error) }
    const aal = await sb.auth.mfa.getAuthenticatorAssuranceLevel()
    out.aal = { current: aal.data?.currentLevel, next: aal.data?.nextLevel,
      amr: aal.data?.currentAuthenticationMethods?.map((m) => m.method) }
    const lf = await sb.auth.mfa.listFactors()
    out.factors = { totp: lf.data?.totp?.length, all: lf.data?.all?.length }
    const un = await sb.auth.mfa.unenroll({ factorId: en.data.id })
    out.unenroll = { error: err(un.error), id: un.data?.id === en.data.id }
    return out
  },

  async otpStart({ email, pkce, storage, redirectTo }) {
    const sb = client(process.env.ANON_KEY, pkce ? { flowType: 'pkce', storage: fileStorage(storage) } : {})
    const r = await sb.auth.signInWithOtp({ email, options: { emailRedirectTo: redirectTo } })
    return { error: err(r.error) }
  },

  async verifyOtp({ email, token, type }) {
    const r = await anon().auth.verifyOtp({ email, token, type })
    return { error: err(r.error), email: r.data.user?.email, hasSession: !!r.data.session }
  },

  async verifyPhone({ phone, token, type }) {
    const r = await anon().auth.verifyOtp({ phone, token, type })
    return { error: err(r.error), phone: r.data.user?.phone, hasSession: !!r.data.session }
  },

  async exchange({ code, storage }) {
    const sb = client(process.env.ANON_KEY, { flowType: 'pkce', storage: fileStorage(storage) })
    const r = await sb.auth.exchangeCodeForSession(code)
    return { error: err(r.error), email: r.data.user?.email, hasSession: !!r.data.session }
  },

  async oauthStart({ provider, storage, redirectTo }) {
    const sb = client(process.env.ANON_KEY, { flowType: 'pkce', storage: fileStorage(storage) })
    const r = await sb.auth.signInWithOAuth({ provider, options: { redirectTo, skipBrowserRedirect: true,
      queryParams: { prompt: 'consent' } } })
    return { error: err(r.error), url: r.data.url }
  },

  async idToken({ provider, token, nonce }) {
    const r = await anon().auth.signInWithIdToken({ provider, token, nonce })
    return { error: err(r.error), email: r.data.user?.email, hasSession: !!r.data.session,
      providers: r.data.user?.app_metadata?.providers }
  },

  async claimsFor({ accessToken, refreshToken }) {
    const sb = anon()
    await sb.auth.setSession({ access_token: accessToken, refresh_token: refreshToken })
    const r = await sb.auth.getClaims()
    return { error: err(r.error), sub: r.data?.claims?.sub, alg: r.data?.header?.alg }
  },

  async linkStart({ email, password, provider, redirectTo }) {
    const sb = anon()
    const up = await sb.auth.signUp({ email, password })
    const r = await sb.auth.linkIdentity({ provider, options: { redirectTo, skipBrowserRedirect: true } })
    return { error: err(r.error), url: r.data?.url, accessToken: up.data.session.access_token,
      refreshToken: up.data.session.refresh_token }
  },

  async unlink({ accessToken, refreshToken, provider }) {
    const sb = anon()
    await sb.auth.setSession({ access_token: accessToken, refresh_token: refreshToken })
    const before = await sb.auth.getUserIdentities()
    const identity = before.data.identities.find((i) => i.provider === provider)
    const r = await sb.auth.unlinkIdentity(identity)
    const after = await sb.auth.getUserIdentities()
    const last = await sb.auth.unlinkIdentity(after.data.identities[0])
    return { before: before.data.identities.map((i) => i.provider).sort(), error: err(r.error),
      after: after.data.identities.map((i) => i.provider), last: err(last.error) }
  },

  async resend({ email, type }) {
    const r = await anon().auth.resend({ email, type })
    return { error: err(r.error) }
  },

  async reauthenticate({ accessToken, refreshToken }) {
    const sb = anon()
    await sb.auth.setSession({ access_token: accessToken, refresh_token: refreshToken })
    const r = await sb.auth.reauthenticate()
    return { error: err(r.error) }
  },

  async passwordWithNonce({ accessToken, refreshToken, password, nonce }) {
    const sb = anon()
    await sb.auth.setSession({ access_token: accessToken, refresh_token: refreshToken })
    const r = await sb.auth.updateUser({ password, nonce })
    return { error: err(r.error) }
  },

  async recoverStart({ email }) {
    const r = await anon().auth.resetPasswordForEmail(email, { redirectTo: 'http://app.example.com/reset' })
    return { error: err(r.error) }
  },

  async recoverFinish({ email, token, newPassword }) {
    const sb = anon()
    const v = await sb.auth.verifyOtp({ email, token, type: 'recovery' })
    const u = await sb.auth.updateUser({ password: newPassword })
    const s = await anon().auth.signInWithPassword({ email, password: newPassword })
    return { verify: err(v.error), update: err(u.error), signIn: err(s.error) }
  },
}

const result = await scenarios[process.argv[2]](args)
console.log(JSON.stringify(result))
