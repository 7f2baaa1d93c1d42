// One page of a list the server pages (docs/api.md, "Paging the lists": ?limit, ?after, ?prefix,
// and next_after in the answer): the console holds one page, never the whole list. The page's
// cursor and filter live in the console's own URL (`NAME_after`, `NAME_prefix`), so Next is a link
// and Previous is the browser's back.
import { api, q } from './api.js';
import { h, field } from './dom.js';

export const PAGE = 50;

// opts: url (the API list), key (its answer's array), name (in the console's URL), route (the
// console page, '#/...'), filter (the filter's label: what `prefix` is the start of).
export async function listPage(ctx, opts) {
  const A = `${opts.name}_after`;
  const P = `${opts.name}_prefix`;
  const after = ctx.query.get(A) || '';
  const prefix = ctx.query.get(P) || '';
  const r = await api('GET', `${opts.url}${q({ limit: PAGE, after, prefix })}`);
  const here = (extra) => {
    const p = Object.fromEntries(ctx.query);
    delete p[A];
    delete p[P];
    return `${opts.route}${q({ ...p, ...extra })}`;
  };
  const input = h('input', { type: 'search', name: P, value: prefix, spellcheck: 'false' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': `Filter ${opts.name}` },
    field(opts.filter, input), h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.go(here({ [P]: input.value.trim() }));
  });
  const pager = h('nav', { class: 'pager', 'aria-label': `Pages of ${opts.name}` },
    after ? h('a', { href: here({ [P]: prefix }), onclick: (ev) => { ev.preventDefault(); window.history.back(); } }, 'Previous page') : null,
    after ? h('a', { href: here({ [P]: prefix }) }, 'First page') : null,
    r.next_after ? h('a', { href: here({ [P]: prefix, [A]: r.next_after }), rel: 'next' }, 'Next page') : null);
  return { rows: r[opts.key] || [], form, pager };
}

// Every row of a list the server pages, read BULK at a time through next_after: for a form that
// offers the whole list (a new deployment's products, groups and images), which the server
// refuses to send at once past 10,000 rows (400 paging_required). Rows in ID order.
export const BULK = 1000;
// The pages must move on (review r17 L1, as the CLI's get_pages): each next_after after the last
// in byte order (IDs are ASCII, so string order is byte order), carried only by a page with rows,
// and at most ROWS_MAX rows in all; anything else throws rather than loop or show a row twice.
export const ROWS_MAX = 10000000;
export async function listAll(url, key) {
  const rows = [];
  for (let after = ''; ;) {
    const r = await api('GET', `${url}${q({ limit: BULK, after })}`);
    const page = r[key] || [];
    const next = r.next_after;
    if ((next && (typeof next !== 'string' || page.length === 0 || !(next > after))) ||
        rows.length + page.length > ROWS_MAX) {
      throw new Error(`the server's paging did not advance (next_after ${next} after ${after || 'the start'}): the list is not complete`);
    }
    rows.push(...page);
    if (!next) return rows;
    after = next;
  }
}
