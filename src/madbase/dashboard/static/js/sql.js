// SQL text helpers for the editor and the table browser (pure: unit-tested with node): tokens for
// highlighting, the statement to run (selection or the one under the cursor), an error position as
// line/column, and quoting of identifiers and literals.
const KEYWORDS = new Set(`select from where and or not null is in as on join left right inner outer full cross
using group by order having limit offset insert into values update set delete create table alter drop index
view policy for to with check all any some distinct union intersect except case when then else end returning
begin commit rollback grant revoke primary key references foreign unique default true false exists between like
ilike asc desc nulls first last schema function returns language security definer enable disable row level
trigger execute procedure if replace cascade restrict do nothing conflict cast column add constraint sequence
extension materialized refresh explain analyze vacuum truncate authenticated anon public`.split(/\s+/));

// [{type: 'kw'|'str'|'num'|'com'|'ident'|'punct'|'space', text}] covering the whole input.
export function tokenize(text) {
  const out = [];
  const re = /(--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|('(?:[^']|'')*'?|\$([A-Za-z_]*)\$[\s\S]*?(?:\$\3\$|$))|("(?:[^"]|"")*"?)|(\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_$]*)|(\s+)|(.)/gy;
  let m;
  while ((m = re.exec(text)) !== null && m[0] !== '') {
    if (m[1]) out.push({ type: 'com', text: m[0] });
    else if (m[2]) out.push({ type: 'str', text: m[0] });
    else if (m[4]) out.push({ type: 'ident', text: m[0] });
    else if (m[5]) out.push({ type: 'num', text: m[0] });
    else if (m[6]) out.push({ type: KEYWORDS.has(m[0].toLowerCase()) ? 'kw' : 'ident', text: m[0] });
    else if (m[7]) out.push({ type: 'space', text: m[0] });
    else out.push({ type: 'punct', text: m[0] });
  }
  return out;
}

// The statements of a script with their offsets, split on semicolons outside strings and comments.
export function statements(text) {
  const out = [];
  let start = 0;
  let pos = 0;
  for (const t of tokenize(text)) {
    pos += t.text.length;
    if (t.type === 'punct' && t.text === ';') { out.push({ text: text.slice(start, pos), offset: start }); start = pos; }
  }
  if (start < text.length) out.push({ text: text.slice(start), offset: start });
  return out.filter((s) => tokenize(s.text).some((t) => !['space', 'com', 'punct'].includes(t.type)));
}

// What "Run" runs: the selection when there is one, else the whole text. {text, offset} (offset: where it
// starts in the editor, to place a server error's position back in the editor's text).
export function toRun(text, selStart = 0, selEnd = 0) {
  if (selEnd > selStart && text.slice(selStart, selEnd).trim()) return { text: text.slice(selStart, selEnd), offset: selStart };
  return { text, offset: 0 };
}

// The statement under the cursor (for "Run statement"), or null.
export function statementAt(text, cursor) {
  const all = statements(text);
  return all.find((s) => cursor >= s.offset && cursor <= s.offset + s.text.length) || all[all.length - 1] || null;
}

// PostgreSQL's error position (1-based character index) → {line, column} (1-based).
export function lineCol(text, position) {
  const index = Math.max(0, Math.min(text.length, Number(position) - 1));
  const before = text.slice(0, index).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1, index };
}

export function quoteIdent(name) {
  return `"${String(name).replace(/"/g, '""')}"`;
}

export function quoteLiteral(value) {
  if (value === null || value === undefined) return 'null';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (text.includes('\0')) throw new Error('a value cannot contain a NUL character');
  return `'${text.replace(/'/g, "''")}'`;
}

export const qualified = (schema, table) => `${quoteIdent(schema)}.${quoteIdent(table)}`;

// Save-able history: newest first, no duplicates, bounded.
export function remember(history, query, max = 50) {
  const q = query.trim();
  if (!q) return history;
  return [q, ...history.filter((h) => h !== q)].slice(0, max);
}
