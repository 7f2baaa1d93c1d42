// Deployments: the list, a form to create one (product, group, images, rollout %), and the live
// view of one (polled every 2 s: devices reached, installed, failed, rolled back) with pause,
// resume and stop.
import { api, T, q, can } from './api.js';
import { h, table, facts, when, short, badge, field, select, notice, errorText, count } from './dom.js';
import { deviceLink } from './devices.js';
import { listPage, listAll } from './paging.js';

const POLL_MS = 2000;
// The devices shown of a deployment at once: the server sends one page of them (docs/api.md,
// "Paging the lists") with the counts of all, so a poll stays small at 100,000 devices.
const DEVICE_PAGE = 50;

const imagesText = (imgs) => (imgs || []).map((i) => `${i.component} ${i.version}`).join(', ');

export async function list(ctx) {
  const base = T(ctx.tenant);
  const deps = await listPage(ctx, { url: `${base}/deployments`, key: 'deployments', name: 'deployments', route: '#/deployments', filter: 'Deployment ID starts with' });
  // a page in ID order; newest first within it
  const rows = deps.rows.slice().sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  ctx.main.append(h('h1', { tabindex: -1 }, 'Deployments'));
  if (can(ctx.role, 'contributor')) ctx.main.append(await createForm(ctx));
  ctx.main.append(h('h2', {}, 'Deployments'), deps.form,
    table('Deployments', [
      { title: 'Deployment', cell: (d) => h('a', { href: `#/deployments/${encodeURIComponent(d.id)}` }, short(d.id)) },
      { title: 'Product', cell: (d) => d.product || '—' },
      { title: 'Group', cell: (d) => d.group_name || d.group },
      { title: 'Images', cell: (d) => imagesText(d.images) },
      { title: 'Rollout', cell: (d) => `${d.rollout} %` },
      { title: 'Status', cell: (d) => badge(d.status || 'active') },
      { title: 'Created', cell: (d) => when(d.created) },
    ], rows, 'No deployment yet.'), deps.pager);
}

const byText = (f) => (a, b) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);

// The form offers every product, group and image (read a page at a time: listAll), by name and
// by component.
async function createForm(ctx) {
  const base = T(ctx.tenant);
  const [products, images] = await Promise.all([listAll(`${base}/products`, 'products'), listAll(`${base}/images`, 'images')]);
  products.sort(byText((p) => p.name));
  images.sort(byText((i) => `${i.component}\u0000${i.uploaded}`));
  const msg = notice();
  const productSel = select([['', 'Choose a product'], ...products.map((p) => [p.id, p.name])], '', { name: 'product', required: true });
  const groupSel = select([['', 'Choose a product first']], '', { name: 'group', required: true, disabled: true });
  const rollout = h('input', { type: 'number', name: 'rollout', min: 1, max: 100, value: '100', required: true });
  const ignore = h('input', { type: 'checkbox', name: 'ignore_counter_limits' });
  const imageBoxes = images.map((img) => h('input', { type: 'checkbox', name: 'image', value: img.id }));
  const imageList = images.length
    ? h('fieldset', { class: 'images' }, h('legend', {}, 'Images (one per component)'),
      images.map((img, i) => h('div', { class: 'check' }, imageBoxes[i],
        h('label', { for: imageBoxes[i].id = `img-${img.id.slice(0, 16)}` }, `${img.component} ${img.version} `, h('code', {}, img.id.slice(0, 12))))))
    : h('p', { class: 'empty' }, 'No image yet: upload one under Images and keys.');
  productSel.addEventListener('change', async () => {
    groupSel.replaceChildren(h('option', { value: '' }, 'Loading…'));
    groupSel.disabled = true;
    if (!productSel.value) return;
    try {
      const groups = await listAll(`${base}/products/${encodeURIComponent(productSel.value)}/groups`, 'groups');
      groups.sort(byText((g) => g.name));
      groupSel.replaceChildren(h('option', { value: '' }, 'Choose a group'),
        ...groups.map((g) => h('option', { value: g.id }, `${g.name} (${count(g.devices)} devices)`)));
      groupSel.disabled = false;
    } catch (e) { msg.fail(errorText(e)); }
  });
  const form = h('form', { class: 'card-form', 'aria-labelledby': 'new-dep-h' },
    h('h2', { id: 'new-dep-h' }, 'New deployment'),
    h('div', { class: 'row' }, field('Product', productSel), field('Group', groupSel),
      field('Rollout (% of the group)', rollout, 'Which devices a partial rollout reaches is stable: docs/api.md.')),
    imageList,
    can(ctx.role, 'admin') ? h('div', { class: 'check' }, ignore, h('label', { for: ignore.id = 'ignore-limits' }, 'Deploy past devices\u2019 security counter limits')) : null,
    h('button', { type: 'submit' }, 'Create deployment'), msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const chosen = imageBoxes.filter((b) => b.checked).map((b) => b.value);
    if (!chosen.length) { msg.fail('Choose at least one image.'); return; }
    const body = { product: productSel.value, group: groupSel.value, images: chosen, rollout: Number(rollout.value) };
    if (ignore.checked) body.ignore_counter_limits = true;
    try {
      const d = await api('POST', `${base}/deployments`, body);
      ctx.announce('Deployment created');
      ctx.go(`#/deployments/${encodeURIComponent(d.id)}`);
    } catch (e) {
      const devs = e.body && Array.isArray(e.body.devices) ? ` (${e.body.devices.map((x) => x.device_id).join(', ')})` : '';
      msg.fail(`Not created: ${errorText(e)}${devs}`);
    }
  });
  return form;
}

