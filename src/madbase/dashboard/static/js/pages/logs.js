// Request logs of a project, filterable by service, status, path and time (GET /projects/{ref}/logs).
import { get, items } from '../api.js';
import { dateTime } from '../format.js';
import { clear, field, h, table } from '../ui.js';

const SERVICES = ['', 'rest', 'auth', 'storage', 'realtime', 'functions', 'graphql'];

function toIso(local) { if (!local) return ''; const d = new Date(local); return Number.isNaN(d.getTime()) ? '' : d.toISOString(); }

export default async function logsPage({ main, ref, query: q, go }) {
  const params = new URLSearchParams();
  for (const k of ['service', 'status', 'path', 'since', 'until']) if (q[k]) params.set(k, q[k]);
  const data = await get(`/projects/${ref}/logs${params.toString() ? `?${params}` : ''}`);
  const entries = items(data, 'logs').length ? items(data, 'logs') : items(data, 'entries');
  const service = h('select', {}, SERVICES.map((s) => h('option', { value: s, selected: s === (q.service || '') }, s || 'any service')));
  const status = h('input', { value: q.status || '', placeholder: 'e.g. 500 or 4xx', size: 8 });
  const path = h('input', { value: q.path || '', placeholder: '/rest/v1/…' });
  const since = h('input', { type: 'datetime-local' });
  const until = h('input', { type: 'datetime-local' });
  const form = h('form', { class: 'row', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    if (service.value) next.set('service', service.value);
    if (status.value.trim()) next.set('status', status.value.trim());
    if (path.value.trim()) next.set('path', path.value.trim());
    if (toIso(since.value)) next.set('since', toIso(since.value));
    if (toIso(until.value)) next.set('until', toIso(until.value));
    go(`#/p/${encodeURIComponent(ref)}/logs${next.toString() ? `?${next}` : ''}`);
  } }, field('Service', service), field('Status', status), field('Path', path), field('Since', since), field('Until', until),
  h('button', { type: 'submit', class: 'primary' }, 'Filter'));
  clear(main, h('h1', {}, 'Logs'), form,
    table([
      { key: 'at', label: 'When', render: (r) => dateTime(r.at || r.timestamp || r.time) },
      { key: 'service', label: 'Service' }, { key: 'method', label: 'Method' },
      { key: 'path', label: 'Path' }, { key: 'status', label: 'Status' },
      { key: 'duration_ms', label: 'ms', render: (r) => r.duration_ms ?? r.latency_ms ?? null },
      { key: 'request_id', label: 'Request id' },
    ], entries, { caption: 'Requests, newest first', empty: 'No request matches.' }));
}
