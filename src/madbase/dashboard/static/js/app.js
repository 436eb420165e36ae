// The dashboard's entry: session state, the hash router and the shell (project picker, navigation). Pages
// are ES modules loaded on first use, so the first load is this file, the helpers and the login page.
import { api, ApiError, get, items, post, setCsrf, setUnauthorizedHandler, forgetKeys } from './api.js';
import { allows } from './rights.js';
import { clear, h, showError } from './ui.js';

const state = { me: null, projects: null, projectsError: null, notice: '' };
let expiryTimer = null;

// Navigation: [page id, label, right needed to see it, module]
export const PROJECT_PAGES = [
  ['overview', 'Overview', 'projects.read', 'overview'],
  ['api', 'API & keys', 'keys.read', 'keys'],
  ['users', 'Auth users', 'auth.read', 'users'],
  ['inbox', 'Dev inbox', 'auth.read', 'inbox'],
  ['tables', 'Table editor', 'database.read', 'tables'],
  ['sql', 'SQL editor', 'database.read', 'sql'],
  ['policies', 'Policies', 'database.read', 'policies'],
  ['storage', 'Storage', 'storage.read', 'storage'],
  ['functions', 'Functions', 'functions.read', 'functions'],
  ['realtime', 'Realtime', 'realtime.read', 'realtime'],
  ['logs', 'Logs', 'logs.read', 'logs'],
  ['audit', 'Audit log', 'audit.read', 'audit'],
  ['settings', 'Settings', 'config.read', 'settings'],
];
const PLATFORM_PAGES = [
  ['projects', 'Projects', null, 'projects'],
  ['audit', 'Audit log', 'audit.read', 'audit'],
  ['account', 'Account', null, 'account'],
];

export function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const q = Object.fromEntries(new URLSearchParams(query));
  if (parts[0] === 'p' && parts[1]) return { ref: parts[1], page: parts[2] || 'overview', rest: parts.slice(3), query: q };
  return { ref: null, page: parts[0] || 'projects', rest: parts.slice(1), query: q };
}

export function go(hash) { if (location.hash === hash) render(); else location.hash = hash; }

function expired(error) {
  const was = state.me;
  state.me = null;
  setCsrf(null);
  forgetKeys();
  clearTimeout(expiryTimer);
  state.notice = was ? 'Your session has expired or was revoked. Sign in again.' : '';
  if (error && error.status === 401 && route().page !== 'login') {
    sessionStorage.setItem('madbase.after-login', location.hash);
  }
  go('#/login');
}
setUnauthorizedHandler(expired);

export function signedIn(login) {
  setCsrf(login.csrf_token);
  clearTimeout(expiryTimer);
  const left = new Date(login.session.expires_at).getTime() - Date.now();
  if (left > 0 && left < 2 ** 31) expiryTimer = setTimeout(() => expired({ status: 401 }), left);
  state.me = null;
  state.projects = null;
  const after = sessionStorage.getItem('madbase.after-login');
  sessionStorage.removeItem('madbase.after-login');
  go(after && !after.startsWith('#/login') ? after : '#/projects');
}

export async function logout() {
  try { await post('/logout'); } catch (err) { if (!(err instanceof ApiError && err.status === 401)) throw err; }
  state.me = null;
  setCsrf(null);
  forgetKeys();
  clearTimeout(expiryTimer);
  state.notice = 'You are signed out.';
  go('#/login');
}

async function loadMe() {
  if (state.me) return state.me;
  try { state.me = await api('GET', '/me', undefined, { quiet401: true }); }
  catch (err) { if (err instanceof ApiError && err.status === 401) return null; throw err; }
  if (state.me.method === 'session' && !sessionStorage.getItem('madbase.csrf')) {
    state.me = null;  // a session opened in another tab: its CSRF token is not here, sign in again in this one
    return null;
  }
  return state.me;
}

export async function projects(force = false) {
  if (state.projects && !force) return state.projects;
  try {
    state.projects = items(await get('/projects'), 'projects');
    state.projectsError = null;
  } catch (err) {
    state.projects = [];
    state.projectsError = err;
    if (!(err instanceof ApiError && err.noRoute)) throw err;
  }
  return state.projects;
}
export const projectsUnavailable = () => Boolean(state.projectsError && state.projectsError.noRoute);

