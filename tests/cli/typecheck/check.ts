// Type-checked by tests/cli/test_gen_types.py with `tsc --noEmit` against the pinned supabase-js: the
// generated Database type must drive createClient<Database>() (rows, inserts, embeds, rpc) and refuse misuse.
import { createClient } from '@supabase/supabase-js'
import { Constants } from './database.types'
import type { CompositeTypes, Database, Enums, Tables, TablesInsert, TablesUpdate } from './database.types'

const supabase = createClient<Database>('http://127.0.0.1:54321', 'anon-key')
const tg = supabase.schema('tg')

export async function check(): Promise<void> {
  const { data: authors } = await tg.from('authors').select('id, name, mood, tags, books(title, pages, moods)')
  if (authors) {
    const id: number = authors[0].id
    const name: string = authors[0].name
    const mood: 'happy' | 'sad' | 'it\'s "odd"' = authors[0].mood
    const tags: string[] | null = authors[0].tags
    const title: string = authors[0].books[0].title
    const pages: number | null = authors[0].books[0].pages
    const moods: Database['tg']['Enums']['mood'][] = authors[0].books[0].moods
    // @ts-expect-error a nullable column is not a plain number
    const notNull: number = authors[0].books[0].pages
    void [id, name, mood, tags, title, pages, moods, notNull]
  }
  const { data: book } = await tg.from('books').select('title, author:authors(name), slug').single()
  if (book) {
    const author: string = book.author.name // many-to-one: one object
    const slug: string | null = book.slug
    void [author, slug]
  }
  const { data: profile } = await tg.from('authors').select('name, profiles(bio)').single()
  if (profile) {
    const bio: string | null | undefined = profile.profiles?.bio // one-to-one: an object, not an array
    void bio
  }
  await tg.from('authors').insert({ name: 'Ada', home: { street: 'Main', zip: 1 }, meta: { a: [1, 'x'] } })
  // @ts-expect-error name is required (not null, no default)
  await tg.from('authors').insert({ mood: 'sad' })
  // @ts-expect-error a generated column cannot be written
  await tg.from('books').insert({ author_id: 1, title: 'T', slug: 's' })
  // @ts-expect-error an identity ALWAYS column cannot be written
  await tg.from('books').update({ seq: 3 }).eq('title', 'T')
  // @ts-expect-error not a value of the enum
  await tg.from('authors').update({ mood: 'angry' }).eq('id', 1)
  // @ts-expect-error no such table
  await tg.from('nope').select('*')
  await tg.from('book_titles').insert({ title: 'via view', author_id: 1 })
  const { data: titles } = await tg.from('book_titles').select('title, authors(name)')
  if (titles) {
    const writer: string | undefined = titles[0].authors?.name // a view inherits its base table's foreign key
    void writer
  }
  const { data: stats } = await tg.from('author_stats').select('id, books')
  if (stats) {
    const books: number | null = stats[0].books
    void books
  }
  const { data: sum } = await tg.rpc('add', { a: 1 })
  const total: number | null = sum
  // @ts-expect-error a is required
  await tg.rpc('add', { b: 2 })
  const { data: sad } = await tg.rpc('authors_by_mood', { m: 'sad' })
  if (sad) {
    const first: string = sad[0].name
    void first
  }
  const { data: embedded } = await tg.rpc('authors_by_mood', { m: 'happy' }).select('name, books(title)')
  if (embedded) {
    const bookTitle: string = embedded[0].books[0].title // embedding on a function's rows (SetofOptions)
    void bookTitle
  }
  const { data: perAuthor } = await tg.rpc('stats')
  if (perAuthor) {
    const n: number | null = perAuthor[0].n
    void n
  }
  const { data: pong } = await tg.rpc('ping')
  const text: string | null = pong
  await tg.rpc('overloaded', { x: 1 })
  await tg.rpc('overloaded', { x: 'one' })
  void [total, text]
}

export const row: Tables<{ schema: 'tg' }, 'authors'> = {
  id: 1, name: 'Ada', mood: 'happy', tags: null, meta: null, home: null, born: '2020-01-01', score: 3,
  'odd name': true,
}
export const view: Tables<{ schema: 'tg' }, 'author_stats'> = { id: 1, books: 2 }
export const insert: TablesInsert<{ schema: 'tg' }, 'books'> = { author_id: 1, title: 'T' }
export const update: TablesUpdate<{ schema: 'tg' }, 'books'> = { pages: 10 }
export const mood: Enums<{ schema: 'tg' }, 'mood'> = 'sad'
export const address: CompositeTypes<{ schema: 'tg' }, 'address'> = { street: 'Main', zip: null }
export const moods: readonly ['happy', 'sad', 'it\'s "odd"'] = Constants.tg.Enums.mood
