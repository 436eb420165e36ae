// API URL and keys: copy, reveal on demand, create/revoke, rotation with a grace window, and a ready-to-paste
// createClient(...) snippet.
import { ApiError, api, forgetKeys, get, items, post, del } from '../api.js';
import { dateTime, duration } from '../format.js';
import { action, badge, clear, confirmDanger, copyButton, dialog, field, h, notAvailable, table, toast } from '../ui.js';

export function snippet(url, key) {
  return `import { createClient } from '@supabase/supabase-js'\n\nconst supabase = createClient(\n  '${url}',\n  '${key}'\n)\n`;
}

export default async function keysPage({ main, ref, can, go }) {
  let project = null;
  try { project = await get(`/projects/${ref}`); } catch (err) { if (!(err instanceof ApiError && err.status === 404)) throw err; }
  const url = (project && project.api_url) || location.origin;
  let keys;
  try { keys = items(await get(`/projects/${ref}/api-keys`), 'keys'); }
  catch (err) {
    if (err instanceof ApiError && err.noRoute) { notAvailable(main, 'API keys'); main.prepend(h('h1', {}, 'API & keys'), h('p', {}, 'API URL ', h('code', {}, url), ' ', copyButton(url))); return; }
    throw err;
  }
  let revealed = null;
  const reveal = async () => { revealed ||= items(await get(`/projects/${ref}/api-keys?reveal=true`), 'keys'); return revealed; };
  const clearKey = async (k) => (await reveal()).find((r) => r.id === k.id)?.api_key || k.api_key;
  const anon = keys.find((k) => k.name === 'anon' && !k.revoked_at) || keys.find((k) => k.type === 'publishable' && !k.revoked_at);
  const code = h('pre', { 'aria-label': 'createClient snippet' }, snippet(url, anon ? anon.api_key : '<publishable key>'));
  const graceInput = h('input', { type: 'number', min: 0, max: 604800, value: 3600 });
  const rows = keys.map((k) => {
    const shown = h('code', {}, k.api_key);
    return { ...k, shown,
      actions: h('div', { class: 'row' },
        copyButton(() => clearKey(k), 'Copy'),
        can('keys.read') ? action('Reveal', async (b) => { shown.textContent = await clearKey(k); b.remove(); }, { class: 'small' }) : null,
        can('keys.write') && k.type !== 'legacy' && !k.revoked_at ? action('Revoke', async () => {
          if (!await confirmDanger('Revoke key', `Clients using “${k.name}” are refused from now on.`)) return;
          await del(`/projects/${ref}/api-keys/${k.id}`); forgetKeys(); toast('Key revoked'); go(location.hash);
        }, { class: 'small danger' }) : null) };
  });
  const newName = h('input', { required: true, maxlength: 64, autocomplete: 'off' });
  const newType = h('select', {}, h('option', { value: 'publishable' }, 'publishable (browsers, apps)'), h('option', { value: 'secret' }, 'secret (servers only)'));
  const createForm = h('form', { class: 'stack card', 'aria-label': 'New key' }, h('h2', {}, 'New key'), field('Name', newName), field('Type', newType),
    h('button', { type: 'submit', class: 'primary' }, 'Create key'));
  createForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const k = await post(`/projects/${ref}/api-keys`, { type: newType.value, name: newName.value.trim() });
      await dialog('Key created', h('div', {}, h('p', {}, 'Copy it now: a secret key is not shown in clear again without “reveal”.'),
        h('pre', {}, k.api_key), copyButton(k.api_key)), { cancel: null, confirm: 'Done' });
      go(location.hash);
    } catch (err) { toast(err.message, 'bad'); }
  });
  const rotate = (what, path) => action(`Rotate ${what}`, async () => {
    const grace = Math.max(0, Number(graceInput.value) || 0);
    if (!await confirmDanger(`Rotate ${what}`, `New ${what} are issued now. The old ones keep working for ${duration(grace)} (the grace window), then are refused: update your clients within that time.`)) return;
    const result = await api('POST', `/projects/${ref}/${path}`, { grace_seconds: grace });
    forgetKeys();
    toast(`${what} rotated${result && result.grace_until ? `; old ones valid until ${dateTime(result.grace_until)}` : ''}`);
    go(location.hash);
  }, { class: 'danger' });
  clear(main, h('h1', {}, 'API & keys'),
    h('section', { class: 'card' }, h('h2', {}, 'API URL'), h('div', { class: 'row' }, h('code', {}, url), copyButton(url))),
    h('h2', {}, 'Keys'),
    table([
      { key: 'name', label: 'Name' }, { key: 'type', label: 'Type', render: (k) => badge(k.type) },
      { key: 'shown', label: 'Key' },
      { key: 'created_at', label: 'Created', render: (k) => dateTime(k.created_at) },
      { key: 'revoked_at', label: 'Revoked', render: (k) => k.revoked_at ? dateTime(k.revoked_at) : '—' },
      { key: 'actions', label: 'Actions' },
    ], rows, { caption: 'Keys of this project' }),
    h('h2', {}, 'Use it from JavaScript'), code, copyButton(async () => snippet(url, anon ? await clearKey(anon) : '<publishable key>'), 'Copy snippet'),
    can('keys.write') ? [createForm,
      h('section', { class: 'card' }, h('h2', {}, 'Rotation'),
        h('p', {}, 'Rotating issues new keys at once; during the grace window both the old and the new ones are accepted, so deployed clients keep working while you update them. After it, the old ones are refused.'),
        field('Grace window (seconds)', graceInput),
        h('div', { class: 'row' }, rotate('legacy keys', 'api-keys/legacy/rotate'), rotate('JWT secret', 'jwt-secret/rotate')))] : null);
}