function picker(current) {
  const list = state.projects || [];
  if (projectsUnavailable()) {
    const input = h('input', { 'aria-label': 'Project ref', placeholder: 'project ref', value: current || '', size: 14 });
    return h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) go(`#/p/${encodeURIComponent(input.value.trim())}/overview`); } },
      input, h('button', { type: 'submit', class: 'small' }, 'Open'));
  }
  const select = h('select', { 'aria-label': 'Project', onchange: () => go(select.value ? `#/p/${encodeURIComponent(select.value)}/${route().ref ? route().page : 'overview'}` : '#/projects') },
    h('option', { value: '' }, 'All projects'),
    list.map((p) => h('option', { value: p.ref, selected: p.ref === current }, `${p.name || p.ref} (${p.ref})`)));
  return select;
}

function nav(r) {
  const me = state.me;
  const link = (href, label, current) => h('li', {}, h('a', { href, 'aria-current': current ? 'page' : null }, label));
  const platform = PLATFORM_PAGES.filter(([, , right]) => !right || allows(me, right) || (right === 'audit.read' && hasAnyProjectRight(me, right)))
    .map(([id, label]) => link(`#/${id}`, label, !r.ref && r.page === id));
  const project = r.ref ? PROJECT_PAGES.filter(([, , right]) => allows(me, right, r.ref))
    .map(([id, label]) => link(`#/p/${encodeURIComponent(r.ref)}/${id}`, label, r.page === id)) : [];
  return h('nav', { class: 'side', id: 'side', 'aria-label': 'Main' },
    h('div', { class: 'group' }, 'Platform'), h('ul', {}, platform),
    r.ref ? [h('div', { class: 'group' }, `Project ${r.ref}`), h('ul', {}, project)] : null);
}

function hasAnyProjectRight(me, right) {
  const sets = me.rights ? Object.keys(me.rights.projects || {}) : (me.roles || []).map((a) => a.project_ref).filter(Boolean);
  return sets.some((ref) => allows(me, right, ref));
}

async function shell(r) {
  await projects().catch(showError);
  const menu = h('button', { class: 'menu-btn small', 'aria-expanded': 'false', 'aria-controls': 'side', type: 'button' }, 'Menu');
  const side = nav(r);
  menu.addEventListener('click', () => {
    const open = side.classList.toggle('open');
    menu.setAttribute('aria-expanded', String(open));
  });
  const main = h('main', { id: 'main', tabindex: '-1' });
  const top = h('header', { class: 'top' },
    menu, h('a', { class: 'brand', href: '#/projects' }, 'MadBase'), picker(r.ref),
    h('span', { class: 'muted', title: 'Signed in as' }, state.me.email),
    h('button', { type: 'button', class: 'small', onclick: () => logout().catch(showError) }, 'Sign out'));
  clear(document.getElementById('app'), h('div', { class: 'shell' }, top, side, main));
  return main;
}

const modules = {};
async function page(name) {
  modules[name] ||= import(`./pages/${name}.js`);
  return (await modules[name]).default;
}

let rendering = 0;
export async function render() {
  const ticket = ++rendering;
  const r = route();
  const app = document.getElementById('app');
  try {
    if (r.page === 'login') {
      const notice = state.notice;
      state.notice = '';
      if (await loadMe()) { go('#/projects'); return; }
      const login = await page('login');
      if (ticket !== rendering) return;
      const main = clear(app, h('main', { id: 'main', tabindex: '-1' }));
      await login({ main, notice, signedIn });
      document.title = 'Sign in · MadBase';
      return;
    }
    const me = await loadMe();
    if (!me) { sessionStorage.setItem('madbase.after-login', location.hash); go('#/login'); return; }
    if (ticket !== rendering) return;
    const main = await shell(r);
    const entry = (r.ref ? PROJECT_PAGES : PLATFORM_PAGES).find(([id]) => id === r.page);
    if (!entry) { clear(main, h('h1', {}, 'Not found'), h('p', {}, 'There is no such page.')); return; }
    document.title = `${entry[1]}${r.ref ? ` · ${r.ref}` : ''} · MadBase`;
    const render = await page(entry[3]);
    if (ticket !== rendering) return;
    const can = (right) => allows(me, right, r.ref);
    await render({ main, ref: r.ref, rest: r.rest, query: r.query, me, can, go, projects, route: r });
    main.focus({ preventScroll: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;  // back to the login page already
    const main = document.getElementById('main');
    if (main && !main.querySelector('h1')) {
      const entry = (r.ref ? PROJECT_PAGES : PLATFORM_PAGES).find(([id]) => id === r.page);
      clear(main, h('h1', {}, entry ? entry[1] : 'Error'), h('p', { class: 'error', role: 'alert' },
        err instanceof ApiError && err.noRoute ? 'This part is not available on this server (its admin API answered “no route matched”).' : err.message));
    } else showError(err);
  }
}

// The skip link moves the focus without touching the hash (the router's)
document.querySelector('.skip')?.addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('main')?.focus();
});

window.addEventListener('hashchange', render);
render();
