// Sign in: e-mail and password, then a TOTP code (or a recovery code) when the admin enrolled one.
import { api, ApiError } from '../api.js';
import { clear, field, h } from '../ui.js';

export default async function login({ main, notice, signedIn }) {
  const email = h('input', { type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const code = h('input', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6 });
  const recovery = h('input', { autocomplete: 'off' });
  const second = h('div', { hidden: true },
    field('Authentication code', code, 'The 6-digit code of your authenticator app.'),
    h('details', {}, h('summary', {}, 'Use a recovery code instead'), field('Recovery code', recovery)));
  const message = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'stack card', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in to MadBase'),
    notice ? h('p', { class: 'muted', role: 'status' }, notice) : null,
    field('E-mail', email), field('Password', password), second, message, h('div', { class: 'row' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    message.textContent = '';
    submit.disabled = true;
    const body = { email: email.value, password: password.value };
    if (!second.hidden) {
      if (recovery.value.trim()) body.recovery_code = recovery.value.trim();
      else body.totp_code = code.value.trim();
    }
    try {
      const session = await api('POST', '/login', body, { quiet401: true });
      signedIn(session);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401 && /TOTP code is required/i.test(err.message)) {
        second.hidden = false;
        code.required = true;
        code.focus();
        message.textContent = '';
      } else {
        message.textContent = err.message;
        if (!second.hidden) { code.value = ''; code.focus(); }
      }
    } finally {
      submit.disabled = false;
    }
  });
  recovery.addEventListener('input', () => { code.required = !recovery.value.trim(); });
  clear(main, h('div', { class: 'login' }, form));
  email.focus();
}
