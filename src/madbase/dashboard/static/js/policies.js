// Row Level Security policy templates (pure: unit-tested with node). Each makes the SQL shown to the admin
// before it is run; identifiers are quoted, the owner column is a column name of the table.
import { qualified, quoteIdent } from './sql.js';

export const TEMPLATES = {
  owner: {
    label: 'Owner only: users read and write their own rows',
    needsColumn: true,
    sql: (t, name, col) => `create policy ${quoteIdent(name)} on ${qualified(t.schema, t.name)}\n  for all to authenticated\n  using ((select auth.uid()) = ${quoteIdent(col)})\n  with check ((select auth.uid()) = ${quoteIdent(col)});`,
  },
  authenticated_read: {
    label: 'Authenticated read: any signed-in user reads every row',
    sql: (t, name) => `create policy ${quoteIdent(name)} on ${qualified(t.schema, t.name)}\n  for select to authenticated\n  using (true);`,
  },
  public_read: {
    label: 'Public read: everyone, signed in or not, reads every row',
    sql: (t, name) => `create policy ${quoteIdent(name)} on ${qualified(t.schema, t.name)}\n  for select to anon, authenticated\n  using (true);`,
  },
};

export function defaultName(template, table) {
  return { owner: `Owners manage their ${table.name}`, authenticated_read: `Signed-in users read ${table.name}`,
    public_read: `Anyone reads ${table.name}` }[template];
}

// The full script: RLS enabled first when it is off (a policy does nothing without it).
export function policySql(template, table, { name, column, rlsEnabled = true } = {}) {
  const t = TEMPLATES[template];
  if (!t) throw new Error(`unknown template ${template}`);
  if (t.needsColumn && !column) throw new Error('choose the column holding the owner’s user id');
  const create = t.sql(table, name || defaultName(template, table), column);
  return rlsEnabled ? create : `alter table ${qualified(table.schema, table.name)} enable row level security;\n${create}`;
}

export const enableRlsSql = (table) => `alter table ${qualified(table.schema, table.name)} enable row level security;`;
