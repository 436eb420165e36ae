// The audit log: one record per successful mutation on the control plane (platform-wide, or one project's).
import { get, items } from '../api.js';
import { dateTime } from '../format.js';
import { action, clear, h, table } from '../ui.js';

export default async function auditPage({ main, ref, query, go }) {
  const base = ref ? `/projects/${ref}/audit` : '/audit';
  const params = new URLSearchParams();
  for (const k of ['actor', 'action', 'cursor']) if (query[k]) params.set(k, query[k]);
  params.set('limit', '50');
  const data = await get(`${base}?${params}`);
  const records = items(data, 'records');
  const actor = h('input', { type: 'search', 'aria-label': 'Actor', placeholder: 'actor e-mail', value: query.actor || '' });
  const act = h('input', { type: 'search', 'aria-label': 'Action', placeholder: 'action, e.g. admin.login', value: query.action || '' });
  const here = ref ? `#/p/${encodeURIComponent(ref)}/audit` : '#/audit';
  const filters = h('form', { class: 'row', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (actor.value.trim()) q.set('actor', actor.value.trim());
    if (act.value.trim()) q.set('action', act.value.trim());
    go(`${here}${q.toString() ? `?${q}` : ''}`);
  } }, actor, act, h('button', { type: 'submit' }, 'Filter'));
  const next = data.next_cursor ? action('Older', async () => {
    const q = new URLSearchParams(query); q.set('cursor', data.next_cursor); go(`${here}?${q}`);
  }) : null;
  clear(main, h('h1', {}, ref ? `Audit log of ${ref}` : 'Audit log'), filters,
    table([
      { key: 'at', label: 'When', render: (r) => dateTime(r.at) },
      { key: 'actor', label: 'Actor', render: (r) => { const a = r.actor || {}; return `${a.email || a.id || '—'} (${a.method || '?'})`; } },
      { key: 'action', label: 'Action', render: (r) => h('code', {}, r.action) },
      { key: 'target', label: 'Target' },
      { key: 'project_ref', label: 'Project' },
      { key: 'source_ip', label: 'IP' },
      { key: 'details', label: 'Details', render: (r) => h('code', {}, JSON.stringify(r.details || {})) },
    ], records, { caption: 'Audit records, newest first', empty: 'No record matches.' }),
    h('div', { class: 'row' }, next));
}
