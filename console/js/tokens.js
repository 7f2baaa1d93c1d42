// Tokens: the tenant's (admin), created with a role and an expiry and shown once; revoked here.
import { api, T, can } from './api.js';
import { h, table, when, short, field, select, notice, errorText } from './dom.js';
import { listPage } from './paging.js';

const EXPIRIES = [['', 'never (until revoked)'], ['86400', '1 day'], ['604800', '7 days'], ['2592000', '30 days'], ['7776000', '90 days']];

export async function page(ctx) {
  ctx.main.append(h('h1', { tabindex: -1 }, 'Tokens'));
  if (!can(ctx.role, 'admin')) {
    ctx.main.append(h('p', {}, 'Listing and creating tokens needs the admin role.'));
    return;
  }
  const base = T(ctx.tenant);
  const roles = ['reader', 'contributor', 'admin'].filter((x) => can(ctx.role, x));
  const roleSel = select(roles.map((x) => [x, x]), 'reader', { name: 'role' });
  const expSel = select(EXPIRIES, '2592000', { name: 'expires_in' });
  const msg = notice();
  const shown = h('div', { class: 'secret' });
  const form = h('form', { class: 'card-form', 'aria-labelledby': 'nt-h' }, h('h2', { id: 'nt-h' }, 'New token'),
    h('div', { class: 'row' }, field('Role', roleSel), field('Expires after', expSel)),
    h('button', { type: 'submit' }, 'Create token'), msg, shown);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { role: roleSel.value };
    if (expSel.value) body.expires_in = Number(expSel.value);
    try {
      const t = await api('POST', `${base}/tokens`, body);
      const out = h('input', { type: 'text', readonly: true, value: t.token, class: 'wide', id: 'new-token', spellcheck: 'false' });
      shown.replaceChildren(field('The new token: copy it now, it is shown this once', out));
      out.focus();
      out.select();
      ctx.announce('Token created: shown once');
      await fill();
    } catch (e) { msg.fail(`Not created: ${errorText(e)}`); }
  });
  // One page of the tokens (refreshed in place after a creation, which keeps the secret shown).
  const listBox = h('div', {});
  const fill = async () => {
    const pg = await listPage(ctx, { url: `${base}/tokens`, key: 'tokens', name: 'tokens', route: '#/tokens', filter: 'Token ID starts with' });
    listBox.replaceChildren(pg.form, tokenTable(ctx, pg.rows, msg), pg.pager);
  };
  await fill();
  ctx.main.append(form, h('h2', {}, 'Tokens of this tenant'), listBox);
}

function tokenTable(ctx, tokens, msg) {
  return table('Tokens', [
    { title: 'Token', cell: (t) => h('code', {}, short(t.id, 16)) },
    { title: 'Role', cell: (t) => t.role },
    { title: 'Status', cell: (t) => t.status },
    { title: 'Created', cell: (t) => when(t.created) },
    { title: 'Expires', cell: (t) => (t.expires ? when(t.expires) : 'never') },
    { title: 'Last used', cell: (t) => when(t.last_used) },
    { title: 'Revoke', cell: (t) => h('button', {
      type: 'button', class: 'danger', 'aria-label': `Revoke token ${t.id}`,
      onclick: async () => {
        if (!window.confirm(`Revoke token ${t.id}? Whoever holds it loses access at once.`)) return;
        try {
          await api('DELETE', `${T(ctx.tenant)}/tokens/${encodeURIComponent(t.id)}`);
          ctx.announce('Token revoked');
          ctx.reload();
        } catch (e) { msg.fail(`Not revoked: ${errorText(e)}`); }
      },
    }, 'Revoke') },
  ], tokens, 'No token.');
}
