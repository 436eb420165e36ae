// Unit tests of the dashboard's pure logic (run by tests/dashboard/test_unit.py with `node --test`).
import test from 'node:test';
import assert from 'node:assert/strict';

const base = new URL('../../../src/madbase/dashboard/static/js/', import.meta.url);
const sql = await import(new URL('sql.js', base));
const policies = await import(new URL('policies.js', base));
const format = await import(new URL('format.js', base));
const rights = await import(new URL('rights.js', base));
const chart = await import(new URL('chart.js', base));

test('tokenize covers the text and classifies', () => {
  const text = "select 'it''s', 42 -- note\nfrom \"My Table\" where x = $$a;b$$;";
  const tokens = sql.tokenize(text);
  assert.equal(tokens.map((t) => t.text).join(''), text);
  const kinds = Object.fromEntries(tokens.filter((t) => t.type !== 'space').map((t) => [t.text, t.type]));
  assert.equal(kinds.select, 'kw');
  assert.equal(kinds["'it''s'"], 'str');
  assert.equal(kinds['42'], 'num');
  assert.equal(kinds['-- note'], 'com');
  assert.equal(kinds['"My Table"'], 'ident');
  assert.equal(kinds['$$a;b$$'], 'str');
});

test('an unterminated string or comment still covers the text', () => {
  for (const text of ["select 'abc", 'select /* open', 'select "x', 'select $tag$ body']) {
    assert.equal(sql.tokenize(text).map((t) => t.text).join(''), text);
  }
});

test('statements split on semicolons outside strings and comments', () => {
  const text = "select ';'; -- a;b\nselect 2;\n\n";
  const all = sql.statements(text);
  assert.deepEqual(all.map((s) => s.text.trim()), ["select ';';", '-- a;b\nselect 2;']);
  assert.equal(sql.statementAt(text, 3).offset, 0);
  assert.equal(sql.statementAt(text, text.indexOf('select 2')).text.trim(), '-- a;b\nselect 2;');
});

test('run the selection when there is one, else the whole text', () => {
  const text = 'select 1;\nselect 2;';
  assert.deepEqual(sql.toRun(text, 10, 19), { text: 'select 2;', offset: 10 });
  assert.deepEqual(sql.toRun(text, 4, 4), { text, offset: 0 });
  assert.deepEqual(sql.toRun(text, 9, 10), { text, offset: 0 });  // a blank selection runs everything
});

test('an error position becomes line and column', () => {
  const text = 'select 1;\nselect nope from x;';
  assert.deepEqual(sql.lineCol(text, text.indexOf('nope') + 1), { line: 2, column: 8, index: 17 });
  assert.equal(sql.lineCol(text, 1).line, 1);
  assert.equal(sql.lineCol(text, 9999).line, 2);
});

test('quoting', () => {
  assert.equal(sql.quoteIdent('we"ird'), '"we""ird"');
  assert.equal(sql.quoteLiteral("O'Brien"), "'O''Brien'");
  assert.equal(sql.quoteLiteral(null), 'null');
  assert.equal(sql.quoteLiteral({ a: 1 }), "'{\"a\":1}'");
  assert.throws(() => sql.quoteLiteral('a\0b'));
  assert.deepEqual(sql.remember(['b', 'a'], ' a '), ['a', 'b']);
});

test('policy templates', () => {
  const t = { schema: 'public', name: 'todos' };
  const owner = policies.policySql('owner', t, { column: 'user_id' });
  assert.match(owner, /^create policy "Owners manage their todos" on "public"\."todos"/);
  assert.match(owner, /using \(\(select auth\.uid\(\)\) = "user_id"\)/);
  assert.match(owner, /with check/);
  assert.throws(() => policies.policySql('owner', t, {}), /column/);
  const pub = policies.policySql('public_read', t, { name: 'x"y', rlsEnabled: false });
  assert.match(pub, /^alter table "public"\."todos" enable row level security;\ncreate policy "x""y"/);
  assert.match(pub, /for select to anon, authenticated/);
  assert.match(policies.policySql('authenticated_read', t), /for select to authenticated\n  using \(true\);$/);
});

test('formatting', () => {
  assert.equal(format.bytes(0), '0 B');
  assert.equal(format.bytes(1536), '1.5 KB');
  assert.equal(format.bytes(5 * 1024 * 1024), '5.0 MB');
  assert.equal(format.number(12345), '12.3k');
  assert.equal(format.number(2.5), '2.50');
  assert.equal(format.duration(3600), '1 h');
  assert.equal(format.duration(90), '2 min');
  assert.equal(format.dateTime('2026-01-02T03:04:05Z'), '2026-01-02 03:04:05 UTC');
  assert.equal(format.relative('2026-01-01T00:00:00Z', Date.parse('2026-01-01T00:05:00Z')), '5 min ago');
  assert.equal(format.cell(null), 'NULL');
  assert.equal(format.cell('x'.repeat(300)).length, 200);
  assert.equal(format.mask('abcdefghijklmnopqrstuvwxyz'), 'abcdef…wxyz');
});

test('rights follow the server rules', () => {
  assert.ok(rights.grants(['*', '!keys.write'], 'keys.read'));
  assert.ok(!rights.grants(['*', '!keys.write'], 'keys.write'));
  assert.ok(rights.grants(['*.read'], 'audit.read'));
  assert.ok(!rights.grants(['auth.*'], 'storage.read'));
  const reader = { method: 'session', rights: { platform: [], projects: { abc: [['*.read']] } } };
  assert.ok(rights.allows(reader, 'auth.read', 'abc'));
  assert.ok(!rights.allows(reader, 'auth.write', 'abc'));
  assert.ok(!rights.allows(reader, 'auth.read', 'other'));
  assert.ok(!rights.allows(reader, 'auth.read'));
  const old = { method: 'session', roles: [{ role: 'developer', project_ref: null }] };  // no `rights`
  assert.ok(rights.allows(old, 'projects.write', 'x'));
  assert.ok(!rights.allows(old, 'projects.delete', 'x'));
  const scoped = { method: 'token', rights: { platform: [['*']], projects: {} }, token_scope: { rights: ['*.read'], projects: ['abc'] } };
  assert.ok(rights.allows(scoped, 'auth.read', 'abc'));
  assert.ok(!rights.allows(scoped, 'auth.write', 'abc'));
  assert.ok(!rights.allows(scoped, 'auth.read', null));
});

test('chart paths scale into the box', () => {
  const d = chart.linePath([[0, 0], [60, 10], [120, 5]], 100, 50);
  assert.equal(d, 'M0.0,50.0 L50.0,0.0 L100.0,25.0');
  assert.equal(chart.linePath([], 100, 50), '');
  assert.equal(chart.linePath([[0, 3]], 100, 50), 'M50.0,0.0');
  assert.deepEqual(chart.extent([[1, -2], [3, 4]]), { x0: 1, x1: 3, min: -2, max: 4 });
});
