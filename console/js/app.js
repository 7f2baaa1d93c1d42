// The console's shell: the session (a token pasted once, or a one-time link's code, exchanged for
// an HttpOnly cookie), the tenant in view, and the hash router that draws each page into <main>.
import { api, sessionGet, sessionStart, sessionEnd, setExpiredHandler, ApiError } from './api.js';
import { h, field, notice, errorText, table } from './dom.js';
import * as fleet from './fleet.js';
import * as devices from './devices.js';
import * as deployments from './deployments.js';
import * as catalog from './catalog.js';
import * as tokens from './tokens.js';
import * as failures from './failures.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const tenantSelect = document.getElementById('tenant-select');
const statusEl = document.getElementById('status');
const linkNoticeEl = document.getElementById('link-notice');

const state = { session: null, tenant: null, tenants: [], leave: [] };

// Each route: a pattern on the hash's path, the page's title, and what draws it.
const routes = [
  [/^\/fleet$/, 'Fleet', fleet.overview],
  [/^\/devices$/, 'Devices', devices.list],
  [/^\/devices\/([^/]+)$/, 'Device', devices.detail],
  [/^\/deployments$/, 'Deployments', deployments.list],
  [/^\/deployments\/([^/]+)$/, 'Deployment', deployments.detail],
  [/^\/images$/, 'Images and keys', catalog.images],
  [/^\/products$/, 'Products and groups', catalog.products],
  [/^\/tokens$/, 'Tokens', tokens.page],
  [/^\/failures$/, 'Failures', failures.list],
  [/^\/failures\/([^/]+)$/, 'Failure bucket', failures.detail],
  [/^\/tenants$/, 'Tenants', tenantsPage],
];

export function announce(msg) {
  statusEl.textContent = '';
  setTimeout(() => { statusEl.textContent = msg; }, 50);
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/fleet';
  const [path, query] = raw.split('?');
  return { path, query: new URLSearchParams(query || '') };
}

function leave() {
  for (const fn of state.leave.splice(0)) {
    try { fn(); } catch (e) { /* a page's cleanup never blocks the next page */ }
  }
}

async function route() {
  leave();
  if (!state.session) return;
  const { path, query } = parseHash();
  let found = null;
  for (const [re, title, draw] of routes) {
    const m = path.match(re);
    if (m) { found = { title, draw, params: m.slice(1).map(decodeURIComponent) }; break; }
  }
  for (const a of nav.querySelectorAll('a')) {
    const here = path === a.getAttribute('href').slice(1) || path.startsWith(a.getAttribute('href').slice(1) + '/');
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  if (!found) {
    main.append(h('h1', { tabindex: -1 }, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/fleet' }, 'Go to the fleet.')));
    return;
  }
  document.title = `${found.title} · Rampart console`;
  if (!state.tenant && found.draw !== tenantsPage) {
    main.append(h('h1', { tabindex: -1 }, found.title), h('p', {}, 'No tenant yet. ',
      state.session.role === 'system' ? h('a', { href: '#/tenants' }, 'Create one.') : ''));
    focusHeading();
    return;
  }
  const ctx = {
    main, query, params: found.params, tenant: state.tenant, session: state.session,
    role: state.session.role, announce,
    onLeave: (fn) => state.leave.push(fn),
    go: (hash) => { if (location.hash === hash) route(); else location.hash = hash; },
    reload: () => route(),
  };
  try {
    await found.draw(ctx);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      if (!main.querySelector('h1')) main.prepend(h('h1', { tabindex: -1 }, found.title));
      main.append(h('div', { class: 'notice error', role: 'alert' }, `Could not load this page: ${errorText(e)}`));
    }
  }
  focusHeading();
}

function focusHeading() {
  const h1 = main.querySelector('h1');
  if (h1 && document.activeElement !== tenantSelect) h1.focus({ preventScroll: true });
}


// --- signing in and out ---------------------------------------------------------------------------

function showLogin(message) {
  leave();
  state.session = null;
  nav.hidden = true;
  who.hidden = true;
  document.title = 'Sign in · Rampart console';
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false', class: 'wide' });
  const msg = notice();
  const form = h('form', { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', tabindex: -1 }, 'Sign in to the Rampart console'),
    h('p', {}, 'Paste an operator token (rampart token create, or DATA_DIR/admin.token for the system). ' +
      'It is exchanged once for a session cookie of at most 8 hours; the console never keeps the token.'),
    field('Operator token', input),
    h('button', { type: 'submit' }, 'Sign in'),
    msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.clear();
    try {
      const s = await sessionStart({ token: input.value.trim() });
      input.value = '';
      await started(s);
    } catch (e) {
      msg.fail(e instanceof ApiError && e.status === 401 ? `That token was refused: ${errorText(e)}` : `Cannot sign in: ${errorText(e)}`);
      input.focus();
    }
  });
  main.replaceChildren(form);
  if (message) msg.fail(message);
  input.focus();
}

async function started(s) {
  state.session = s;
  nav.hidden = false;
  who.hidden = false;
  // the role, and when the session ends (it asks for the token again then)
  const until = s.expires ? new Date(s.expires * 1000).toISOString().slice(11, 16) : null;
  document.getElementById('role').textContent = until ? `${s.role} · until ${until} UTC` : s.role;
  await loadTenants();
  if (!location.hash || location.hash === '#' || location.hash.startsWith('#code=')) {
    history.replaceState(null, '', '/console/#/fleet');
  }
  await route();
}

async function loadTenants() {
  const s = state.session;
  tenantSelect.replaceChildren();
  if (s.role === 'system') {
    const r = await api('GET', '/api/v1/tenants');
    state.tenants = r.tenants;
    const kept = sessionStorage.getItem('rampart.tenant');
    state.tenant = state.tenants.some((t) => t.id === kept) ? kept : (state.tenants[0] ? state.tenants[0].id : null);
    tenantSelect.disabled = false;
    if (!nav.querySelector('a[href="#/tenants"]')) {
      nav.querySelector('ul').append(h('li', {}, h('a', { href: '#/tenants' }, 'Tenants')));
    }
  } else {
    const t = await api('GET', `/api/v1/tenants/${encodeURIComponent(s.tenant)}`);
    state.tenants = [t];
    state.tenant = t.id;
    tenantSelect.disabled = true;
  }
  for (const t of state.tenants) {
    tenantSelect.append(h('option', { value: t.id, selected: t.id === state.tenant }, t.name));
  }
}

tenantSelect.addEventListener('change', () => {
  state.tenant = tenantSelect.value;
  sessionStorage.setItem('rampart.tenant', state.tenant);
  announce(`Tenant ${tenantSelect.selectedOptions[0].textContent}`);
  route();
});

document.getElementById('logout').addEventListener('click', async () => {
  linkNotice(null);
  try { await sessionEnd(); } catch (e) { /* the cookie is cleared either way */ }
  history.replaceState(null, '', '/console/');
  showLogin();
});

setExpiredHandler(() => showLogin('Your session has ended: sign in again.'));

// A system operator's tenants: list and create.
async function tenantsPage(ctx) {
  const nameInput = h('input', { name: 'name', required: true, maxlength: 64 });
  const msg = notice();
  const form = h('form', { class: 'inline' }, field('New tenant name', nameInput), h('button', { type: 'submit' }, 'Create tenant'), msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const t = await api('POST', '/api/v1/tenants', { name: nameInput.value });
      state.tenant = t.id;
      sessionStorage.setItem('rampart.tenant', t.id);
      await loadTenants();
      announce(`Tenant ${t.name} created`);
      ctx.go('#/products');
    } catch (e) { msg.fail(errorText(e)); }
  });
  ctx.main.append(h('h1', { tabindex: -1 }, 'Tenants'),
    table('Tenants', [{ title: 'Name', cell: (t) => t.name }, { title: 'ID', cell: (t) => t.id }], state.tenants),
    h('h2', {}, 'Create a tenant'), form);
}

