// A project's overview: its state and health at a glance, then charts of the last hour or day drawn from the
// server's own metrics (GET /projects/{ref}/usage).
import { ApiError, get } from '../api.js';
import { bytes, dateTime } from '../format.js';
import { lineChart } from '../chart.js';
import { badge, clear, h } from '../ui.js';
import { statusKind } from './projects.js';

async function optional(path) {
  try { return await get(path); } catch (err) { if (err instanceof ApiError && (err.noRoute || err.status === 404)) return null; throw err; }
}

const CHARTS = [
  ['Requests per minute', [['requests', 'requests'], ['errors', 'errors']], {}],
  ['Latency (ms)', [['latency_p50_ms', 'p50'], ['latency_p99_ms', 'p99']], { unit: ' ms' }],
  ['Database pool in use', [['pool_in_use', 'connections']], {}],
  ['Realtime sockets', [['realtime_sockets', 'sockets']], {}],
  ['Replication slot lag', [['slot_lag_bytes', 'lag']], { format: bytes }],
  ['Storage', [['storage_bytes', 'bytes']], { format: bytes }],
  ['Function invocations', [['function_invocations', 'invocations']], {}],
];

export default async function overviewPage({ main, ref, query, go }) {
  const period = query.period === '24h' ? '24h' : '1h';
  const [project, health, usage] = await Promise.all([
    optional(`/projects/${ref}`), optional(`/projects/${ref}/health`), optional(`/projects/${ref}/usage?period=${period}`)]);
  const series = (usage && usage.series) || {};
  const switcher = h('div', { class: 'row', role: 'group', 'aria-label': 'Period' },
    ['1h', '24h'].map((p) => h('button', { type: 'button', class: `small${p === period ? ' primary' : ''}`, 'aria-pressed': String(p === period),
      onclick: () => go(`#/p/${encodeURIComponent(ref)}/overview?period=${p}`) }, p === '1h' ? 'Last hour' : 'Last day')));
  const checks = health && health.checks ? Object.entries(health.checks).map(([k, v]) => {
    const ok = v === true || v === 'ok' || (v && (v.ok === true || v.status === 'ok'));
    return h('li', {}, badge(ok ? 'ok' : 'check', ok ? 'ok' : 'warn'), ` ${k}`, v && v.detail ? ` — ${v.detail}` : '');
  }) : [];
  clear(main, h('h1', {}, project ? `${project.name || ref}` : `Project ${ref}`),
    h('div', { class: 'cards' },
      h('div', { class: 'card' }, h('h2', {}, 'Project'),
        project ? [h('p', {}, 'Status ', badge(project.status || '?', statusKind(project.status))),
          h('p', {}, 'API URL ', h('code', {}, project.api_url || location.origin)),
          h('p', { class: 'muted' }, `Created ${dateTime(project.created_at)}`)]
          : h('p', { class: 'muted' }, 'Project details are not available on this server.')),
      h('div', { class: 'card' }, h('h2', {}, 'Health'),
        health ? [h('p', {}, badge(health.status || '?', statusKind(health.status === 'ok' ? 'healthy' : health.status))), h('ul', {}, checks)]
          : h('p', { class: 'muted' }, 'Health is not available on this server.'))),
    h('h2', {}, 'Usage'), switcher,
    usage ? h('div', { class: 'cards' }, CHARTS.map(([title, lines, opts]) =>
      lineChart(title, lines.map(([key, label]) => ({ label, points: series[key] || [] })), opts)))
      : h('p', { class: 'muted' }, 'Usage charts are not available on this server.'));
}
