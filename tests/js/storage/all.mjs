// Drives every storage-js endpoint against a MadBase server; prints one JSON object of results.
// env: SUPABASE_URL, SERVICE_KEY, ANON_KEY, BUCKET
import { createClient } from '@supabase/supabase-js'
import { createHash, randomBytes } from 'node:crypto'

const url = process.env.SUPABASE_URL
const bucket = process.env.BUCKET
const other = bucket + '-js2'
const sb = createClient(url, process.env.SERVICE_KEY, { auth: { persistSession: false }, realtime: { transport: class {} } })
const anon = createClient(url, process.env.ANON_KEY, { auth: { persistSession: false }, realtime: { transport: class {} } })
const out = {}
const err = (e) => (e ? { message: e.message, statusCode: e.statusCode ?? null, status: e.status ?? null, name: e.name } : null)
const sha = (buf) => createHash('sha256').update(Buffer.from(buf)).digest('hex')

let r
r = await sb.storage.createBucket(bucket, { public: false, fileSizeLimit: '10MB' })
out.createBucket = { data: r.data, error: err(r.error) }
r = await sb.storage.createBucket(other, { public: false })
r = await sb.storage.createBucket(bucket)
out.createDuplicate = err(r.error)
r = await sb.storage.getBucket(bucket)
out.getBucket = { id: r.data?.id, public: r.data?.public, limit: r.data?.file_size_limit, error: err(r.error) }
r = await sb.storage.listBuckets()
out.listBuckets = r.data?.map((b) => b.id).includes(bucket)
r = await sb.storage.updateBucket(bucket, { public: true, fileSizeLimit: '10MB' })
out.updateBucket = { data: r.data, error: err(r.error) }

const f = sb.storage.from(bucket)
r = await f.upload('folder/blob.txt', new Blob(['blob body'], { type: 'text/plain' }), { cacheControl: '120', metadata: { a: 1 } })
out.uploadBlob = { data: r.data, error: err(r.error) }
r = await f.upload('folder/buf.bin', Buffer.from([1, 2, 3, 4]), { contentType: 'application/octet-stream' })
out.uploadBuffer = { data: r.data, error: err(r.error) }
r = await f.upload('folder/sub/str.txt', 'a string body')
out.uploadString = { path: r.data?.path, error: err(r.error) }
r = await f.upload('folder/blob.txt', new Blob(['again']))
out.uploadDuplicate = err(r.error)
r = await f.upload('folder/blob.txt', new Blob(['upserted'], { type: 'text/plain' }), { upsert: true })
out.uploadUpsert = err(r.error)
r = await f.update('folder/buf.bin', Buffer.from([9, 9]), { contentType: 'application/x-test' })
out.update = err(r.error)

r = await f.download('folder/blob.txt')
out.downloadBlob = { text: r.data ? await r.data.text() : null, error: err(r.error) }
r = await f.download('folder/buf.bin')
out.downloadBuf = r.data ? Array.from(new Uint8Array(await r.data.arrayBuffer())) : err(r.error)
r = await f.download('folder/missing.txt')
out.downloadMissing = err(r.error)

r = await f.info('folder/blob.txt')
out.info = { data: r.data, error: err(r.error) }
r = await f.exists('folder/blob.txt')
out.existsTrue = r.data
r = await f.exists('folder/nope.txt')
out.existsFalse = { data: r.data, error: err(r.error) }

r = await f.list('folder', { limit: 10, offset: 0, sortBy: { column: 'name', order: 'asc' } })
out.list = r.data?.map((e) => ({ name: e.name, folder: e.id === null }))
r = await f.list('')
out.listRoot = r.data?.map((e) => e.name)
r = await f.list('folder', { search: 'bl' })
out.listSearch = r.data?.map((e) => e.name)

r = await f.listV2({ prefix: 'folder/', with_delimiter: true })
out.listV2 = r.data ? { folders: r.data.folders.map((x) => x.name), objects: r.data.objects.map((x) => x.name), hasNext: r.data.hasNext } : err(r.error)

