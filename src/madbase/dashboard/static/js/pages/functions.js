// Edge functions: list, deploy (in-browser editor or an uploaded file), versions with rollback, invoke with
// a test request (the public /functions/v1 with the service key), live logs (polled), and secrets (names only
// once saved).
import { api, get, items, post, publicApi } from '../api.js';
import { dateTime } from '../format.js';
import { action, badge, clear, confirmDanger, field, h, table, toast } from '../ui.js';
import { sqlEditor } from './sql.js';

const STARTER = `Deno.serve(async (req) => {\n  const { name } = await req.json().catch(() => ({ name: 'world' }))\n  return new Response(JSON.stringify({ message: \`Hello \${name}!\` }), {\n    headers: { 'content-type': 'application/json' },\n  })\n})\n`;

function toBase64(buffer) {
  let s = '';
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

let poller = null;

function deployForm(ref, go, existing) {
  const slug = h('input', { required: true, pattern: '[A-Za-z0-9_\\-]{1,64}', value: existing ? existing.slug : '', readonly: Boolean(existing) });
  const verify = h('input', { type: 'checkbox', checked: existing ? existing.verify_jwt !== false : true });
  const editor = sqlEditor(STARTER, 'Function source');
  editor.area.dataset.tabIndents = 'on';
  const file = h('input', { type: 'file', accept: '.ts,.js,.mjs,.wasm' });
  const form = h('form', { class: 'card', 'aria-label': 'Deploy a function' }, h('h2', {}, existing ? `Deploy a new version of ${existing.slug}` : 'Deploy a function'),
    field('Slug', slug), h('label', { class: 'inline' }, verify, 'Require a valid JWT (verify_jwt)'),
    h('p', { class: 'muted' }, 'Source (TypeScript/JavaScript; Tab indents, Esc then Tab leaves the editor):'), editor.el,
    field('Or upload a file (.ts, .js, .wasm)', file),
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Deploy')));
  editor.area.addEventListener('keydown', (e) => { if (e.key === 'Escape') editor.area.dataset.tabIndents = 'off'; });
  editor.area.addEventListener('focus', () => { editor.area.dataset.tabIndents = 'on'; });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { slug: slug.value.trim(), verify_jwt: verify.checked };
    const chosen = file.files && file.files[0];
    if (chosen && chosen.name.endsWith('.wasm')) body.wasm_base64 = toBase64(await chosen.arrayBuffer());
    else if (chosen) { body.source = await chosen.text(); body.entrypoint = chosen.name; }
    else body.source = editor.area.value;
    try {
      const f = await post(`/projects/${ref}/functions`, body);
      toast(`Deployed ${f.slug || body.slug} version ${f.version ?? ''}`);
      go(`#/p/${encodeURIComponent(ref)}/functions?slug=${encodeURIComponent(f.slug || body.slug)}`);
    } catch (err) { toast(err.message, 'bad'); }
  });
  return form;
}

