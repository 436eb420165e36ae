// The dev inbox: the mails the auth service would have sent (no SMTP configured), with their links clickable.
// A mail's HTML is never rendered: it is parsed inert (DOMParser) for its text and its http(s) links.
import { get, del, items } from '../api.js';
import { dateTime } from '../format.js';
import { action, clear, confirmDanger, h, table, toast } from '../ui.js';

function readMail(html) {
  const doc = new DOMParser().parseFromString(html || '', 'text/html');
  const links = [];
  for (const a of doc.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href');
    if (/^https?:\/\//i.test(href) && !links.some((l) => l.href === href)) links.push({ href, text: a.textContent.trim() });
  }
  for (const s of doc.querySelectorAll('style, script')) s.remove();
  return { text: (doc.body ? doc.body.textContent : '').replace(/\n\s*\n+/g, '\n\n').trim(), links };
}

export default async function inboxPage({ main, ref, can, query, go }) {
  const filter = h('input', { type: 'search', 'aria-label': 'Filter by recipient', placeholder: 'recipient e-mail', value: query.email || '' });
  const viewer = h('section', { 'aria-live': 'polite', 'aria-label': 'Mail' });
  const data = await get(`/projects/${ref}/inbox${query.email ? `?email=${encodeURIComponent(query.email)}` : ''}`);
  const messages = items(data, 'messages');
  async function open(id) {
    const m = await get(`/projects/${ref}/inbox/${id}`);
    const { text, links } = readMail(m.html);
    clear(viewer, h('article', { class: 'mail' },
      h('h2', {}, m.subject || '(no subject)'),
      h('p', { class: 'muted' }, `To ${m.to} · ${m.kind || 'mail'} · ${dateTime(m.caught_at || m.created_at)}`),
      links.length ? h('div', { class: 'links' }, h('h3', {}, 'Links'),
        links.map((l) => h('a', { href: l.href, target: '_blank', rel: 'noopener noreferrer' }, l.text && l.text !== l.href ? `${l.text}: ${l.href}` : l.href))) : null,
      h('h3', {}, 'Text'), h('pre', {}, text)));
    viewer.querySelector('h2').setAttribute('tabindex', '-1');
    viewer.querySelector('h2').focus();
  }
  const search = h('form', { class: 'row', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    go(`#/p/${encodeURIComponent(ref)}/inbox${filter.value.trim() ? `?email=${encodeURIComponent(filter.value.trim())}` : ''}`);
  } }, filter, h('button', { type: 'submit' }, 'Filter'),
  action('Refresh', async () => go(location.hash)),
  can('auth.write') ? action('Clear inbox', async () => {
    if (!await confirmDanger('Clear inbox', 'Every caught mail of this project is deleted.')) return;
    await del(`/projects/${ref}/inbox`);
    toast('Inbox cleared');
    go(location.hash);
  }, { class: 'danger' }) : null);
  clear(main, h('h1', {}, 'Dev inbox'),
    h('p', { class: 'muted' }, `Mails of a project without SMTP are kept here (the newest ${data.inbox_limit || 100}) instead of being sent.`),
    search,
    table([
      { key: 'subject', label: 'Subject', render: (m) => h('button', { type: 'button', class: 'small', onclick: () => open(m.id) }, m.subject || '(no subject)') },
      { key: 'to', label: 'To' }, { key: 'kind', label: 'Kind' },
      { key: 'caught_at', label: 'Caught', render: (m) => dateTime(m.caught_at) },
    ], messages, { caption: `${messages.length} mail(s)`, empty: 'No mail caught yet.' }),
    viewer);
}