r = await f.move('folder/sub/str.txt', 'folder/moved.txt')
out.move = { data: r.data, error: err(r.error) }
r = await f.copy('folder/moved.txt', 'copied.txt', { destinationBucket: other })
out.copy = { data: r.data, error: err(r.error) }
r = await sb.storage.from(other).download('copied.txt')
out.copiedText = r.data ? await r.data.text() : err(r.error)
r = await f.move('folder/moved.txt', 'moved-across.txt', { destinationBucket: other })
out.moveAcross = err(r.error)

r = await f.createSignedUrl('folder/blob.txt', 60)
out.signedUrlFetch = r.data ? await (await fetch(r.data.signedUrl)).text() : err(r.error)
r = await f.createSignedUrl('folder/blob.txt', 60, { download: 'x.txt' })
out.signedDownloadDisposition = r.data ? (await fetch(r.data.signedUrl)).headers.get('content-disposition') : err(r.error)
r = await f.createSignedUrls(['folder/blob.txt', 'folder/none.txt'], 60)
out.signedUrls = r.data?.map((e) => ({ path: e.path, error: e.error, ok: !!e.signedUrl }))
r = await f.createSignedUploadUrl('signed/up.txt')
if (r.error) out.signedUpload = err(r.error)
else {
  const u = await f.uploadToSignedUrl('signed/up.txt', r.data.token, new Blob(['signed upload'], { type: 'text/plain' }))
  out.signedUpload = { data: u.data, error: err(u.error) }
  const d = await f.download('signed/up.txt')
  out.signedUploadText = d.data ? await d.data.text() : err(d.error)
}
r = await f.upload('space dir/hello wörld.txt', 'spaced out', { contentType: 'text/plain' })
out.spaceUpload = err(r.error)
r = await f.createSignedUrl('space dir/hello wörld.txt', 60)
out.spaceSigned = r.data ? await (await fetch(r.data.signedUrl)).text() : err(r.error)
r = await f.download('space dir/hello wörld.txt')
out.spaceDownload = r.data ? await r.data.text() : err(r.error)
r = await f.purgeCache('folder/blob.txt')
out.purgeCache = { data: r.data, error: err(r.error) }
r = await f.purgeCache('folder/nothing.txt')
out.purgeMissing = err(r.error)
const pub = f.getPublicUrl('folder/blob.txt')
out.publicFetch = await (await fetch(pub.data.publicUrl)).text()
out.anonPublicDownload = await anon.storage.from(bucket).download('folder/blob.txt').then(async (x) => (x.data ? await x.data.text() : err(x.error)))

// 6 MB round trip, checksums, Range
const big = randomBytes(6 * 1024 * 1024)
r = await f.upload('big/six.bin', big, { contentType: 'application/octet-stream' })
out.bigUpload = err(r.error)
r = await f.download('big/six.bin')
const got = r.data ? Buffer.from(await r.data.arrayBuffer()) : Buffer.alloc(0)
out.bigSha = { sent: sha(big), got: sha(got), size: got.length }
const ranged = await fetch(`${url}/storage/v1/object/${bucket}/big/six.bin`, {
  headers: { apikey: process.env.SERVICE_KEY, Authorization: `Bearer ${process.env.SERVICE_KEY}`, Range: 'bytes=1000000-1999999' },
})
const rangedBody = Buffer.from(await ranged.arrayBuffer())
out.range = { status: ranged.status, ok: sha(rangedBody) === sha(big.subarray(1000000, 2000000)), len: rangedBody.length }

r = await f.remove(['folder/blob.txt', 'folder/buf.bin', 'nope.txt'])
out.remove = r.data?.map((e) => e.name).sort()
r = await sb.storage.deleteBucket(bucket)
out.deleteNotEmpty = err(r.error)
r = await sb.storage.emptyBucket(bucket)
out.empty = { data: r.data, error: err(r.error) }
r = await sb.storage.deleteBucket(bucket)
out.deleteBucket = { data: r.data, error: err(r.error) }
r = await sb.storage.getBucket(bucket)
out.getDeleted = err(r.error)
console.log(JSON.stringify(out))
