// Devices: the list (paginated by the server, filtered by state and ID: the console never holds
// more than a page, so it works the same at 100,000 devices) and one device's detail.
import { api, T, q, can } from './api.js';
import { h, table, facts, when, short, badge, field, select, notice, errorText, count } from './dom.js';

const PAGE = 50;
// The devices list's query parameters and its answer's cursor (docs/api.md): in one place.
const LIST = { limit: 'limit', cursor: 'after', state: 'state', name: 'prefix', next: 'next_after' };
const STATE_FILTERS = [
  ['', 'Any state'], ['attested', 'Attested'], ['cert_expiring', 'Certificate expiring'],
  ['failed', 'Failed attestation'], ['blocked', 'Blocked'], ['quarantined', 'Quarantined'],
  ['never_seen', 'Never seen'],
];

export const deviceLink = (id) => h('a', { href: `#/devices/${encodeURIComponent(id)}` }, short(id, 16));

function lastAttestation(d) {
  const a = d.last_attestation;
  if (!a) return badge('never seen', 'never');
  return h('span', {}, badge(a.result, a.result), ' ', when(a.at));
}

export async function list(ctx) {
  const st = ctx.query.get('state') || '';
  const name = ctx.query.get('q') || '';
  const cursor = ctx.query.get('cursor') || '';
  const stateSel = select(STATE_FILTERS, st, { name: 'state' });
  const nameIn = h('input', { type: 'search', name: 'q', value: name, spellcheck: 'false', placeholder: 'the start of a device ID (hex)' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter devices' },
    field('State', stateSel), field('Device ID', nameIn), h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.go(`#/devices${q({ state: stateSel.value, q: nameIn.value.trim().toLowerCase() })}`);
  });
  const params = { [LIST.limit]: PAGE, [LIST.cursor]: cursor, [LIST.state]: st, [LIST.name]: name };
  let r;
  try {
    r = await api('GET', `${T(ctx.tenant)}/devices${q(params)}`);
  } catch (e) {
    if (e.status !== 400) throw e;
    // a filter the server refuses (a device ID's start is hexadecimal): say so beside the form
    ctx.main.append(h('h1', { tabindex: -1 }, 'Devices'), form,
      h('div', { class: 'notice error', role: 'alert' }, `Not a filter the server takes: ${errorText(e)}`));
    return;
  }
  // A server that answers without the cursor key does not page or filter (it sent every device):
  // show one page of it, say so, and offer no filter that would do nothing.
  const paged = LIST.next in r;
  const all = r.devices || [];
  const rows = paged ? all : all.slice(0, PAGE);
  const next = r[LIST.next];
  if (!paged) {
    for (const el of form.elements) el.disabled = true;
    form.append(h('p', { class: 'meta' }, 'This server does not page or filter the device list: ',
      all.length > PAGE ? `the first ${PAGE} of ${count(all.length)} are shown.` : `all ${count(all.length)} are shown.`));
  }
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of devices' },
    cursor ? h('a', { href: `#/devices${q({ state: st, q: name })}` }, 'First page') : null,
    next ? h('a', { href: `#/devices${q({ state: st, q: name, cursor: next })}`, rel: 'next' }, 'Next page') : null);
  ctx.main.append(h('h1', { tabindex: -1 }, 'Devices'), form,
    h('p', { class: 'meta' }, paged ? `${count(rows.length)} shown${r.total !== undefined ? ` of ${count(r.total)}` : ''}.` : ''),
    table('Devices', [
      { title: 'Device', cell: (d) => deviceLink(d.device_id) },
      { title: 'Status', cell: (d) => badge(d.status) },
      { title: 'Last attestation', cell: lastAttestation },
      { title: 'Certificate until', cell: (d) => (d.certificate ? when(d.certificate.not_after) : '—') },
      { title: 'Claimed', cell: (d) => when(d.claimed_at) },
    ], rows, 'No device matches.'),
    pager);
}

