// The console's one door to the server: same-origin requests with the session cookie, and the
// CSRF token on every state-changing call. The pages call only the public REST API
// (docs/api.md) and the console session routes.

let csrf = null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

// Called when the server says the session is gone (401 on an API route).
let onExpired = () => {};
export function setExpiredHandler(fn) { onExpired = fn; }

export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    headers['Content-Type'] = 'application/octet-stream';
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  if (res.status !== 204) {
    data = type.includes('json') ? await res.json().catch(() => null) : await res.text();
  }
  if (!res.ok) {
    if (res.status === 401 && !opts.noExpire) onExpired();
    throw new ApiError(res.status, typeof data === 'object' ? data : { message: data });
  }
  return data;
}

// The tenant's API root.
export const T = (tenant) => `/api/v1/tenants/${encodeURIComponent(tenant)}`;
export const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const t = s.toString();
  return t ? `?${t}` : '';
};

// Sessions (docs/api.md, "Console sessions").
export async function sessionGet() {
  const s = await api('GET', '/console/session', undefined, { noExpire: true });
  csrf = s.csrf;
  return s;
}
export async function sessionStart(credential) {
  const s = await api('POST', '/console/session', credential, { noExpire: true });
  csrf = s.csrf;
  return s;
}
export async function sessionEnd() {
  try {
    await api('DELETE', '/console/session', undefined, { noExpire: true });
  } finally {
    csrf = null;
  }
}

// Whether a role may do what needs another (the server decides; this only hides what it refuses).
export function can(role, need) {
  const order = ['reader', 'contributor', 'admin', 'system'];
  return order.indexOf(role) >= order.indexOf(need);
}