export async function detail(ctx) {
  const id = ctx.params[0];
  const path = `${T(ctx.tenant)}/deployments/${encodeURIComponent(id)}`;
  const msg = notice();
  const live = h('div', { class: 'live' });
  const stamp = h('p', { class: 'meta' });
  const actions = h('div', { class: 'actions' });
  ctx.main.append(h('h1', { tabindex: -1 }, 'Deployment ', h('code', {}, short(id, 16))), actions, msg, stamp, live);
  let timer = null;
  let stopped = false;
  // The `after` of each page of devices looked at, the one shown last: Previous pops it.
  const cursors = [''];
  ctx.onLeave(() => { stopped = true; clearTimeout(timer); });

  const control = (verb, label, cls) => h('button', {
    type: 'button', class: cls || '',
    onclick: async () => {
      if (verb === 'stop' && !window.confirm('Stop this deployment for good? Devices it has not reached will not get it; those it reached keep it.')) return;
      try {
        await api('POST', `${path}/${verb}`);
        ctx.announce(`Deployment: ${label} done`);
        await poll();
      } catch (e) { msg.fail(`${label}: ${errorText(e)}`); }
    },
  }, label);

  const draw = (d) => {
    const states = d.states || {};
    const selected = d.devices_selected || 0;
    // reached: the devices it targets now served targets naming it or that reported (the
    // server's count); left: those moved out of its group since, counted apart (never above)
    const reached = d.progress && typeof d.progress.reached === 'number' ? d.progress.reached : selected - (states.pending || 0);
    const left = d.progress && typeof d.progress.left === 'number' ? d.progress.left : 0;
    const status = d.status || 'active';
    actions.replaceChildren();
    if (can(ctx.role, 'contributor') && 'status' in d) {
      if (status === 'active') actions.append(control('pause', 'Pause'));
      if (status === 'paused') actions.append(control('resume', 'Resume'));
      if (status !== 'stopped') actions.append(control('stop', 'Stop', 'danger'));
    }
    const bar = (label, n) => h('div', { class: 'progress' },
      h('span', { class: 'progress-label' }, label),
      h('progress', { max: Math.max(selected, 1), value: Math.min(n, selected), 'aria-label': label }),
      h('span', { class: 'progress-n', 'data-state': label }, `${count(n)} of ${count(selected)}`));
    // A server that answers without next_after does not page (it sent every device): show 200.
    const paged = 'next_after' in d;
    const devs = paged ? d.devices || [] : (d.devices || []).slice(0, 200);
    const turn = (label, go) => h('button', { type: 'button', onclick: async () => { go(); await poll(); } }, label);
    const pager = paged ? h('nav', { class: 'pager', 'aria-label': 'Pages of the deployment\'s devices' },
      cursors.length > 1 ? turn('Previous page', () => cursors.pop()) : null,
      d.next_after ? turn('Next page', () => cursors.push(d.next_after)) : null) : null;
    live.replaceChildren(
      facts([
        ['Status', badge(status)],
        ['Product', d.product || '—'], ['Group', d.group_name || d.group],
        ['Images', imagesText(d.images)], ['Rollout', `${d.rollout} % (${count(selected)} of ${count(d.devices_in_group)} devices in the group)`],
        ['Created', when(d.created)],
      ]),
      h('section', { 'aria-labelledby': 'prog-h', class: 'progress-box' }, h('h2', { id: 'prog-h' }, 'Progress'),
        bar('reached', reached), bar('installed', states.installed || 0), bar('failed', states.failed || 0),
        bar('rolled back', states.rolled_back || 0), bar('refused', states.refused || 0),
        left > 0 ? h('p', { class: 'meta progress-left', 'data-state': 'left' },
          `${count(left)} ${left === 1 ? 'device' : 'devices'} left the group after the deployment reached ${left === 1 ? 'it' : 'them'}: listed below as left, not counted above.`) : null),
      h('section', { 'aria-labelledby': 'devs-h' }, h('h2', { id: 'devs-h' }, 'Devices'),
        !paged && (d.devices || []).length > 200 ? h('p', { class: 'meta' }, `The first 200 of ${count(d.devices.length)}.`) : null,
        paged ? h('p', { class: 'meta page-meta' }, `Page ${count(cursors.length)}: ${count(devs.length)} shown, in device ID order.`) : null,
        table('Devices of the deployment', [
          { title: 'Device', cell: (x) => deviceLink(x.device_id) },
          { title: 'State', cell: (x) => x.left ? h('span', {}, badge(x.state), ' ', badge('left')) : badge(x.state) },
          { title: 'Detail', cell: (x) => x.detail || '—' },
          { title: 'When', cell: (x) => when(x.at) },
        ], devs, cursors.length > 1 ? 'No device on this page.' : 'No device selected.'), pager));
  };

  const poll = async () => {
    clearTimeout(timer);
    try {
      const d = await api('GET', `${path}${q({ limit: DEVICE_PAGE, after: cursors[cursors.length - 1] })}`);
      if (stopped) return;
      draw(d);
      stamp.replaceChildren('Live: refreshed every 2 s; last at ', when(new Date().toISOString()));
      msg.clear();
    } catch (e) {
      if (stopped) return;
      msg.fail(`Cannot refresh: ${errorText(e)}`);
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  };
  await poll();
}
