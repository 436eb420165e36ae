// Storage: buckets (create with public flag, size and MIME limits), folders, drag-and-drop upload with
// progress, image preview, download, signed URL copy, delete — through /admin/v1's storage routes (audited);
// only a signed URL needs the project's public Storage API (with its service key).
import { ADMIN_BASE, csrfToken, fetchRaw, get, items, post, del, publicApi } from '../api.js';
import { bytes, dateTime } from '../format.js';
import { action, clear, confirmDanger, copy, dialog, field, h, table, toast } from '../ui.js';

const enc = (path) => path.split('/').map(encodeURIComponent).join('/');

function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', ADMIN_BASE + path);
    xhr.withCredentials = true;
    const csrf = csrfToken();
    if (csrf) xhr.setRequestHeader('x-csrf-token', csrf);
    xhr.setRequestHeader('x-upsert', 'true');
    xhr.setRequestHeader('content-type', file.type || 'application/octet-stream');
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener('load', () => (xhr.status < 300 ? resolve() : reject(new Error(safeMessage(xhr.responseText) || `HTTP ${xhr.status}`))));
    xhr.addEventListener('error', () => reject(new Error('upload failed')));
    xhr.send(file);
  });
}
function safeMessage(text) { try { const j = JSON.parse(text); return j.message || j.error; } catch { return text.slice(0, 200); } }

export default async function storagePage({ main, ref, can, query: q, go }) {
  const base = `/projects/${ref}/buckets`;
  const buckets = items(await get(`${base}?limit=1000`), 'buckets');
  const writable = can('storage.write');
  const bucket = buckets.find((b) => b.id === q.bucket || b.name === q.bucket) || null;
  const prefix = q.prefix || '';
  const here = (extra) => `#/p/${encodeURIComponent(ref)}/storage?${new URLSearchParams({ ...(bucket ? { bucket: bucket.id } : {}), ...extra })}`;
  clear(main, h('h1', {}, 'Storage'));
  main.append(h('nav', { class: 'row', 'aria-label': 'Buckets' }, buckets.map((b) =>
    h('a', { class: `button small${bucket && b.id === bucket.id ? ' primary' : ''}`, href: `#/p/${encodeURIComponent(ref)}/storage?bucket=${encodeURIComponent(b.id)}`,
      'aria-current': bucket && b.id === bucket.id ? 'page' : null }, `${b.name}${b.public ? ' (public)' : ''}`)),
  writable ? action('New bucket', async () => {
    const name = h('input', { required: true, pattern: '[a-z0-9][a-z0-9_.\\-]*' });
    const pub = h('input', { type: 'checkbox' });
    const size = h('input', { type: 'number', min: 0, placeholder: 'no limit' });
    const mimes = h('input', { placeholder: 'image/*, application/pdf' });
    if (!await dialog('New bucket', h('div', {}, field('Name', name), h('label', { class: 'inline' }, pub, 'Public (anyone can read its files by URL)'),
      field('File size limit (bytes)', size), field('Allowed MIME types (comma separated)', mimes)), { confirm: 'Create' })) return;
    const body = { id: name.value, name: name.value, public: pub.checked };
    if (size.value) body.file_size_limit = Number(size.value);
    if (mimes.value.trim()) body.allowed_mime_types = mimes.value.split(',').map((s) => s.trim()).filter(Boolean);
    await post(base, body);
    toast('Bucket created'); go(`#/p/${encodeURIComponent(ref)}/storage?bucket=${encodeURIComponent(name.value)}`);
  }, { class: 'primary small' }) : null));
  if (!bucket) { if (!buckets.length) main.append(h('p', { class: 'muted' }, 'No bucket yet.')); return; }
  const listing = await get(`${base}/${encodeURIComponent(bucket.id)}/objects?${new URLSearchParams({ prefix, limit: '1000' })}`);
  const preview = h('section', { class: 'preview', 'aria-live': 'polite', 'aria-label': 'Preview' });
  const crumbs = h('nav', { class: 'row', 'aria-label': 'Folder' }, h('a', { href: here({}) }, bucket.name),
    prefix.split('/').filter(Boolean).map((part, i, all) => ['/', h('a', { href: here({ prefix: `${all.slice(0, i + 1).join('/')}/` }) }, part)]));
  const objectPath = (path) => `${base}/${encodeURIComponent(bucket.id)}/objects/${enc(path)}`;
  async function show(path) {
    const blob = await (await fetchRaw(objectPath(path))).blob();
    const url = URL.createObjectURL(blob);
    clear(preview, h('h2', {}, path), blob.type.startsWith('image/') ? h('img', { src: url, alt: `Preview of ${path}` }) : h('p', { class: 'muted' }, `${blob.type || 'file'}, ${bytes(blob.size)}`),
      h('div', { class: 'row' }, h('a', { class: 'button', href: url, download: path.split('/').pop() }, 'Download'),
        action('Copy signed URL', async () => {
          const r = await publicApi(ref, 'POST', `/storage/v1/object/sign/${encodeURIComponent(bucket.id)}/${enc(path)}`, { body: { expiresIn: 3600 } });
          const signed = r.signedURL || r.signedUrl;
          await copy(new URL(signed.startsWith('/storage') ? signed : `/storage/v1${signed}`, location.origin).href);
        })));
  }
  const label = (o) => o.key || o.name.replace(/\/$/, '').split('/').pop();
  const rows = [...(listing.folders || []).map((f) => ({ ...f, folder: true })), ...(listing.objects || [])];
  const list = table([
    { key: 'name', label: 'Name', render: (o) => (o.folder ? h('a', { href: here({ prefix: `${o.name.replace(/\/$/, '')}/` }) }, `${label(o)}/`)
      : h('button', { type: 'button', class: 'small', onclick: () => show(o.name).catch((e) => toast(e.message, 'bad')) }, label(o))) },
    { key: 'size', label: 'Size', render: (o) => (o.metadata ? bytes(o.metadata.size) : '') },
    { key: 'type', label: 'Type', render: (o) => (o.metadata ? o.metadata.mimetype : '') },
    { key: 'updated_at', label: 'Updated', render: (o) => (o.folder ? '' : dateTime(o.updated_at)) },
    { key: 'actions', label: '', render: (o) => (writable && !o.folder ? action('Delete', async () => {
      if (!await confirmDanger('Delete file', `${o.name} is deleted.`)) return;
      await del(objectPath(o.name)); toast('Deleted'); go(location.hash);
    }, { class: 'small danger' }) : '') },
  ], rows, { caption: `${bucket.name}/${prefix}`, empty: 'This folder is empty.' });
  let drop = null;
  if (writable) {
    const picker = h('input', { type: 'file', multiple: true, 'aria-label': 'Files to upload' });
    const progress = h('div', { 'aria-live': 'polite' });
    const send = async (files) => {
      for (const file of files) {
        const bar = h('progress', { max: 1, value: 0, 'aria-label': `Uploading ${file.name}` });
        progress.append(h('div', { class: 'row' }, file.name, bar));
        await upload(objectPath(`${prefix}${file.name}`), file, (f) => { bar.value = f; });
        bar.value = 1;
      }
      toast('Uploaded'); go(location.hash);
    };
    picker.addEventListener('change', () => send([...picker.files]).catch((e) => toast(e.message, 'bad')));
    drop = h('div', { class: 'dropzone' }, h('p', {}, 'Drop files here, or choose them:'), picker, progress);
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); send([...e.dataTransfer.files]).catch((err) => toast(err.message, 'bad')); });
  }
  main.append(crumbs, drop, list, preview);
}
