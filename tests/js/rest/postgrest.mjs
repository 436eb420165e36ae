// Drives every postgrest-js filter and modifier against a running MadBase and prints the results as JSON.
// Usage: node postgrest.mjs <url> <anon key> <service_role key> [project ref]
import { createClient } from '@supabase/supabase-js'

const [url, anonKey, serviceKey, projectRef] = process.argv.slice(2)
// Node 20 has no global WebSocket; realtime is unused here, so give it an inert transport.
const opts = {
  auth: { persistSession: false },
  realtime: { transport: class {} },
  global: { headers: projectRef ? { 'x-project-ref': projectRef } : {} },
}
const anon = createClient(url, anonKey, opts)
const admin = createClient(url, serviceKey, opts)
const ids = (r) => (r.error ? { error: r.error } : r.data.map((x) => x.id))
const posts = () => anon.from('posts').select('id').order('id')
const tag = `js_${Date.now()}_${Math.floor(Math.random() * 1e6)}`

const cases = {
  eq: async () => ids(await posts().eq('id', 1)),
  neq: async () => ids(await posts().neq('id', 1)),
  gt: async () => ids(await posts().gt('id', 2)),
  gte: async () => ids(await posts().gte('id', 3)),
  lt: async () => ids(await posts().lt('id', 2)),
  lte: async () => ids(await posts().lte('id', 2)),
  like: async () => ids(await posts().like('title', '%post%')),
  likeAllOf: async () => ids(await posts().likeAllOf('title', ['%o%', '%e%'])),
  likeAnyOf: async () => ids(await posts().likeAnyOf('title', ['%World', '%comma'])),
  ilike: async () => ids(await posts().ilike('title', '%WORLD%')),
  ilikeAllOf: async () => ids(await posts().ilikeAllOf('title', ['%O%', '%E%'])),
  ilikeAnyOf: async () => ids(await posts().ilikeAnyOf('title', ['%WORLD', '%COMMA'])),
  is: async () => ids(await posts().is('rating', null)),
  isDistinct: async () => ids(await posts().isDistinct('editor_id', 2)),
  in: async () => ids(await posts().in('title', ['Hello World', 'Draft, with comma'])),
  notIn: async () => ids(await posts().notIn('id', [1, 2])),
  contains: async () => ids(await posts().contains('tags', ['b'])),
  containsJson: async () => ids(await posts().contains('meta', { k: 'v' })),
  containedBy: async () => ids(await posts().containedBy('tags', ['a', 'b'])),
  overlaps: async () => ids(await posts().overlaps('tags', ['a', 'c'])),
  rangeGt: async () => ids(await anon.from('reservations').select('id').rangeGt('during', '[6,8)')),
  rangeGte: async () => ids(await anon.from('reservations').select('id').rangeGte('during', '[3,4)')),
  rangeLt: async () => ids(await anon.from('reservations').select('id').rangeLt('during', '[6,8)')),
  rangeLte: async () => ids(await anon.from('reservations').select('id').rangeLte('during', '[0,6)')),
  rangeAdjacent: async () => ids(await anon.from('reservations').select('id').order('id').rangeAdjacent('during', '[5,10)')),
  textSearch: async () => ids(await posts().textSearch('search', 'cats')),
  textSearchPlain: async () => ids(await posts().textSearch('search', 'cats dogs', { type: 'plain', config: 'english' })),
  textSearchPhrase: async () => ids(await posts().textSearch('search', 'cats and dogs', { type: 'phrase' })),
  textSearchWeb: async () => ids(await posts().textSearch('search', 'cats -dogs', { type: 'websearch' })),
  match: async () => ids(await posts().match({ author_id: 1, published: false })),
  regexMatch: async () => ids(await posts().regexMatch('title', '^B')),
  regexIMatch: async () => ids(await posts().regexIMatch('title', '^b')),
  not: async () => ids(await posts().not('rating', 'is', null)),
  or: async () => ids(await posts().or('id.eq.1,and(published.is.false,rating.gt.2)')),
  orReferenced: async () => {
    const r = await anon.from('posts').select('id,comments(body)').eq('id', 1)
      .or('votes.eq.5,body.eq.Nice', { referencedTable: 'comments' })
    return r.error ? { error: r.error } : r.data
  },
  filter: async () => ids(await posts().filter('id', 'in', '(2,3)')),
  filterNot: async () => ids(await posts().filter('id', 'not.eq', 1)),
  order: async () => ids(await anon.from('posts').select('id').order('rating', { ascending: false, nullsFirst: false })),
  orderReferenced: async () => {
    const r = await anon.from('posts').select('id,comments(votes)').eq('id', 1)
      .order('votes', { referencedTable: 'comments', ascending: false })
    return r.error ? { error: r.error } : r.data
  },
  limit: async () => ids(await posts().limit(2)),
  limitReferenced: async () => {
    const r = await anon.from('posts').select('id,comments(id)').eq('id', 1).limit(1, { referencedTable: 'comments' })
    return r.error ? { error: r.error } : r.data[0].comments.length
  },
  range: async () => ids(await posts().range(1, 2)),
  count: async () => {
    const r = await anon.from('posts').select('id', { count: 'exact' }).limit(1)
    return { count: r.count, status: r.status, len: r.data.length }
  },
  head: async () => {
    const r = await anon.from('posts').select('*', { count: 'exact', head: true })
    return { count: r.count, data: r.data, status: r.status }
  },
  single: async () => {
    const r = await anon.from('posts').select('id,title').eq('id', 1).single()
    return r.data
  },
  singleError: async () => {
    const r = await anon.from('posts').select('id').single()
    return { code: r.error.code, status: r.status }
  },
  maybeSingle: async () => {
    const r = await anon.from('posts').select('id').eq('id', 99).maybeSingle()
    return { data: r.data, error: r.error }
  },
  csv: async () => (await anon.from('authors').select('id,name').order('id').csv()).data,
  stripNulls: async () => (await anon.from('authors').select('id,bio').eq('id', 2).stripNulls()).data,
  embed: async () => (await anon.from('posts').select('id,author:authors!author_id(name),tags(name)').eq('id', 3)).data,
  innerJoin: async () => ids(await anon.from('posts').select('id,comments!inner(id)').eq('comments.votes', 5)),
  insertSelect: async () => {
    const r = await admin.from('todos').insert({ title: tag, priority: 1 }).select('title,priority').single()
    return r.data
  },
  insertBulk: async () => {
    const r = await admin.from('todos').insert([{ title: tag + 'b' }, { title: tag + 'b', priority: 2 }]).select('priority')
    return r.data
  },
  insertDefault: async () => {
    const r = await admin.from('todos').insert([{ title: tag + 'c' }, { title: tag + 'c', priority: 2 }],
      { defaultToNull: false }).select('priority')
    return r.data
  },
  upsert: async () => {
    await admin.from('kv').upsert({ k: tag, v: '1' })
    const r = await admin.from('kv').upsert({ k: tag, v: '2' }).select('k,v')
    return r.data
  },
  upsertStatus: async () => {  // PostgREST: 201 when a row was inserted, 200 when the merge only updated
    const first = await admin.from('kv').upsert({ k: tag + 's', v: '1' })
    const again = await admin.from('kv').upsert({ k: tag + 's', v: '2' })
    return [first.status, again.status]
  },
  upsertIgnore: async () => {
    const r = await admin.from('kv').upsert({ k: tag, v: '3' }, { ignoreDuplicates: true, onConflict: 'k' }).select()
    return r.data
  },
  update: async () => {
    const r = await admin.from('todos').update({ done: true }).eq('title', tag).select('done')
    return r.data
  },
  updateCount: async () => {
    const r = await admin.from('todos').update({ done: true }, { count: 'exact' }).eq('title', tag + 'b')
    return { count: r.count, status: r.status }
  },
  maxAffected: async () => {
    const r = await admin.from('todos').update({ done: false }).eq('title', tag + 'b').maxAffected(1)
    return r.error && r.error.code
  },
  rollback: async () => {
    await admin.from('todos').insert({ title: tag + 'r' }).rollback()
    const r = await admin.from('todos').select('id').eq('title', tag + 'r')
    return r.data
  },
  delete: async () => {
    const r = await admin.from('todos').delete({ count: 'exact' }).like('title', tag + '%')
    return { count: r.count, status: r.status }
  },
  rpc: async () => (await anon.rpc('add', { a: 1, b: 2 })).data,
  rpcCount: async () => {
    const r = await anon.rpc('add', { a: 1, b: 2 }, { count: 'exact' })
    return { count: r.count, data: r.data }
  },
  rpcUnnamed: async () => (await anon.rpc('poly_ret', { '': 'x' })).data,
  emptyEmbed: async () => (await anon.from('posts').select('title, authors!author_id()').eq('id', 1)).data,
  rpcGet: async () => (await anon.rpc('add', { a: 3, b: 4 }, { get: true })).data,
  rpcSetFiltered: async () => ids(await anon.rpc('posts_by_author', { aid: 1 }).select('id').gt('id', 1)),
  rpcHead: async () => {
    const r = await anon.rpc('numbers', { n: 3 }, { head: true, count: 'exact' })
    return { count: r.count, data: r.data }
  },
  rpcVoid: async () => {
    const r = await anon.rpc('do_nothing')
    return { data: r.data, error: r.error, status: r.status }
  },
  schema: async () => ids(await anon.schema('public').from('posts').select('id').eq('id', 2)),
  errorUnknownTable: async () => (await anon.from('nope').select()).error,
  errorUnknownColumn: async () => (await anon.from('posts').select('nope')).error.code,
  errorPermission: async () => (await anon.from('secrets').select()).error.code,
}

const out = {}
for (const [name, fn] of Object.entries(cases)) {
  try {
    out[name] = await fn()
  } catch (e) {
    out[name] = { exception: String(e) }
  }
}
console.log(JSON.stringify(out))