export async function detail(ctx) {
  const id = ctx.params[0];
  const base = `${T(ctx.tenant)}/devices/${encodeURIComponent(id)}`;
  const [d, att, ev, rep] = await Promise.all([
    api('GET', base),
    api('GET', `${base}/attestations`),
    api('GET', `${base}/events${q({ limit: 50 })}`),
    api('GET', `${T(ctx.tenant)}/reports${q({ device: id, limit: 50 })}`),
  ]);
  const msg = notice();
  const actions = h('div', { class: 'actions' });
  const act = (label, path, body, confirmText) => h('button', {
    type: 'button',
    class: label === 'Block' ? 'danger' : '',
    onclick: async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      try {
        await api('POST', `${base}/${path}`, body);
        ctx.announce(`${label}: done`);
        ctx.reload();
      } catch (e) { msg.fail(`${label}: ${errorText(e)}`); }
    },
  }, label);
  if (can(ctx.role, 'admin')) {
    if (d.status === 'blocked') actions.append(act('Unblock', 'unblock'));
    else actions.append(act('Block', 'block', undefined, `Block device ${id}? Its certificates are revoked and its attestations fail until it is unblocked.`));
    if (d.status === 'quarantined') actions.append(act('Release from quarantine', 'release', { reason: 'released from the console' }));
  }
  const report = d.report || {};
  const lastClaims = (att.attestations || []).find((a) => a.claims && Array.isArray(a.claims.components));
  ctx.main.append(
    h('h1', { tabindex: -1 }, 'Device ', h('code', {}, id)),
    actions, msg,
    h('section', { 'aria-labelledby': 'id-h' }, h('h2', { id: 'id-h' }, 'Identity'), facts([
      ['Device ID', h('code', {}, d.device_id)],
      ['Status', badge(d.status)],
      ['Claimed', when(d.claimed_at)],
      ['Blocked', when(d.blocked_at)],
      ['Quarantine', d.quarantine ? h('span', {}, when(d.quarantine.since), ' ', d.quarantine.reason) : 'no'],
      ['Last attestation', lastAttestation(d)],
      ['Reason', d.last_attestation ? d.last_attestation.reason : '—'],
    ])),
    h('section', { 'aria-labelledby': 'cert-h' }, h('h2', { id: 'cert-h' }, 'Certificate'), d.certificate
      ? facts([['Serial', h('code', {}, d.certificate.serial)], ['Valid until', when(d.certificate.not_after)]])
      : h('p', { class: 'empty' }, 'No certificate: the device has not attested.')),
    h('section', { 'aria-labelledby': 'comp-h' }, h('h2', { id: 'comp-h' }, 'Components and versions'),
      h('p', { class: 'meta' }, 'As measured in the newest attestation\'s evidence', lastClaims ? [' (', when(lastClaims.at), ')'] : '', '.'),
      table('Components measured', [
        { title: 'Component', cell: (c) => c.name },
        { title: 'Version', cell: (c) => c.version },
        { title: 'Digest', cell: (c) => h('code', {}, short(c.digest, 16)) },
      ], (lastClaims && lastClaims.claims.components) || [], 'No component measured.'),
      h('p', { class: 'meta' }, 'Apps running, as the last status report said: ', when(report.reported_at)),
      table('Apps running', [
        { title: 'Component', cell: (a) => a.component },
        { title: 'Version', cell: (a) => a.version },
        { title: 'State', cell: (a) => a.state },
        { title: 'Restarts', cell: (a) => count(a.restarts) },
      ], report.apps || [], 'No app list reported (a device without rampart-monitor sends none).')),
    h('section', { 'aria-labelledby': 'upd-h' }, h('h2', { id: 'upd-h' }, 'Update state'),
      updateState(d)),
    h('section', { 'aria-labelledby': 'att-h' }, h('h2', { id: 'att-h' }, 'Attestation history'),
      table('Attestations, newest first', [
        { title: 'When', cell: (a) => when(a.at) },
        { title: 'Result', cell: (a) => badge(a.result, a.result) },
        { title: 'Reason', cell: (a) => a.reason || '—' },
        { title: 'Certificate', cell: (a) => (a.certificate_serial ? short(a.certificate_serial, 16) : '—') },
      ], att.attestations || [], 'No attestation yet.')),
    h('section', { 'aria-labelledby': 'ev-h' }, h('h2', { id: 'ev-h' }, 'Security events'),
      table('Security events, newest first', [
        { title: 'When', cell: (e) => when(e.at) },
        { title: 'Kind', cell: (e) => e.kind },
        { title: 'App', cell: (e) => e.app || '—' },
        { title: 'Reason', cell: (e) => e.reason },
      ], ev.events || [], 'No security event reported.')),
    h('section', { 'aria-labelledby': 'crash-h' }, h('h2', { id: 'crash-h' }, 'Crashes and failure reports'),
      table('Failure reports, newest first', [
        { title: 'Received', cell: (r) => when(r.received) },
        { title: 'Kind', cell: (r) => r.kind },
        { title: 'Component', cell: (r) => `${r.component || '—'} ${r.version || ''}` },
        { title: 'Reason', cell: (r) => r.reason || r.code || '—' },
        { title: 'Bucket', cell: (r) => (r.bucket ? h('a', { href: `#/failures/${encodeURIComponent(r.bucket)}` }, short(r.bucket)) : '—') },
      ], rep.reports || [], 'No failure reported.')));
}

// What the device last said of its updates: the deployment it is in and its state there.
function updateState(d) {
  if (!('update' in d)) return h('p', { class: 'empty' }, 'This server does not say a device\'s update state.');
  const u = d.update;
  if (!u) return h('p', { class: 'empty' }, 'No deployment has reached this device.');
  return facts([
    ['Deployment', u.deployment ? h('a', { href: `#/deployments/${encodeURIComponent(u.deployment)}` }, short(u.deployment)) : '—'],
    ['State', u.state ? badge(u.state) : '—'],
    ['Detail', u.detail || '—'],
    ['When', when(u.at)],
  ]);
}
