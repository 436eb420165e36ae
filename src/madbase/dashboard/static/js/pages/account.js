// The signed-in admin's own account: roles, two-factor authentication (TOTP enrol/verify/disable, recovery
// codes), and their sessions.
import { api, get, items, post, del, setCsrf } from '../api.js';
import { dateTime } from '../format.js';
import { action, badge, clear, copyButton, field, h, table, toast } from '../ui.js';

export default async function accountPage({ main, me, go }) {
  const sessions = items(await get('/me/sessions'), 'sessions');
  const totpBox = h('section', { class: 'card', 'aria-labelledby': 'totp-title' });
  const showCodes = (codes) => h('div', {}, h('p', {}, 'Recovery codes (each works once; shown only now):'),
    h('pre', {}, codes.join('\n')), copyButton(codes.join('\n'), 'Copy codes'));
  function renderTotp() {
    const title = h('h2', { id: 'totp-title' }, 'Two-factor authentication ', badge(me.totp_enabled ? 'on' : 'off', me.totp_enabled ? 'ok' : 'warn'));
    if (me.method !== 'session') { clear(totpBox, title, h('p', { class: 'muted' }, 'Sign in with a password to change it.')); return; }
    if (!me.totp_enabled) {
      clear(totpBox, title, h('p', {}, 'Add an authenticator app (TOTP) as a second factor at sign-in.'),
        action('Set up TOTP', async () => {
          const enrol = await post('/me/totp');
          const code = h('input', { inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6 });
          const form = h('form', { class: 'stack' }, field('Code from the app', code), h('button', { type: 'submit', class: 'primary' }, 'Verify and enable'));
          form.addEventListener('submit', async (e) => {
            e.preventDefault();
            try {
              const started = await post('/me/totp/verify', { code: code.value.trim() });
              signedInQuietly(started);
              me.totp_enabled = true;
              clear(totpBox, h('h2', { id: 'totp-title' }, 'Two-factor authentication ', badge('on', 'ok')), showCodes(started.recovery_codes || []));
              toast('TOTP enabled');
            } catch (err) { toast(err.message, 'bad'); }
          });
          clear(totpBox, title, h('p', {}, 'Enter this secret in your authenticator app (or open the otpauth link on a phone):'),
            h('pre', { 'data-testid': 'totp-secret' }, enrol.secret), h('div', { class: 'row' }, copyButton(enrol.secret, 'Copy secret'), copyButton(enrol.uri, 'Copy otpauth URI')), form);
          code.focus();
        }, { class: 'primary' }));
      return;
    }
    const code = h('input', { inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6, 'aria-label': 'Current code' });
    clear(totpBox, title, h('div', { class: 'row' }, code,
      action('New recovery codes', async () => { const r = await post('/me/totp/recovery-codes', { code: code.value.trim() }); totpBox.append(showCodes(r.recovery_codes)); }),
      action('Disable TOTP', async () => { const s = await api('DELETE', '/me/totp', { code: code.value.trim() }); signedInQuietly(s); me.totp_enabled = false; renderTotp(); toast('TOTP disabled'); }, { class: 'danger' })));
  }
  renderTotp();
  clear(main, h('h1', {}, 'Account'),
    h('section', { class: 'card' }, h('p', {}, h('strong', {}, me.email), ` · signed in by ${me.method}`),
      h('p', {}, 'Roles: ', (me.roles || []).map((r) => badge(`${r.role}${r.project_ref ? ` on ${r.project_ref}` : ' (platform)'}`))), ' '),
    totpBox,
    h('h2', {}, 'Sessions'),
    table([
      { key: 'created_at', label: 'Started', render: (s) => dateTime(s.created_at) },
      { key: 'last_seen_at', label: 'Last seen', render: (s) => dateTime(s.last_seen_at) },
      { key: 'expires_at', label: 'Expires', render: (s) => dateTime(s.expires_at) },
      { key: 'ip', label: 'IP' }, { key: 'user_agent', label: 'Browser' },
      { key: 'id', label: '', render: (s) => s.current ? badge('this one', 'ok') : action('Revoke', async () => { await del(`/me/sessions/${s.id}`); go('#/account'); }, { class: 'small' }) },
    ], sessions, { caption: 'Your sessions' }));
}

// A TOTP change starts a new session (new cookie, new CSRF token): keep it without leaving the page.
function signedInQuietly(started) {
  if (started && started.csrf_token) setCsrf(started.csrf_token);
}
