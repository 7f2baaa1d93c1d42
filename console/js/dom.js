// The console's DOM helpers: elements are built with h(), never from HTML strings, so that what
// the API returns (device IDs, reasons, names) is always text, never markup.

export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : String(k));
  }
}

// A semantic table: caption, column headers with scope, one row per item. cols: [{title, cell}],
// cell(row) gives a node or text.
export function table(caption, cols, rows, empty = 'None.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c.title)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', {}, c.cell(r))))))));
}

// A definition list of [term, value] pairs.
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

export function when(iso) {
  if (iso === null || iso === undefined) return '—';
  const d = typeof iso === 'number' ? new Date(iso * 1000) : new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return h('time', { datetime: d.toISOString() }, d.toISOString().replace('T', ' ').slice(0, 19) + 'Z');
}

export function short(id, n = 12) {
  const s = String(id ?? '');
  return s.length > n ? h('abbr', { title: s }, s.slice(0, n) + '…') : s;
}

export function count(n) {
  return typeof n === 'number' ? n.toLocaleString('en') : '—';
}

export function badge(text, kind) {
  return h('span', { class: `badge badge-${kind || text}` }, text);
}

// A labelled form control.
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
}

// A message area for a form: errors are announced (role=alert).
export function notice() {
  const el = h('div', { class: 'notice', 'aria-live': 'polite' });
  el.ok = (msg) => { el.className = 'notice ok'; el.setAttribute('role', 'status'); el.replaceChildren(msg); };
  el.fail = (msg) => { el.className = 'notice error'; el.setAttribute('role', 'alert'); el.replaceChildren(msg); };
  el.clear = () => { el.className = 'notice'; el.replaceChildren(); };
  return el;
}

export function errorText(e) {
  return e && e.message ? e.message : String(e);
}
