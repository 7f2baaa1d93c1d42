// Charts, drawn by uPlot (vendored from npm at a pinned version, served by rampart-server; see
// console/package.json). Each chart has a text alternative: the same numbers in a table beside it.
import uPlot from '/console/vendor/uPlot.esm.js';
import { h } from './dom.js';

const PASS = '#2e7d32';
const FAIL = '#c62828';
const BAR = '#1f5f99';

function width(el) {
  return Math.max(320, Math.min(1200, (el.clientWidth || 800) - 24));
}

function mount(container, label, opts, data) {
  const box = h('figure', { class: 'chart' }, h('figcaption', {}, label));
  container.append(box);
  const plot = new uPlot({ width: width(container), height: 220, ...opts }, data, box);
  plot.root.setAttribute('role', 'img');
  plot.root.setAttribute('aria-label', label);
  return plot;
}

// Attestations over time: pass and fail per bucket (x: unix seconds).
export function attestationChart(container, hist) {
  const xs = hist.pass.map((_, i) => hist.since + i * hist.step);
  return mount(container, 'Attestations over time (pass and fail per bucket)', {
    series: [{}, { label: 'pass', stroke: PASS, width: 2 }, { label: 'fail', stroke: FAIL, width: 2 }],
    axes: [{}, { label: 'attestations' }],
  }, [xs, hist.pass, hist.fail]);
}

// Counts per day as bars (x: unix seconds of each day).
export function dailyBars(container, label, days) {
  const xs = days.map((d) => d[0]);
  const ys = days.map((d) => d[1]);
  return mount(container, label, {
    series: [{}, { label: 'reports', stroke: BAR, fill: 'rgba(31,95,153,0.45)', paths: uPlot.paths.bars({ size: [0.6, 40] }) }],
    axes: [{}, { label: 'reports' }],
    scales: { x: { time: true } },
  }, [xs, ys]);
}
