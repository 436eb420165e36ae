// The table editor: pick a table, page through its rows (sort, filter), edit a cell, insert and delete rows.
// Everything goes through the control plane's SQL route (as the database owner, audited).
import { browseSql, deleteSql, insertSql, listTables, query, records, updateSql } from '../db.js';
import { cell } from '../format.js';
import { action, badge, clear, confirmDanger, dialog, field, h, toast } from '../ui.js';

const PAGE = 50;

export default async function tablesPage({ main, ref, can, query: q, go }) {
  const tables = await listTables(ref);
  const current = tables.find((t) => `${t.schema}.${t.name}` === q.table) || null;
  const here = (extra) => `#/p/${encodeURIComponent(ref)}/tables?${new URLSearchParams({ ...q, ...extra })}`;
  const picker = h('select', { 'aria-label': 'Table', onchange: () => go(here({ table: picker.value, offset: 0 })) },
    h('option', { value: '' }, 'Choose a table…'),
    tables.map((t) => h('option', { value: `${t.schema}.${t.name}`, selected: t === current }, `${t.schema}.${t.name}`)));
  clear(main, h('h1', {}, 'Table editor'), h('div', { class: 'row' }, picker));
  if (!current) { main.append(tables.length ? h('p', { class: 'muted' }, `${tables.length} table(s).`) : h('p', { class: 'muted' }, 'No table yet: create one in the SQL editor.')); return; }
  const offset = Math.max(0, Number(q.offset) || 0);
  const result = await query(ref, browseSql(current, { order: q.order, desc: q.desc === '1', filterColumn: q.fcol, filterValue: q.fval || '', limit: PAGE, offset }));
  const { names, rows } = records(result);
  const columns = names.filter((n) => n !== '__ctid');
  const writable = can('database.write');
  const fcol = h('select', { 'aria-label': 'Filter column' }, columns.map((c) => h('option', { value: c, selected: c === q.fcol }, c)));
  const fval = h('input', { type: 'search', 'aria-label': 'Filter value', value: q.fval || '', placeholder: 'contains…' });
  const filter = h('form', { class: 'row', role: 'search', onsubmit: (e) => { e.preventDefault(); go(here({ fcol: fcol.value, fval: fval.value, offset: 0 })); } },
    fcol, fval, h('button', { type: 'submit' }, 'Filter'));
  async function edit(row, column) {
    const input = h('textarea', { rows: 3 }, row[column] === null ? '' : typeof row[column] === 'object' ? JSON.stringify(row[column]) : String(row[column]));
    const isNull = h('input', { type: 'checkbox', checked: row[column] === null });
    const ok = await dialog(`Edit ${column}`, h('div', {}, field('Value', input), h('label', { class: 'inline' }, isNull, 'NULL')), { confirm: 'Save' });
    if (!ok) return;
    await query(ref, updateSql(current, row.__ctid, column, isNull.checked ? null : input.value));
    toast('Saved');
    go(location.hash);
  }
  const grid = h('div', { class: 'table-wrap', role: 'region', 'aria-label': `Rows of ${current.name}`, tabindex: '0' }, h('table', {},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', 'aria-sort': q.order === c ? (q.desc === '1' ? 'descending' : 'ascending') : null },
      h('button', { type: 'button', class: 'small', onclick: () => go(here({ order: c, desc: q.order === c && q.desc !== '1' ? '1' : '0' })) }, c))),
      writable ? h('th', { scope: 'col' }, 'Row') : null)),
    h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', { class: r[c] === null ? 'null' : null },
      writable ? h('button', { type: 'button', class: 'small', title: `Edit ${c}`, onclick: () => edit(r, c).catch((e) => toast(e.message, 'bad')) }, cell(r[c], 60)) : cell(r[c], 60))),
      writable ? h('td', {}, action('Delete', async () => {
        if (!await confirmDanger('Delete row', 'This row is deleted from the table.')) return;
        await query(ref, deleteSql(current, r.__ctid)); toast('Row deleted'); go(location.hash);
      }, { class: 'small danger' })) : null)))));
  const insert = writable ? action('Insert row', async () => {
    const inputs = Object.fromEntries(columns.map((c) => [c, h('input', { placeholder: 'default' })]));
    const ok = await dialog(`Insert into ${current.name}`, h('div', {}, columns.map((c) => field(c, inputs[c])), h('p', { class: 'muted' }, 'Empty fields take the column default.')), { confirm: 'Insert' });
    if (!ok) return;
    const values = Object.fromEntries(columns.filter((c) => inputs[c].value !== '').map((c) => [c, inputs[c].value]));
    await query(ref, insertSql(current, values)); toast('Row inserted'); go(location.hash);
  }, { class: 'primary' }) : null;
  main.append(h('p', {}, 'RLS ', badge(current.rls_enabled ? 'enabled' : 'disabled', current.rls_enabled ? 'ok' : 'warn'),
    ' · ', h('a', { href: `#/p/${encodeURIComponent(ref)}/policies?table=${encodeURIComponent(`${current.schema}.${current.name}`)}` }, 'policies')),
  filter, h('div', { class: 'row' }, insert), columns.length ? grid : h('p', { class: 'muted' }, 'No columns.'),
  h('div', { class: 'row' },
    offset > 0 ? h('button', { type: 'button', onclick: () => go(here({ offset: Math.max(0, offset - PAGE) })) }, 'Previous') : null,
    h('span', { class: 'muted' }, `Rows ${rows.length ? offset + 1 : 0}–${offset + rows.length}`),
    rows.length === PAGE ? h('button', { type: 'button', onclick: () => go(here({ offset: offset + PAGE })) }, 'Next') : null));
}
