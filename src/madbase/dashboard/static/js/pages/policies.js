// Row Level Security: each table's RLS state and policies, and templates for the common Supabase policies
// (owner only, authenticated read, public read) whose SQL is shown — and editable — before it runs.
import { get, items } from '../api.js';
import { enableRlsSql, policySql, TEMPLATES, defaultName } from '../policies.js';
import { listTables, query, records } from '../db.js';
import { qualified, quoteLiteral } from '../sql.js';
import { action, badge, clear, field, h, table, toast } from '../ui.js';
import { sqlEditor } from './sql.js';

async function columnsOf(ref, t) {
  const result = await query(ref, `select column_name from information_schema.columns where table_schema = ${quoteLiteral(t.schema)} and table_name = ${quoteLiteral(t.name)} order by ordinal_position`);
  return records(result).rows.map((r) => r.column_name);
}

export default async function policiesPage({ main, ref, can, query: q, go }) {
  const tables = await listTables(ref);
  const current = tables.find((t) => `${t.schema}.${t.name}` === q.table) || null;
  const picker = h('select', { 'aria-label': 'Table', onchange: () => go(`#/p/${encodeURIComponent(ref)}/policies?table=${encodeURIComponent(picker.value)}`) },
    h('option', { value: '' }, 'Choose a table…'),
    tables.map((t) => h('option', { value: `${t.schema}.${t.name}`, selected: t === current }, `${t.schema}.${t.name} — RLS ${t.rls_enabled ? 'on' : 'off'}`)));
  clear(main, h('h1', {}, 'Policies'), h('div', { class: 'row' }, picker));
  if (!current) {
    main.append(table([
      { key: 'name', label: 'Table', render: (t) => h('a', { href: `#/p/${encodeURIComponent(ref)}/policies?table=${encodeURIComponent(`${t.schema}.${t.name}`)}` }, `${t.schema}.${t.name}`) },
      { key: 'rls_enabled', label: 'RLS', render: (t) => badge(t.rls_enabled ? 'enabled' : 'disabled', t.rls_enabled ? 'ok' : 'bad') },
    ], tables, { caption: 'Tables and their Row Level Security', empty: 'No table yet.' }));
    return;
  }
  const policies = items(await get(`/projects/${ref}/database/tables/${encodeURIComponent(current.schema)}/${encodeURIComponent(current.name)}/policies`), 'policies');
  main.append(h('p', {}, 'Row Level Security ', badge(current.rls_enabled ? 'enabled' : 'disabled', current.rls_enabled ? 'ok' : 'bad'),
    current.rls_enabled ? '' : ' — without it, every role with table privileges reads and writes every row.'),
  table([
    { key: 'name', label: 'Policy', render: (p) => p.name || p.policyname },
    { key: 'command', label: 'Command', render: (p) => p.command || p.cmd || 'ALL' },
    { key: 'roles', label: 'Roles', render: (p) => [].concat(p.roles || []).join(', ') },
    { key: 'using', label: 'Using', render: (p) => h('code', {}, p.using || p.definition || p.qual || '') },
    { key: 'with_check', label: 'With check', render: (p) => h('code', {}, p.with_check || p.check || '') },
  ], policies, { caption: `Policies on ${current.schema}.${current.name}`, empty: 'No policy on this table.' }));
  if (!can('database.write')) return;
  const columns = await columnsOf(ref, current);
  const template = h('select', {}, Object.entries(TEMPLATES).map(([id, t]) => h('option', { value: id }, t.label)));
  const name = h('input', { autocomplete: 'off' });
  const column = h('select', {}, columns.map((c) => h('option', { value: c, selected: c === 'user_id' || c === 'owner_id' }, c)));
  const columnField = field('Owner column (holds the user id)', column);
  const editor = sqlEditor('', 'Policy SQL');
  function regenerate() {
    columnField.hidden = !TEMPLATES[template.value].needsColumn;
    if (!name.dataset.touched) name.value = defaultName(template.value, current);
    try { editor.area.value = policySql(template.value, current, { name: name.value, column: column.value, rlsEnabled: current.rls_enabled }); }
    catch (err) { editor.area.value = `-- ${err.message}`; }
    editor.paint();
  }
  template.addEventListener('change', regenerate);
  column.addEventListener('change', regenerate);
  name.addEventListener('input', () => { name.dataset.touched = '1'; regenerate(); });
  regenerate();
  main.append(h('section', { class: 'card', 'aria-labelledby': 'tpl-title' }, h('h2', { id: 'tpl-title' }, 'New policy from a template'),
    field('Template', template), field('Policy name', name), columnField,
    h('p', { class: 'muted' }, 'The SQL that will run (you may edit it):'), editor.el,
    h('div', { class: 'row' }, action('Run SQL', async () => {
      await query(ref, editor.area.value, 'postgres'); toast('Policy created'); go(location.hash);
    }, { class: 'primary' }),
    current.rls_enabled ? null : action('Enable RLS only', async () => {
      await query(ref, enableRlsSql(current), 'postgres'); toast(`RLS enabled on ${qualified(current.schema, current.name)}`); go(location.hash);
    }))));
}