async function detail(main, ref, fn, can, go) {
  const writable = can('functions.write');
  const versions = items(await get(`/projects/${ref}/functions/${fn.slug}/versions`).catch(() => []), 'versions');
  const method = h('select', {}, ['POST', 'GET', 'PUT', 'PATCH', 'DELETE'].map((m) => h('option', {}, m)));
  const body = h('textarea', { rows: 4, 'aria-label': 'Request body' }, '{"name": "MadBase"}');
  const answer = h('pre', { 'aria-live': 'polite', 'aria-label': 'Response' });
  const logs = h('pre', { class: 'log', 'aria-label': 'Logs' });
  async function refreshLogs() {
    const data = items(await get(`/projects/${ref}/functions/${fn.slug}/logs`), 'logs');
    logs.textContent = data.map((l) => (typeof l === 'string' ? l : `${dateTime(l.at)} v${l.version ?? '?'} ${l.method || ''} ${l.path || ''} → ${l.status ?? ''} ${l.duration_ms != null ? `${l.duration_ms} ms` : ''}${l.error ? ` [${l.error}]` : ''}${l.logs ? `\n  ${String(l.logs).trimEnd().replace(/\n/g, '\n  ')}` : ''}`)).join('\n') || '(no logs yet)';
  }
  clearInterval(poller);
  poller = setInterval(() => { if (!logs.isConnected) clearInterval(poller); else refreshLogs().catch(() => {}); }, 3000);
  main.append(h('section', { class: 'card' }, h('h2', {}, `${fn.name || fn.slug} `, badge(`v${fn.version ?? '?'}`)),
    h('p', {}, 'URL ', h('code', {}, `${location.origin}/functions/v1/${fn.slug}`)),
    h('h3', {}, 'Invoke'), h('div', { class: 'row' }, field('Method', method)), field('Body', body),
    action('Invoke', async () => {
      const res = await publicApi(ref, method.value, `/functions/v1/${fn.slug}`, { body: ['GET', 'DELETE'].includes(method.value) ? undefined : body.value, headers: { 'content-type': 'application/json' }, raw: true }).catch((err) => err);
      if (res instanceof Error) { answer.textContent = `Error ${res.status || ''}: ${res.message}`; return; }
      answer.textContent = `${res.status} ${res.statusText}\n\n${await res.text()}`;
      refreshLogs().catch(() => {});
    }, { class: 'primary' }), answer,
    h('h3', {}, 'Logs (live)'), logs,
    h('h3', {}, 'Versions'),
    table([{ key: 'version', label: 'Version' }, { key: 'created_at', label: 'Deployed', render: (v) => dateTime(v.created_at) },
      { key: 'rollback', label: '', render: (v) => (writable && v.version !== fn.version ? action('Roll back to this', async () => {
        if (!await confirmDanger('Roll back', `Version ${v.version} answers again instead of ${fn.version}.`)) return;
        await post(`/projects/${ref}/functions/${fn.slug}/rollback`, { version: v.version }); toast('Rolled back'); go(location.hash);
      }, { class: 'small' }) : '') }], versions, { empty: 'No version history.' }),
    writable ? action('Delete function', async () => {
      if (!await confirmDanger('Delete function', `${fn.slug} stops answering.`, fn.slug)) return;
      await api('DELETE', `/projects/${ref}/functions/${fn.slug}`); toast('Deleted'); go(`#/p/${encodeURIComponent(ref)}/functions`);
    }, { class: 'danger' }) : null));
  refreshLogs().catch(() => {});
  if (writable) main.append(deployForm(ref, go, fn));
}

async function secrets(ref, can, go) {
  if (!can('secrets.read')) return null;
  const list = items(await get(`/projects/${ref}/secrets`), 'secrets');
  const name = h('input', { pattern: '[A-Za-z_][A-Za-z0-9_]*', 'aria-label': 'Secret name', placeholder: 'NAME' });
  const value = h('input', { type: 'password', 'aria-label': 'Secret value', autocomplete: 'new-password', placeholder: 'value' });
  const writable = can('secrets.write');
  return h('section', { class: 'card' }, h('h2', {}, 'Secrets'), h('p', { class: 'muted' }, 'Values are never shown again once saved.'),
    table([{ key: 'name', label: 'Name' }, { key: 'updated_at', label: 'Updated', render: (s) => dateTime(s.updated_at) },
      { key: 'x', label: '', render: (s) => (writable ? action('Delete', async () => {
        if (!await confirmDanger('Delete secret', `${s.name} is removed from every function's environment.`)) return;
        await api('DELETE', `/projects/${ref}/secrets`, [s.name]); go(location.hash);
      }, { class: 'small danger' }) : '') }], list, { empty: 'No secret.' }),
    writable ? h('form', { class: 'row', onsubmit: async (e) => {
      e.preventDefault();
      try { await api('POST', `/projects/${ref}/secrets`, [{ name: name.value.trim(), value: value.value }]); toast('Secret saved'); go(location.hash); }
      catch (err) { toast(err.message, 'bad'); }
    } }, name, value, h('button', { type: 'submit' }, 'Save secret')) : null);
}

export default async function functionsPage({ main, ref, can, query: q, go }) {
  const fns = items(await get(`/projects/${ref}/functions`), 'functions');
  const current = fns.find((f) => f.slug === q.slug) || null;
  clear(main, h('h1', {}, 'Functions'),
    table([
      { key: 'slug', label: 'Function', render: (f) => h('a', { href: `#/p/${encodeURIComponent(ref)}/functions?slug=${encodeURIComponent(f.slug)}`, 'aria-current': f === current ? 'page' : null }, f.slug) },
      { key: 'version', label: 'Version' }, { key: 'status', label: 'Status' },
      { key: 'verify_jwt', label: 'JWT', render: (f) => (f.verify_jwt === false ? 'not required' : 'required') },
      { key: 'updated_at', label: 'Updated', render: (f) => dateTime(f.updated_at) },
    ], fns, { caption: 'Deployed functions', empty: 'No function deployed yet.' }));
  if (current) await detail(main, ref, current, can, go);
  else if (can('functions.write')) main.append(deployForm(ref, go, null));
  const box = await secrets(ref, can, go).catch(() => null);
  if (box) main.append(box);
}
