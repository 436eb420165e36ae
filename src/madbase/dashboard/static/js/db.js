// A project's database through /admin/v1: its tables (GET database/tables) and SQL (POST database/query,
// audited by the control plane). Values reach SQL only as quoted literals, names only as quoted identifiers.
import { get, items, post } from './api.js';
import { qualified, quoteIdent, quoteLiteral } from './sql.js';

export async function listTables(ref) {
  return items(await get(`/projects/${ref}/database/tables`), 'tables').map((t) => ({
    ...t,
    schema: t.schema || t.table_schema || 'public',
    name: t.name || t.table || t.table_name,
    rls_enabled: Boolean(t.rls_enabled ?? t.rls ?? t.row_security),
  }));
}

// `role`: service_role (the API's bypass-RLS role: the table editor), postgres (the owner: DDL, policies), or
// authenticated / anon to see what those roles see.
export const query = (ref, text, role = 'service_role') => post(`/projects/${ref}/database/query`, { query: text, role });

// The rows of a result as objects keyed by column name.
export function records(result) {
  const names = (result.columns || []).map((c) => (typeof c === 'string' ? c : c.name));
  return { names, rows: (result.rows || []).map((r) => (Array.isArray(r) ? Object.fromEntries(names.map((n, i) => [n, r[i]])) : r)) };
}

export function browseSql(t, { order, desc, filterColumn, filterValue, limit, offset }) {
  let text = `select ctid::text as "__ctid", * from ${qualified(t.schema, t.name)}`;
  if (filterColumn && filterValue !== '') text += ` where ${quoteIdent(filterColumn)}::text ilike ${quoteLiteral(`%${filterValue}%`)}`;
  if (order) text += ` order by ${quoteIdent(order)} ${desc ? 'desc' : 'asc'}`;
  return `${text} limit ${Number(limit) | 0} offset ${Number(offset) | 0}`;
}

export const updateSql = (t, ctid, column, value) =>
  `update ${qualified(t.schema, t.name)} set ${quoteIdent(column)} = ${quoteLiteral(value)} where ctid = ${quoteLiteral(ctid)}::tid`;
export const deleteSql = (t, ctid) => `delete from ${qualified(t.schema, t.name)} where ctid = ${quoteLiteral(ctid)}::tid`;
export function insertSql(t, values) {
  const cols = Object.keys(values);
  if (!cols.length) return `insert into ${qualified(t.schema, t.name)} default values`;
  return `insert into ${qualified(t.schema, t.name)} (${cols.map(quoteIdent).join(', ')}) values (${cols.map((c) => quoteLiteral(values[c])).join(', ')})`;
}
