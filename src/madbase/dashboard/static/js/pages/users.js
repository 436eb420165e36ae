// Auth users of a project: search, paging, create, invite, ban, delete, revoke sessions, reset MFA
// (/projects/{ref}/users…), and a link to the dev inbox where their mails land without SMTP.
import { get, items, post, del } from '../api.js';
import { dateTime } from '../format.js';
import { action, badge, clear, confirmDanger, dialog, field, h, table, toast } from '../ui.js';

const PER_PAGE = 50;

export default async function usersPage({ main, ref, can, query: q, go }) {
  const page = Math.max(1, Number(q.page) || 1);
  const params = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
  if (q.search) params.set('search', q.search);
  const data = await get(`/projects/${ref}/users?${params}`);
  const users = items(data, 'users');
  const here = (extra) => `#/p/${encodeURIComponent(ref)}/users?${new URLSearchParams({ ...q, ...extra })}`;
  const search = h('input', { type: 'search', 'aria-label': 'Search users', placeholder: 'e-mail or phone', value: q.search || '' });
  const writable = can('auth.write');
  const act = (u) => writable ? h('div', { class: 'row' },
    action(u.banned_until ? 'Unban' : 'Ban', async () => {
      if (!u.banned_until && !await confirmDanger('Ban user', `${u.email || u.id} cannot sign in for 24 hours (their sessions end).`)) return;
      await post(`/projects/${ref}/users/${u.id}/ban`, { duration: u.banned_until ? 'none' : '24h' }); toast('Saved'); go(location.hash);
    }, { class: 'small' }),
    action('Revoke sessions', async () => { await del(`/projects/${ref}/users/${u.id}/sessions`); toast('Sessions revoked'); }, { class: 'small' }),
    action('Reset MFA', async () => {
      if (!await confirmDanger('Reset MFA', 'Every MFA factor of this user is removed.')) return;
      await del(`/projects/${ref}/users/${u.id}/factors`); toast('MFA reset');
    }, { class: 'small' }),
    action('Delete', async () => {
      if (!await confirmDanger('Delete user', `${u.email || u.id} and their sessions are deleted.`)) return;
      await del(`/projects/${ref}/users/${u.id}`); toast('User deleted'); go(location.hash);
    }, { class: 'small danger' })) : null;
  const create = async (invite) => {
    const email = h('input', { type: 'email', required: true });
    const password = h('input', { type: 'password', autocomplete: 'new-password' });
    const ok = await dialog(invite ? 'Invite user' : 'Create user', h('div', {}, field('E-mail', email),
      invite ? h('p', { class: 'muted' }, 'An invitation mail is sent (or caught in the dev inbox).') : field('Password', password)), { confirm: invite ? 'Invite' : 'Create' });
    if (!ok) return;
    if (invite) await post(`/projects/${ref}/users/invite`, { email: email.value });
    else await post(`/projects/${ref}/users`, { email: email.value, password: password.value || undefined, email_confirm: true });
    toast(invite ? 'Invitation sent' : 'User created');
    go(location.hash);
  };
  clear(main, h('h1', {}, 'Auth users'),
    h('form', { class: 'row', role: 'search', onsubmit: (e) => { e.preventDefault(); go(here({ search: search.value.trim(), page: 1 })); } },
      search, h('button', { type: 'submit' }, 'Search'),
      writable ? [action('Create user', () => create(false), { class: 'primary' }), action('Invite user', () => create(true))] : null,
      h('a', { href: `#/p/${encodeURIComponent(ref)}/inbox` }, 'Dev inbox')),
    table([
      { key: 'email', label: 'E-mail', render: (u) => u.email || u.phone || u.id },
      { key: 'confirmed', label: 'Confirmed', render: (u) => badge(u.email_confirmed_at || u.confirmed_at ? 'yes' : 'no', u.email_confirmed_at || u.confirmed_at ? 'ok' : 'warn') },
      { key: 'banned_until', label: 'Banned', render: (u) => u.banned_until ? dateTime(u.banned_until) : '—' },
      { key: 'last_sign_in_at', label: 'Last sign-in', render: (u) => dateTime(u.last_sign_in_at) },
      { key: 'created_at', label: 'Created', render: (u) => dateTime(u.created_at) },
      { key: 'actions', label: 'Actions', render: act },
    ], users, { caption: `Page ${page}${data.total != null ? ` of ${Math.max(1, Math.ceil(data.total / PER_PAGE))} (${data.total} users)` : ''}`, empty: 'No user matches.' }),
    h('div', { class: 'row' },
      page > 1 ? h('button', { type: 'button', onclick: () => go(here({ page: page - 1 })) }, 'Previous') : null,
      (data.next_cursor || users.length === PER_PAGE) ? h('button', { type: 'button', onclick: () => go(here({ page: page + 1 })) }, 'Next') : null));
}
