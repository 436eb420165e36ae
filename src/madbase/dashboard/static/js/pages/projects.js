// Projects: the list with each one's state at a glance, create (a new database on the default cluster, or a
// database of your own whose connection test is shown before saving), pause, delete and restore.
import { ApiError, get, items, post, del } from '../api.js';
import { allows } from '../rights.js';
import { dateTime } from '../format.js';
import { action, badge, clear, confirmDanger, field, h, notAvailable, table, toast } from '../ui.js';

export function statusKind(status) {
  return { active: 'ok', healthy: 'ok', paused: 'warn', disabled: 'warn', degraded: 'warn', deleted: 'bad', failed: 'bad', unhealthy: 'bad' }[status] || '';
}

function checksList(checks) {
  return h('ul', {}, (checks || []).map((c) => h('li', {}, badge(c.ok ? 'ok' : 'failed', c.ok ? 'ok' : 'bad'), ' ',
    h('strong', {}, c.name), c.detail ? ` — ${c.detail}` : '')));
}

function createForm(done) {
  const name = h('input', { required: true, maxlength: 64, autocomplete: 'off' });
  const ref = h('input', { pattern: '[a-z0-9][a-z0-9\\-]{1,38}', autocomplete: 'off', placeholder: 'generated when empty' });
  const mode = h('select', {}, h('option', { value: 'cluster' }, 'A new database on the default cluster'),
    h('option', { value: 'byo' }, 'My own PostgreSQL database (URL)'));
  const url = h('input', { type: 'password', autocomplete: 'off', placeholder: 'postgresql://user:pass@host:5432/db' });
  const urlField = field('Database URL', url, 'Tested before saving: server version, wal_level, privileges, extensions.');
  urlField.hidden = true;
  const report = h('div', { 'aria-live': 'polite' });
  mode.addEventListener('change', () => { urlField.hidden = mode.value !== 'byo'; });
  const test = action('Test connection', async () => {
    clear(report, h('p', { class: 'muted' }, 'Testing…'));
    const result = await post('/projects/test-connection', { database_url: url.value });
    clear(report, h('p', {}, result.ok ? badge('connection ok', 'ok') : badge('connection failed', 'bad')), checksList(result.checks));
  });
  const form = h('form', { class: 'stack card', 'aria-label': 'New project' },
    h('h2', {}, 'New project'), field('Name', name), field('Ref (optional)', ref), field('Database', mode), urlField,
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Create project')), report);
  urlField.append(h('div', { class: 'row' }, test));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim() };
    if (ref.value.trim()) body.ref = ref.value.trim();
    if (mode.value === 'byo') body.database_url = url.value;
    try {
      clear(report, h('p', { class: 'muted' }, 'Creating…'));
      const project = await post('/projects', body);
      toast(`Project ${project.ref} created`);
      done(project);
    } catch (err) {
      clear(report, h('p', { class: 'error', role: 'alert' }, err.message), checksList(err.body && err.body.checks));
    }
  });
  return form;
}

export default async function projectsPage(ctx) {
  const { main, me, go } = ctx;
  clear(main, h('h1', {}, 'Projects'), h('p', { class: 'muted' }, 'Loading…'));
  let list;
  try { list = items(await get('/projects'), 'projects'); }
  catch (err) {
    if (err instanceof ApiError && err.noRoute) {
      notAvailable(main, 'The projects list');
      main.prepend(h('h1', {}, 'Projects'));
      main.append(h('p', {}, 'Open a project by its ref in the box at the top.'));
      return;
    }
    throw err;
  }
  const canCreate = allows(me, 'projects.write');
  const row = (p) => {
    const actions = h('div', { class: 'row' });
    if (!p.deleted_at && p.status !== 'deleted') {
      actions.append(h('a', { class: 'button small', href: `#/p/${encodeURIComponent(p.ref)}/overview` }, 'Open'));
      if (allows(me, 'projects.write', p.ref)) {
        if (p.status === 'paused') actions.append(action('Restore', async () => { await post(`/projects/${p.ref}/restore`); toast('Restored'); go('#/projects'); }, { class: 'small' }));
        else actions.append(action('Pause', async () => {
          if (!await confirmDanger('Pause project', `Pausing ${p.ref} refuses every API call to it until it is restored.`)) return;
          await post(`/projects/${p.ref}/pause`); toast('Paused'); go('#/projects');
        }, { class: 'small' }));
      }
      if (allows(me, 'projects.delete', p.ref)) actions.append(action('Delete', async () => {
        if (!await confirmDanger('Delete project', `The project ${p.ref} stops answering; it can be restored during the grace period.`, p.ref)) return;
        await del(`/projects/${p.ref}`); toast('Deleted'); go('#/projects');
      }, { class: 'small danger' }));
    } else if (allows(me, 'projects.write', p.ref)) {
      actions.append(action('Restore', async () => { await post(`/projects/${p.ref}/restore`); toast('Restored'); go('#/projects'); }, { class: 'small' }));
    }
    return actions;
  };
  clear(main, h('h1', {}, 'Projects'),
    table([
      { key: 'name', label: 'Name', render: (p) => p.name || p.ref },
      { key: 'ref', label: 'Ref', render: (p) => h('code', {}, p.ref) },
      { key: 'status', label: 'Status', render: (p) => badge(p.deleted_at ? 'deleted' : p.status || '?', statusKind(p.deleted_at ? 'deleted' : p.status)) },
      { key: 'database', label: 'Database', render: (p) => (p.database && p.database.kind) || '—' },
      { key: 'created_at', label: 'Created', render: (p) => dateTime(p.created_at) },
      { key: 'actions', label: 'Actions', render: row },
    ], list, { caption: `${list.length} project(s)`, empty: 'No project yet.' }),
    canCreate ? createForm((p) => go(`#/p/${encodeURIComponent(p.ref)}/api`)) : null);
}
