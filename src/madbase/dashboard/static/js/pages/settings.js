// A project's settings, one page per section of GET|PATCH /projects/{ref}/config/{section}. The form is built
// from the section's JSON (booleans, numbers, text, lists); secrets come back as "********" and are sent only
// when typed anew. The auth section also sends a test mail through the configured SMTP server.
import { get, patch, post } from '../api.js';
import { action, clear, field, h, toast } from '../ui.js';

export const SECTIONS = ['auth', 'api', 'jwt', 'database', 'storage', 'realtime', 'functions'];
const SECRET = '********';

function inputFor(key, value) {
  if (typeof value === 'boolean') return h('input', { type: 'checkbox', checked: value });
  if (typeof value === 'number') return h('input', { type: 'number', value: String(value), step: 'any' });
  if (Array.isArray(value)) return h('input', { value: value.join(', '), 'data-kind': 'list' });
  if (value && typeof value === 'object') return h('textarea', { rows: 4, 'data-kind': 'json' }, JSON.stringify(value, null, 2));
  if (value === SECRET) return h('input', { type: 'password', placeholder: 'unchanged (saved secret)', autocomplete: 'new-password', 'data-kind': 'secret' });
  return h('input', { value: value == null ? '' : String(value) });
}

function read(input, original) {
  if (input.type === 'checkbox') return input.checked;
  if (input.type === 'number') return input.value === '' ? null : Number(input.value);
  if (input.dataset.kind === 'list') return input.value.split(',').map((s) => s.trim()).filter(Boolean);
  if (input.dataset.kind === 'json') return JSON.parse(input.value || 'null');
  if (input.dataset.kind === 'secret') return input.value === '' ? original : input.value;
  return input.value === '' && original == null ? null : input.value;
}

export default async function settingsPage({ main, ref, can, query: q, go }) {
  const section = SECTIONS.includes(q.section) ? q.section : 'auth';
  const tabs = h('nav', { class: 'row', 'aria-label': 'Settings sections' }, SECTIONS.map((s) =>
    h('a', { class: `button small${s === section ? ' primary' : ''}`, href: `#/p/${encodeURIComponent(ref)}/settings?section=${s}`, 'aria-current': s === section ? 'page' : null }, s)));
  const config = await get(`/projects/${ref}/config/${section}`);
  const writable = can('config.write');
  const inputs = Object.fromEntries(Object.entries(config || {}).map(([k, v]) => [k, inputFor(k, v)]));
  for (const input of Object.values(inputs)) input.disabled = !writable;
  const form = h('form', { class: 'stack card', 'aria-label': `${section} settings` },
    Object.entries(inputs).map(([k, input]) => input.type === 'checkbox' ? h('label', { class: 'inline' }, input, k) : field(k, input)),
    writable ? h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Save')) : null);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const changes = {};
    try {
      for (const [k, input] of Object.entries(inputs)) {
        const value = read(input, config[k]);
        if (JSON.stringify(value) !== JSON.stringify(config[k])) changes[k] = value;
      }
    } catch (err) { toast(`Not valid JSON: ${err.message}`, 'bad'); return; }
    if (!Object.keys(changes).length) { toast('Nothing changed'); return; }
    try { await patch(`/projects/${ref}/config/${section}`, changes); toast('Saved'); go(location.hash); }
    catch (err) { toast(err.message, 'bad'); }
  });
  const smtp = section === 'auth' && writable ? (() => {
    const to = h('input', { type: 'email', placeholder: 'you@example.com' });
    const reply = h('pre', { hidden: true });
    return h('section', { class: 'card' }, h('h2', {}, 'Send a test mail'), field('To', to),
      action('Send test mail', async () => {
        const r = await post(`/projects/${ref}/config/auth/smtp/test`, { to: to.value });
        reply.hidden = false; reply.textContent = `${r.ok ? 'Sent' : 'Failed'}: ${r.reply || ''}`;
      }), reply);
  })() : null;
  clear(main, h('h1', {}, 'Settings'), tabs, form, smtp);
}
