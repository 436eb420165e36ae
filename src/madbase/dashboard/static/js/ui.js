// Tiny DOM helpers: element building (text only through textContent: no HTML from data ever reaches
// innerHTML), dialogs, toasts, copy buttons, tables.
import { cell } from './format.js';

export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value' && !svg) el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) { el.replaceChildren(); append(el, children); return el; }

export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  const t = h('div', { class: `toast ${kind}` }, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'bad' ? 8000 : 4000);
}

export function errorText(err) {
  if (!err) return '';
  return err.message || String(err);
}

export function showError(err) { toast(errorText(err), 'bad'); }

// A modal dialog (the native <dialog>: focus trapped, Escape closes). `body` is nodes; resolves true/false.
export function dialog(title, body, { confirm = 'OK', danger = false, cancel = 'Cancel', typed = null } = {}) {
  return new Promise((resolve) => {
    const input = typed ? h('input', { 'aria-label': `Type ${typed} to confirm`, autocomplete: 'off' }) : null;
    const ok = h('button', { class: danger ? 'danger' : 'primary', type: 'submit', disabled: Boolean(typed) }, confirm);
    if (input) input.addEventListener('input', () => { ok.disabled = input.value !== typed; });
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'dialog-title' }, title), body,
      input ? [h('p', {}, 'Type ', h('code', {}, typed), ' to confirm.'), input] : null,
      h('div', { class: 'row' }, ok, cancel ? h('button', { type: 'button', onclick: () => close(false) }, cancel) : null));
    const d = h('dialog', { 'aria-labelledby': 'dialog-title' }, form);
    let done = false;
    function close(value) { if (done) return; done = true; d.close(); d.remove(); resolve(value); }
    form.addEventListener('submit', (e) => { e.preventDefault(); close(true); });
    d.addEventListener('cancel', (e) => { e.preventDefault(); close(false); });
    document.body.append(d);
    d.showModal();
    (input || ok).focus();
  });
}

export const confirmDanger = (title, text, typed) => dialog(title, h('p', {}, text), { confirm: title, danger: true, typed });

export async function copy(text) {
  try { await navigator.clipboard.writeText(text); toast('Copied'); }
  catch {
    const area = h('textarea', { class: 'mono' }, text);
    document.body.append(area); area.select();
    const ok = document.execCommand && document.execCommand('copy');
    area.remove();
    toast(ok ? 'Copied' : 'Copy failed: select the text instead', ok ? 'ok' : 'bad');
  }
}

export function copyButton(getText, label = 'Copy') {
  return h('button', { type: 'button', class: 'small', onclick: async () => copy(typeof getText === 'function' ? await getText() : getText) }, label);
}

// A table of rows (objects) with the given columns: [{key, label, render?(row) → node|string}].
export function table(columns, rows, { caption, empty = 'Nothing yet.', rowAttrs } = {}) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption || 'Results' },
    h('table', {},
      caption ? h('caption', { class: 'muted' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label ?? c.key)))),
      h('tbody', {}, rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {}, columns.map((c) => {
        const v = c.render ? c.render(r) : r[c.key];
        return h('td', { class: v === null || v === undefined ? 'null' : null }, v instanceof Node ? v : cell(v));
      }))))));
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', {}, h('label', { for: id }, label), input, hint ? h('p', { class: 'muted' }, hint) : null);
}

export function badge(text, kind = '') { return h('span', { class: `badge ${kind}` }, text); }

// Run an async action from a button: disabled while it runs, errors shown as a toast.
export function action(label, fn, attrs = {}) {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try { await fn(b); } catch (err) { showError(err); } finally { if (b.isConnected) b.disabled = false; }
  });
  return b;
}

// Replaces `el`'s content with a notice when a page's API is not on this server yet.
export function notAvailable(el, what) {
  clear(el, h('div', { class: 'card' }, h('p', {}, `${what} is not available on this server (its admin API answered “no route matched”).`)));
}
