// Images and keys (list, upload a signed image, add an image key) and products and groups (list,
// create). Images are signed offline (rampart image sign): the console uploads what the operator
// signed, and the service verifies it against the tenant's image keys.
import { api, T, can } from './api.js';
import { h, table, when, short, field, select, notice, errorText, count } from './dom.js';
import { listPage } from './paging.js';

export async function images(ctx) {
  const base = T(ctx.tenant);
  const [imgs, keys] = await Promise.all([
    listPage(ctx, { url: `${base}/images`, key: 'images', name: 'images', route: '#/images', filter: 'Component starts with' }),
    listPage(ctx, { url: `${base}/image-keys`, key: 'image_keys', name: 'keys', route: '#/images', filter: 'Key name starts with' }),
  ]);
  ctx.main.append(h('h1', { tabindex: -1 }, 'Images and keys'));
  if (can(ctx.role, 'contributor')) ctx.main.append(uploadForm(ctx));
  ctx.main.append(h('h2', {}, 'Images'), imgs.form, table('Images', [
    { title: 'Image', cell: (i) => h('code', {}, short(i.id)) },
    { title: 'Component', cell: (i) => i.component },
    { title: 'Version', cell: (i) => i.version },
    { title: 'Security counter', cell: (i) => (i.security_counter === null ? 'none' : String(i.security_counter)) },
    { title: 'Type', cell: (i) => i.type },
    { title: 'Size', cell: (i) => `${count(i.size)} B` },
    { title: 'Uploaded', cell: (i) => when(i.uploaded) },
  ], imgs.rows, 'No image yet.'), imgs.pager);
  ctx.main.append(h('h2', {}, 'Image signing keys'), keys.form, table('Image signing keys (public halves)', [
    { title: 'Name', cell: (k) => k.name },
    { title: 'Type', cell: (k) => k.type },
    { title: 'Key hash', cell: (k) => h('code', {}, short(k.keyhash, 16)) },
    { title: 'Added', cell: (k) => when(k.created) },
  ], keys.rows, 'No image key: add the public half of the key you sign images with.'), keys.pager);
  if (can(ctx.role, 'admin')) ctx.main.append(keyForm(ctx));
}

function uploadForm(ctx) {
  const base = T(ctx.tenant);
  const file = h('input', { type: 'file', name: 'image', required: true });
  const component = h('input', { name: 'component', required: true, value: 'app', spellcheck: 'false' });
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Upload progress' });
  const msg = notice();
  const form = h('form', { class: 'card-form', 'aria-labelledby': 'up-h' }, h('h2', { id: 'up-h' }, 'Upload a signed image'),
    h('div', { class: 'row' }, field('Signed image file', file, 'rampart image sign makes one'), field('Component', component)),
    h('button', { type: 'submit' }, 'Upload'), progress, msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = file.files[0];
    if (!f) return;
    msg.clear();
    try {
      // The upload API: announce the size, send chunks at offsets, then make the image of it.
      const up = await api('POST', `${base}/uploads`, { size: f.size });
      progress.hidden = false;
      progress.max = Math.max(f.size, 1);
      let off = up.received || 0;
      while (off < f.size) {
        const end = Math.min(f.size, off + up.chunk_max);
        const r = await api('PUT', `${base}/uploads/${encodeURIComponent(up.id)}?offset=${off}`, f.slice(off, end));
        off = r.received;
        progress.value = off;
      }
      const img = await api('POST', `${base}/images`, { upload: up.id, component: component.value.trim() });
      ctx.announce(`Image ${img.component} ${img.version} uploaded`);
      ctx.reload();
    } catch (e) {
      msg.fail(`Not uploaded: ${errorText(e)}`);
    }
  });
  return form;
}

