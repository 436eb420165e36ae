// The dashboard's only way to the server: /admin/v1 with the session cookie (HttpOnly, set by POST /login)
// and the session's CSRF token on every mutation, plus the public APIs of a project with one of its keys.
const BASE = '/admin/v1';
const CSRF_KEY = 'madbase.csrf';

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    // a route that is not on this server (an older server, or a part not built yet)
    this.noRoute = status === 404 && /no route matched/i.test(this.message);
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export function setCsrf(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token); else sessionStorage.removeItem(CSRF_KEY);
}

async function parse(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return { message: text.slice(0, 300) }; }
}

// api('GET', '/projects') → the parsed JSON; throws ApiError. A 401 (session expired or revoked) also tells
// the app, which goes back to the login page — except for the login call itself (`{quiet401: true}`).
export async function api(method, path, body, options = {}) {
  const headers = { accept: 'application/json' };
  let payload;
  if (body !== undefined) { headers['content-type'] = 'application/json'; payload = JSON.stringify(body); }
  const csrf = sessionStorage.getItem(CSRF_KEY);
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['x-csrf-token'] = csrf;
  let res;
  try {
    res = await fetch(BASE + path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, { message: 'The server cannot be reached' });
  }
  const data = await parse(res);
  if (!res.ok) {
    const error = new ApiError(res.status, data);
    if (res.status === 401 && !options.quiet401) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const csrfToken = () => sessionStorage.getItem(CSRF_KEY);
export const ADMIN_BASE = BASE;

// A raw /admin/v1 GET (a file download): the Response, or ApiError.
export async function fetchRaw(path) {
  const res = await fetch(BASE + path, { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) {
    const error = new ApiError(res.status, await parse(res));
    if (res.status === 401) onUnauthorized(error);
    throw error;
  }
  return res;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body === undefined ? {} : body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path, body) => api('DELETE', path, body);

// Lists come as {"<plural>": [...]} or, for Supabase-shaped routes, as a plain array.
export function items(data, plural) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data[plural])) return data[plural];
  return [];
}

// A project's public API with the project's service key (storage, functions, REST); x-project-ref selects it.
const keyCache = new Map();
export async function serviceKey(ref) {
  if (keyCache.has(ref)) return keyCache.get(ref);
  const keys = items(await get(`/projects/${ref}/api-keys?reveal=true`), 'keys');
  const key = keys.find((k) => k.name === 'service_role' && !k.revoked_at)
    || keys.find((k) => k.type === 'secret' && !k.revoked_at);
  if (!key) throw new ApiError(404, { message: 'This project has no service key to reach its API' });
  keyCache.set(ref, key.api_key);
  return key.api_key;
}
export function forgetKeys() { keyCache.clear(); }

export async function publicApi(ref, method, path, { body, headers = {}, raw = false } = {}) {
  const key = await serviceKey(ref);
  const all = { apikey: key, authorization: `Bearer ${key}`, 'x-project-ref': ref, ...headers };
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof FormData) && typeof body !== 'string') {
    all['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers: all, body: payload, cache: 'no-store' });
  if (raw && res.ok) return res;
  const data = await parse(res);
  if (!res.ok) throw new ApiError(res.status, data && (data.message || data.msg || data.error)
    ? { message: data.message || data.msg || data.error } : data);
  return data;
}
