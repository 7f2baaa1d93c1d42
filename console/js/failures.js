// Failure buckets: the list (paged by the server) with a chart of the listed buckets' reports per
// day, and one bucket: its signature's frames, counts per version and per day, and samples.
import { api, T, q } from './api.js';
import { h, table, facts, when, short, count } from './dom.js';
import { dailyBars } from './chart.js';
import { deviceLink } from './devices.js';

const PAGE = 50;

// {"YYYY-MM-DD": n, ...} from several buckets, summed, as [[unix s, n]...] oldest first.
function perDay(dayMaps) {
  const sum = new Map();
  for (const m of dayMaps) for (const [day, n] of Object.entries(m || {})) sum.set(day, (sum.get(day) || 0) + n);
  return [...sum.entries()].sort().map(([day, n]) => [Date.parse(`${day}T00:00:00Z`) / 1000, n]);
}

const frameText = (f) => (f.function ? `${f.function} (${f.file || '?'}:${f.line || '?'})` : `${f.module || '?'}+0x${Number(f.offset || 0).toString(16)}`);

export async function list(ctx) {
  const offset = Number(ctx.query.get('offset') || 0);
  const r = await api('GET', `${T(ctx.tenant)}/failures${q({ offset, limit: PAGE })}`);
  const buckets = r.buckets || [];
  ctx.main.append(h('h1', { tabindex: -1 }, 'Failures'));
  const chartBox = h('section', { 'aria-labelledby': 'fd-h' }, h('h2', { id: 'fd-h' }, 'Reports per day'));
  ctx.main.append(chartBox);
  const days = perDay(buckets.map((b) => b.counts && b.counts.day));
  if (days.length) {
    const plot = dailyBars(chartBox, 'Crash reports per day, the buckets listed below', days);
    ctx.onLeave(() => plot.destroy());
  } else chartBox.append(h('p', { class: 'empty' }, 'No crash reported.'));
  ctx.main.append(h('h2', {}, 'Crash buckets, last seen first'), table('Crash buckets', [
    { title: 'Bucket', cell: (b) => h('a', { href: `#/failures/${encodeURIComponent(b.id)}` }, short(b.id)) },
    { title: 'Component', cell: (b) => b.component },
    { title: 'Signal', cell: (b) => b.signal_name || String(b.signal) },
    { title: 'Top frame', cell: (b) => (b.frames && b.frames[0] ? frameText(b.frames[0]) : '—') },
    { title: 'Count', cell: (b) => count(b.count) },
    { title: 'From failed devices', cell: (b) => count(b.device_failed || 0) },
    { title: 'Last seen', cell: (b) => when(b.last_seen) },
  ], buckets, 'No crash bucket.'),
  h('nav', { class: 'pager', 'aria-label': 'Pages of buckets' },
    offset > 0 ? h('a', { href: `#/failures${q({ offset: Math.max(0, offset - PAGE) })}` }, 'Previous page') : null,
    r.next_offset !== null && r.next_offset !== undefined ? h('a', { href: `#/failures${q({ offset: r.next_offset })}`, rel: 'next' }, 'Next page') : null));
}

export async function detail(ctx) {
  const b = await api('GET', `${T(ctx.tenant)}/failures/${encodeURIComponent(ctx.params[0])}`);
  const counts = b.counts || {};
  ctx.main.append(h('h1', { tabindex: -1 }, 'Failure bucket ', h('code', {}, short(b.id, 16))),
    facts([['Component', b.component], ['Signal', b.signal_name || String(b.signal)], ['Count', count(b.count)],
      ['From failed devices', count(b.device_failed || 0)], ['First seen', when(b.first_seen)], ['Last seen', when(b.last_seen)], ['Symbolicated', b.symbolicated ? 'yes' : 'no']]));
  const chartBox = h('section', { 'aria-labelledby': 'bd-h' }, h('h2', { id: 'bd-h' }, 'Reports per day'));
  ctx.main.append(chartBox);
  const days = perDay([counts.day]);
  if (days.length) {
    const plot = dailyBars(chartBox, `Reports per day of bucket ${b.id.slice(0, 12)}`, days);
    ctx.onLeave(() => plot.destroy());
  }
  ctx.main.append(
    h('h2', {}, 'Stack'), h('ol', { class: 'stack' }, (b.stack || b.frames || []).map((f) => h('li', {}, h('code', {}, frameText(f))))),
    h('h2', {}, 'By version'), table('Reports by version', [
      { title: 'Version', cell: (e) => e[0] }, { title: 'Reports', cell: (e) => count(e[1]) },
    ], Object.entries(counts.version || {})),
    h('h2', {}, 'Samples'), table('Sample reports, oldest first', [
      { title: 'Device', cell: (s) => deviceLink(s.device) },
      { title: 'Version', cell: (s) => s.version },
      { title: 'At', cell: (s) => when(s.at) },
      { title: 'Received', cell: (s) => when(s.received) },
      { title: 'From a failed device', cell: (s) => (s.device_failed ? 'yes' : 'no') },
    ], b.samples || []));
}
