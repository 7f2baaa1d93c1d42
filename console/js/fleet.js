// The fleet overview: devices by state, attestations over time, versions running per product.
// Everything comes from two cheap aggregate routes (fleet, attestation histogram), never from
// listing devices: it stays quick at 100,000 devices.
import { api, T, q } from './api.js';
import { h, table, count } from './dom.js';
import { attestationChart } from './chart.js';

// The states, in the order shown, with the devices list's filter for each.
const STATES = [
  ['total', 'Devices', ''],
  ['attested', 'Attested', 'attested'],
  ['cert_expiring', 'Certificate expiring', 'cert_expiring'],
  ['failed', 'Failed attestation', 'failed'],
  ['blocked', 'Blocked', 'blocked'],
  ['quarantined', 'Quarantined', 'quarantined'],
  ['never_seen', 'Never seen', 'never_seen'],
];

export async function overview(ctx) {
  const now = Math.floor(Date.now() / 1000);
  const step = 3600;
  const since = now - 7 * 86400 - (now % step);
  const [fleet, hist] = await Promise.all([
    api('GET', `${T(ctx.tenant)}/fleet`),
    api('GET', `${T(ctx.tenant)}/attestations/histogram${q({ since, step })}`),
  ]);
  const d = fleet.devices || {};
  const cards = h('ul', { class: 'cards', 'aria-label': 'Devices by state' }, STATES.map(([k, label, filter]) =>
    h('li', { class: `card card-${k}` },
      h('a', { href: filter ? `#/devices?state=${filter}` : '#/devices' },
        h('span', { class: 'card-n' }, count(d[k])), h('span', { class: 'card-label' }, label)))));
  const chartBox = h('section', { 'aria-labelledby': 'att-h' }, h('h2', { id: 'att-h' }, 'Attestations, the last 7 days'));
  ctx.main.append(h('h1', { tabindex: -1 }, 'Fleet'), cards, chartBox);
  const passed = hist.pass.reduce((a, b) => a + b, 0);
  const failed = hist.fail.reduce((a, b) => a + b, 0);
  chartBox.append(h('p', {}, `${count(passed)} passed, ${count(failed)} failed, in buckets of ${hist.step / 3600} h.`));
  const plot = attestationChart(chartBox, hist);
  ctx.onLeave(() => plot.destroy());
  ctx.main.append(h('section', { 'aria-labelledby': 'ver-h' }, h('h2', { id: 'ver-h' }, 'Versions running'),
    table('Versions running per product', [
      { title: 'Product', cell: (v) => v.product || '(no group)' },
      { title: 'Component', cell: (v) => v.component },
      { title: 'Version', cell: (v) => v.version },
      { title: 'Devices', cell: (v) => count(v.devices) },
    ], fleet.versions || [], 'No device has reported what it runs yet.')));
}