function keyForm(ctx) {
  const name = h('input', { name: 'name', required: true, maxlength: 64 });
  const pem = h('textarea', { name: 'public_key', rows: 5, required: true, spellcheck: 'false', class: 'wide' });
  const msg = notice();
  const form = h('form', { class: 'card-form', 'aria-labelledby': 'key-h' }, h('h2', { id: 'key-h' }, 'Add an image key'),
    field('Name', name), field('Public key (PEM)', pem, 'rampart key public --key K prints it'),
    h('button', { type: 'submit' }, 'Add key'), msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', `${T(ctx.tenant)}/image-keys`, { name: name.value, public_key: pem.value });
      ctx.announce('Image key added');
      ctx.reload();
    } catch (e) { msg.fail(`Not added: ${errorText(e)}`); }
  });
  return form;
}

export async function products(ctx) {
  const base = T(ctx.tenant);
  const pg = await listPage(ctx, { url: `${base}/products`, key: 'products', name: 'products', route: '#/products', filter: 'Name starts with' });
  const list = pg.rows;
  const chosen = ctx.query.get('product') || (list[0] && list[0].id);
  ctx.main.append(h('h1', { tabindex: -1 }, 'Products and groups'));
  if (can(ctx.role, 'contributor')) {
    const name = h('input', { name: 'name', required: true, maxlength: 64 });
    const msg = notice();
    const form = h('form', { class: 'inline', 'aria-labelledby': 'np-h' }, h('h2', { id: 'np-h' }, 'New product'),
      field('Product name', name), h('button', { type: 'submit' }, 'Create product'), msg);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const p = await api('POST', `${base}/products`, { name: name.value });
        ctx.announce(`Product ${p.name} created`);
        ctx.go(`#/products?product=${encodeURIComponent(p.id)}`);
      } catch (e) { msg.fail(`Not created: ${errorText(e)}`); }
    });
    ctx.main.append(form);
  }
  ctx.main.append(h('h2', {}, 'Products'), pg.form, table('Products', [
    { title: 'Product', cell: (p) => h('a', { href: `#/products?product=${encodeURIComponent(p.id)}`, 'aria-current': p.id === chosen ? 'true' : null }, p.name) },
    { title: 'Created', cell: (p) => when(p.created) },
  ], list, 'No product yet.'), pg.pager);
  if (!chosen) return;
  const p = await api('GET', `${base}/products/${encodeURIComponent(chosen)}`);
  const sec = h('section', { 'aria-labelledby': 'g-h' }, h('h2', { id: 'g-h' }, `Groups of ${p.name}`),
    table(`Device groups of ${p.name}`, [
      { title: 'Group', cell: (g) => g.name },
      { title: 'Devices', cell: (g) => count(g.devices) },
      { title: 'Allows unknown images', cell: (g) => (g.allow_unknown_images ? 'yes' : 'no') },
      { title: 'Crash capture', cell: (g) => (g.crash_capture ? 'on' : 'off') },
      { title: 'Created', cell: (g) => when(g.created) },
    ], p.groups || [], 'No group.'));
  ctx.main.append(sec);
  if (can(ctx.role, 'contributor')) {
    const name = h('input', { name: 'name', required: true, maxlength: 64 });
    const unknown = h('input', { type: 'checkbox', id: 'g-unknown' });
    const crash = h('input', { type: 'checkbox', id: 'g-crash', checked: true });
    const msg = notice();
    const form = h('form', { class: 'card-form', 'aria-labelledby': 'ng-h' }, h('h3', { id: 'ng-h' }, `New group of ${p.name}`),
      field('Group name', name),
      h('div', { class: 'check' }, unknown, h('label', { for: 'g-unknown' }, 'Allows images the tenant never uploaded (admin)')),
      h('div', { class: 'check' }, crash, h('label', { for: 'g-crash' }, 'Crash capture')),
      h('button', { type: 'submit' }, 'Create group'), msg);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api('POST', `${base}/products/${encodeURIComponent(p.id)}/groups`,
          { name: name.value, allow_unknown_images: unknown.checked, crash_capture: crash.checked });
        ctx.announce('Group created');
        ctx.reload();
      } catch (e) { msg.fail(`Not created: ${errorText(e)}`); }
    });
    sec.append(form);
  }
}
