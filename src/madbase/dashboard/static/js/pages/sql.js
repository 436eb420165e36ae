// The SQL editor: highlighted text, run all or the selection (Ctrl/⌘+Enter), a results grid, errors with
// their position placed in the editor, and a history kept in this browser (localStorage).
import { post } from '../api.js';
import { lineCol, remember, toRun, tokenize } from '../sql.js';
import { action, clear, h, table } from '../ui.js';

const HISTORY_MAX = 50;
const historyKey = (ref) => `madbase.sql-history.${ref}`;
function loadHistory(ref) { try { return JSON.parse(localStorage.getItem(historyKey(ref)) || '[]'); } catch { return []; } }

// The editor: a transparent textarea over a highlighted copy of its text.
export function sqlEditor(initial = '', label = 'SQL') {
  const pre = h('pre', { 'aria-hidden': 'true' });
  const area = h('textarea', { spellcheck: 'false', rows: 10, 'aria-label': label, autocapitalize: 'off', autocomplete: 'off' });
  area.value = initial;
  const paint = () => {
    clear(pre, tokenize(area.value).map((t) => (['kw', 'str', 'num', 'com'].includes(t.type) ? h('span', { class: `tok-${t.type}` }, t.text) : t.text)), '\n');
    pre.scrollTop = area.scrollTop;
  };
  area.addEventListener('input', paint);
  area.addEventListener('scroll', () => { pre.scrollTop = area.scrollTop; pre.scrollLeft = area.scrollLeft; });
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Tab' && !e.shiftKey && !e.ctrlKey && !e.altKey && area.dataset.tabIndents === 'on') {
      e.preventDefault(); area.setRangeText('  ', area.selectionStart, area.selectionEnd, 'end'); paint();
    }
  });
  paint();
  return { el: h('div', { class: 'editor' }, pre, area), area, paint };
}

export function resultGrid(result) {
  const columns = (result.columns || []).map((c, i) => ({ key: i, label: typeof c === 'string' ? c : c.name }));
  const rows = (result.rows || []).map((r) => (Array.isArray(r) ? r : columns.map((c) => r[c.label])));
  return table(columns.map((c) => ({ key: c.key, label: c.label })), rows,
    { caption: `${result.row_count ?? rows.length} row(s)${result.truncated ? ' (truncated)' : ''}`, empty: `Done: ${result.row_count ?? 0} row(s).` });
}

export default async function sqlPage({ main, ref, can }) {
  let history = loadHistory(ref);
  const editor = sqlEditor(history[0] || 'select now();');
  const out = h('section', { 'aria-live': 'polite', 'aria-label': 'Results' });
  const role = h('select', { 'aria-label': 'Run as role' }, [['postgres', 'postgres (owner)'], ['service_role', 'service_role'],
    ['authenticated', 'authenticated'], ['anon', 'anon']].map(([v, l]) => h('option', { value: v }, l)));
  const historyList = h('ol', {});
  function renderHistory() {
    clear(historyList, history.map((q) => h('li', {}, h('button', { type: 'button', class: 'small mono', title: q,
      onclick: () => { editor.area.value = q; editor.paint(); editor.area.focus(); } }, q.length > 80 ? `${q.slice(0, 79)}…` : q))));
  }
  async function run() {
    const { text, offset } = toRun(editor.area.value, editor.area.selectionStart, editor.area.selectionEnd);
    if (!text.trim()) return;
    clear(out, h('p', { class: 'muted' }, 'Running…'));
    const started = performance.now();
    try {
      const result = await post(`/projects/${ref}/database/query`, { query: text, role: role.value });
      clear(out, h('p', { class: 'muted' }, `${Math.round(performance.now() - started)} ms`), resultGrid(result));
    } catch (err) {
      const where = err.body && err.body.position ? lineCol(editor.area.value, offset + Number(err.body.position)) : null;
      clear(out, h('div', { class: 'card', role: 'alert' }, h('p', { class: 'error' }, err.message),
        where ? h('p', {}, `at line ${where.line}, column ${where.column}`) : null));
      if (where) { editor.area.focus(); editor.area.setSelectionRange(where.index, where.index + 1); }
    }
    history = remember(history, text, HISTORY_MAX);
    localStorage.setItem(historyKey(ref), JSON.stringify(history));
    renderHistory();
  }
  editor.area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  renderHistory();
  clear(main, h('h1', {}, 'SQL editor'),
    h('p', { class: 'muted' }, can('database.write')
      ? 'Runs as the database owner. Ctrl/⌘+Enter runs the selection, or everything when nothing is selected.'
      : 'Your role may read only: statements that write are refused by the server.'),
    editor.el,
    h('div', { class: 'row' }, action('Run', run, { class: 'primary' }), h('label', { class: 'inline' }, 'as', role),
      action('Clear history', async () => { history = []; localStorage.removeItem(historyKey(ref)); renderHistory(); }, { class: 'small' })),
    out, h('details', {}, h('summary', {}, 'History'), historyList));
}