window.addEventListener('hashchange', () => { if (state.session) route(); });

// A session's tenant and role in words: "tenant acme, role admin", or the system's.
function sessionWords(s) {
  if (s.role === 'system') return 'the system (every tenant)';
  const t = state.tenants.find((x) => x.id === s.tenant);
  return `tenant ${t ? t.name : s.tenant}, role ${s.role}`;
}

// The line under the header after a login link was used (msg null: none).
function linkNotice(msg) {
  linkNoticeEl.textContent = msg || '';
  linkNoticeEl.hidden = !msg;
}

// Use a login link's code: a new session, replacing any other; the page then says whose it is,
// since a link may have been made for another tenant than the one the operator expects.
async function useLink(code) {
  try {
    await started(await sessionStart({ code }));
    linkNotice(`Signed in with a login link: ${sessionWords(state.session)}. Not the tenant you expected? Sign out.`);
  } catch (e) {
    showLogin(`That login link was refused (${errorText(e)}): links work once, for 10 minutes.`);
  }
}

// A login link opened while this browser has a session: nothing changes until the operator says
// so. A link someone else made (another tenant's admin) would otherwise replace the session
// without a word, and what the operator did next would land in that tenant (login CSRF, found by
// review). The link's code is not used, so it still works if they choose it.
async function askBeforeLink(code, current) {
  state.session = current;
  try { await loadTenants(); } catch (e) { state.tenants = []; }
  state.session = null;
  const keep = h('button', { type: 'button' }, 'Keep my session');
  const use = h('button', { type: 'button', class: 'danger' }, 'Use the link');
  main.replaceChildren(
    h('h1', { tabindex: -1 }, 'Use this login link?'),
    h('p', {}, `You are signed in: ${sessionWords(current)}. This login link opens another session, ` +
      'for the tenant it was made for, which may be another organisation\'s: it replaces yours, and what you ' +
      'do next happens there. Use it only if you asked for it.'),
    h('div', { class: 'actions' }, keep, use));
  document.title = 'Use this login link? · Rampart console';
  keep.addEventListener('click', () => started(current));
  use.addEventListener('click', () => useLink(code));
  keep.focus();
}

async function boot() {
  // A one-time login link: /console/login#code=... (the code stays in the fragment, never sent
  // in a URL, so never in a log); it is removed from the address bar before anything else.
  const m = location.hash.match(/^#code=([A-Za-z0-9_-]+)$/);
  let current = null;
  if (m) history.replaceState(null, '', '/console/');
  try {
    current = await sessionGet();
  } catch (e) {
    current = null;
  }
  if (m && current) await askBeforeLink(m[1], current);
  else if (m) await useLink(m[1]);
  else if (current) await started(current);
  else showLogin();
}

boot();
