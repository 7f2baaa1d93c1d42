// The console's browser test, driven by console.sh (which starts the server and a device and
// exports what is named below). Each step waits for a state in the page, never for a time; a
// screenshot of each page goes to $RAMPART_SCREENSHOTS; any console error, uncaught exception or
// CSP violation in the page fails the test.
'use strict';
const path = require('path');
const fs = require('fs');
const { execFileSync } = require('child_process');
const puppeteer = require(path.join(process.env.CONSOLE_NODE_MODULES, 'puppeteer-core'));

const env = process.env;
const base = env.SERVER_URL;
const shots = env.RAMPART_SCREENSHOTS;
const WAIT = { timeout: 20000 };
let checks = 0;
let at = 'start'; // the step running, for the failure message
const t0 = Date.now();
let tStep = t0;
const times = [];
// A step begins: what it is, for the failure message; how long the one before took, for the log.
function step(name) {
  const now = Date.now();
  times.push(`${((now - tStep) / 1000).toFixed(1)} s  ${at}`);
  tStep = now;
  at = name;
}
const problems = [];
let signedOut = false; // after signing out, the test's own API call is refused on purpose

function ok(cond, what) {
  checks++;
  if (!cond) throw new Error(`FAIL: ${what}`);
}

// The operator's and the device's commands, as console.sh's e2e helpers run them.
function run(cmd, args, wantOk = true) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (wantOk) throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr || e.message}`);
    return null;
  }
}
const agent = (...a) => run(env.AGENT, [...a, '--state-dir', env.STATE_DIR]);
const rampart = (...a) => run(env.RAMPART, a);

async function main() {
  const browser = await puppeteer.launch({
    executablePath: env.CHROMIUM,
    headless: true,
    args: [
      ...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []),
      `--ignore-certificate-errors-spki-list=${env.SPKI}`,
      '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--window-size=1366,900',
    ],
    defaultViewport: { width: 1366, height: 900 },
  });
  try {
    await steps(browser);
  } finally {
    await browser.close();
  }
}

async function steps(browser) {
  step('the browser started');
  const page = await browser.newPage();
  // What the page says of itself: errors, exceptions, CSP violations (also reported as console
  // errors; counted here from the event too, so that none is missed).
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error' && !/Content.Security.Policy/i.test(m.text())) return;
    const url = (m.location() && m.location().url) || '';
    // The refused logins and the first look for a session answer 401 on purpose: Chromium logs
    // each failed fetch as an error. Only those, on the session route, are expected.
    if (/status of 401/.test(m.text()) && (url.endsWith('/console/session') || signedOut)) return;
    problems.push(`console ${m.type()}: ${m.text()} (${url})`);
  });
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.on('dialog', (dlg) => dlg.accept());
  // Each page, before its screenshot: every form control has a label (a <label>, or aria-label),
  // every table a caption and column headers.
  const shot = async (name) => {
    const bad = await page.evaluate(() => [
      ...[...document.querySelectorAll('input, select, textarea')]
        .filter((e) => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
        .map((e) => `unlabelled ${e.tagName.toLowerCase()} ${e.name || e.id}`),
      ...[...document.querySelectorAll('main table')]
        .filter((t) => !t.closest('[role=img]')) // a chart's own legend: the chart is one image
        .filter((t) => !t.caption || !t.querySelector('thead th[scope=col]'))
        .map(() => 'a table without caption or column headers'),
    ]);
    ok(bad.length === 0, `${name}: ${bad.join(', ')}`);
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  };
  const go = async (hash) => {
    await page.evaluate((h) => { location.hash = h; }, hash);
  };
  const heading = async (text) => page.waitForFunction(
    (t) => { const h = document.querySelector('main h1'); return h && h.textContent.startsWith(t); }, WAIT, text);
  const text = async (sel, re) => page.waitForFunction(
    (s, src) => [...document.querySelectorAll(s)].some((e) => new RegExp(src).test(e.textContent)), WAIT, sel, re.source);

  // --- the page and its headers: served by rampart-server, under the CSP ---
  step('the page and its headers: served by rampart-server, under the CSP');
  const res = await page.goto(`${base}/console/`, { waitUntil: 'load' });
  ok(res.status() === 200, `GET /console/: ${res.status()}`);
  const csp = res.headers()['content-security-policy'] || '';
  ok(csp.includes("script-src 'self'") && csp.includes("default-src 'none'"), `the console's CSP: ${csp}`);

  // --- a wrong token is refused; the right one signs in ---
  step('a wrong token is refused; the right one signs in');
  await page.waitForSelector('form.login input[name=token]', WAIT);
  await shot('login');
  await page.type('input[name=token]', 'rp_this-is-not-a-token');
  await page.click('form.login button[type=submit]');
  await text('.notice.error', /That token was refused/);
  const cookies0 = await page.cookies();
  ok(!cookies0.some((c) => c.name === '__Host-rampart_session'), 'a refused token got a session cookie');
  await shot('login-refused');
  // pasted, as an operator would (typing it key by key only costs time)
  await page.$eval('input[name=token]', (e, v) => { e.value = v; }, fs.readFileSync(env.ACME_TOKEN, 'utf8').trim());
  await page.focus('input[name=token]');
  await page.keyboard.press('Enter'); // the keyboard alone signs in
  await heading('Fleet');
  const cookie = (await page.cookies()).find((c) => c.name === '__Host-rampart_session');
  ok(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === 'Strict' && cookie.path === '/', `the session cookie: ${JSON.stringify(cookie)}`);
  ok(!(await page.evaluate(() => document.cookie)).includes('__Host-rampart_session'), 'the session cookie is readable by scripts');
  await page.waitForSelector('.chart .uplot', WAIT);
  await shot('fleet-new');

  // --- a product, through the console ---
  step('a product, through the console');
  await go('#/products');
  await heading('Products and groups');
  await page.type('input[name=name]', 'Thermostat');
  await page.click('form.inline button[type=submit]');
  await text('main h2', /^Groups of Thermostat$/);
  await text('main td', /^Field Test$/);
  await shot('products');

  // --- a signed image, uploaded through the console ---
  step('a signed image, uploaded through the console');
  await go('#/images');
  await heading('Images and keys');
  const input = await page.$('input[type=file]');
  await input.uploadFile(env.IMAGE);
  await page.click('form[aria-labelledby=up-h] button[type=submit]');
  await text('main td', /^1\.1\.0\+0$/);
  await shot('images');

  // --- the device attests: the console shows it ---
  step('the device attests: the console shows it');
  rampart('device', 'assign', '--tenant', env.ACME, '--product', 'Thermostat', '--group', 'Field Test', env.DEVICE);
  agent('attest', '--server', base, '--server-ca', env.SERVER_CA);
  await go('#/devices');
  await heading('Devices');
  await text('main td a', new RegExp(`^${env.DEVICE.slice(0, 16)}`));
  await text('main td', /pass/);
  await shot('devices');
  await go('#/fleet');
  await heading('Fleet');
  await text('.card-attested .card-n', /^1$/);

  // --- a deployment, created in the console, watched live while the device updates ---
  step('a deployment, created in the console, watched live while the device updates');
  // The form reads its products, groups and images a page at a time (past 10,000 the server
  // sends them no other way): its pages of 1000 are asked for 1 at a time here (rewritten on the
  // way), so that each list spans pages and the form must follow next_after to offer it whole.
  rampart('product', 'create', '--tenant', env.ACME, 'Zz Spare');
  const pagesAsked = [];
  const onePerPage = (req) => {
    const u = new URL(req.url());
    if (req.method() !== 'GET' || u.searchParams.get('limit') !== '1000') return req.continue();
    u.searchParams.set('limit', '1');
    pagesAsked.push(`${u.pathname.split('/').pop()}${u.searchParams.has('after') ? ' after' : ''}`);
    return req.continue({ url: u.toString() });
  };
  await page.setRequestInterception(true);
  page.on('request', onePerPage);
  await go('#/deployments');
  await heading('Deployments');
  await page.waitForSelector('select[name=product] option:nth-child(2)', WAIT);
  ok((await page.$$eval('select[name=product] option', (os) => os.slice(1).map((o) => o.textContent).join(','))) === 'Thermostat,Zz Spare',
    'the form offers every product, by name');
  await page.select('select[name=product]', await page.$eval('select[name=product] option:nth-child(2)', (o) => o.value));
  await page.waitForSelector('select[name=group]:not([disabled])', WAIT);
  const groups = await page.$$eval('select[name=group] option', (os) => os.slice(1).map((o) => o.textContent).join(','));
  ok(/^Development .*,Field Test .*,Production [^,]*$/.test(groups), `the form offers every group of the product, by name: ${groups}`);
  const group = await page.$$eval('select[name=group] option', (os) => os.find((o) => o.textContent.startsWith('Field Test')).value);
  page.off('request', onePerPage);
  await page.setRequestInterception(false);
  for (const list of ['products', 'groups', 'images'])
    ok(pagesAsked.filter((p) => p === `${list} after`).length >= 1, `the form did not page its ${list}: ${pagesAsked.join(', ')}`);
  await page.select('select[name=group]', group);
  await page.click('fieldset.images input[type=checkbox]');
  await page.$eval('input[name=rollout]', (e) => { e.value = '100'; });
  await page.click('form[aria-labelledby=new-dep-h] button[type=submit]');
  await heading('Deployment');
  await text('.progress-n[data-state=installed]', /^0 of 1$/);
  await shot('deployment-created');
  agent('check-now', '--health-seconds', '1');
  // the live view polls: it shows the device's report without a reload
  await text('.progress-n[data-state=installed]', /^1 of 1$/);
  await text('.progress-n[data-state=reached]', /^1 of 1$/);
  await text('main td', /^installed$/);
  // the live view asks for a page of the devices (the counts above stay the whole deployment's)
  await text('main p.page-meta', /^Page 1: 1 shown/);
  await shot('deployment-live');
  // What a device says is shown as text, never markup: a report whose detail is HTML (the
  // device's own words, over its mutual TLS) appears verbatim, and nothing in it runs.
  const dep = await page.evaluate(() => decodeURIComponent(location.hash.split('/')[2]));
  const markup = '<img src=x onerror="document.title=\'pwned\'">';
  run('curl', ['-sf', '--cacert', env.SERVER_CA, '--cert', path.join(env.STATE_DIR, 'agent/device.crt'),
    '--key', path.join(env.STATE_DIR, 'identity.pem'), '-H', 'Content-Type: application/json', '--data-binary',
    JSON.stringify({ deployment: dep, state: 'installed', detail: markup }), `${base}/api/v1/device/updates`]);
  await page.waitForFunction((m) => [...document.querySelectorAll('main td')].some((td) => td.textContent === m), WAIT, markup);
  ok(await page.evaluate(() => document.querySelector('main img') === null && document.title !== 'pwned'),
    'a device\'s report became markup in the page');
  // the device moved out of the group after it installed: the progress is over the devices the
  // deployment targets now (never past 100 %), the one that left shown apart and flagged
  rampart('device', 'assign', '--tenant', env.ACME, '--product', 'Thermostat', '--group', 'Production', env.DEVICE);
  await text('.progress-n[data-state=installed]', /^0 of 0$/);
  await text('p.progress-left', /^1 device left the group/);
  await text('main td .badge-left', /^left$/);
  await shot('deployment-left');
  rampart('device', 'assign', '--tenant', env.ACME, '--product', 'Thermostat', '--group', 'Field Test', env.DEVICE);
  await text('.progress-n[data-state=installed]', /^1 of 1$/);
  ok(await page.evaluate(() => document.querySelector('p.progress-left') === null), 'the device came back, yet is shown as left');
  // pause, resume, stop: the buttons send the session's CSRF value, as every change does
  const press = async (label) => {
    await page.waitForFunction((l) => [...document.querySelectorAll('.actions button')].some((b) => b.textContent === l), WAIT, label);
    await page.evaluate((l) => [...document.querySelectorAll('.actions button')].find((b) => b.textContent === l).click(), label);
  };
  await press('Pause');
  await text('.facts dd .badge', /^paused$/);
  await press('Resume');
  await text('.facts dd .badge', /^active$/);
  await press('Stop');
  await text('.facts dd .badge', /^stopped$/);
  ok(await page.evaluate(() => document.querySelectorAll('.actions button').length === 0), 'a stopped deployment still has buttons');
  await go('#/deployments');
  await heading('Deployments');
  await shot('deployments');

  // --- the device's detail (it attests again: its evidence measures the new version), then
  // blocked from the console ---
  step('the device detail, then blocked');
  agent('attest', '--server', base, '--server-ca', env.SERVER_CA);
  await go(`#/devices/${env.DEVICE}`);
  await heading('Device');
  await text('main td', /^1\.1\.0/);
  await text('main td .badge-pass', /^pass$/);
  await shot('device');
  await page.click('.actions button.danger');
  await text('.facts dd .badge', /^blocked$/);
  await shot('device-blocked');
  // the devices list, filtered by the server: by state, and by the start of the device's ID
  await go('#/devices?state=blocked');
  await heading('Devices');
  await text('main td a', new RegExp(`^${env.DEVICE.slice(0, 16)}`));
  await go('#/devices?state=attested');
  await text('main p.empty', /^No device matches\.$/);
  await page.$eval('input[name=q]', (e, v) => { e.value = v; }, env.DEVICE.slice(0, 6).toUpperCase());
  await page.select('select[name=state]', '');
  await page.click('form.filters button[type=submit]');
  await text('main td a', new RegExp(`^${env.DEVICE.slice(0, 16)}`));
  await shot('devices-filtered');

  // --- tokens, failures: each page draws ---
  step('tokens, failures: each page draws');
  await go('#/tokens');
  await heading('Tokens');
  await page.waitForSelector('select[name=role]', WAIT);
  await page.select('select[name=role]', 'reader');
  await page.click('form[aria-labelledby=nt-h] button[type=submit]');
  await page.waitForSelector('#new-token', WAIT);
  ok((await page.$eval('#new-token', (e) => e.value)).length > 20, 'the new token is shown');
  await shot('tokens');
  // revoked from the console: the reader token leaves the list
  await page.$$eval('main tbody tr', (rows) => rows.find((r) => r.cells[1].textContent === 'reader').querySelector('button').click());
  await page.waitForFunction(() => document.querySelector('main h1') && ![...document.querySelectorAll('main tbody tr')]
    .some((r) => r.cells[1].textContent === 'reader') && document.querySelectorAll('main tbody tr').length > 0, WAIT);
  // the list is the server's page, filtered by the server: no token ID starts with "zz"
  await go('#/tokens?tokens_prefix=zz');
  await heading('Tokens');
  await text('main p.empty', /^No token\.$/);
  await go('#/failures');
  await heading('Failures');
  await shot('failures');
  // the failures' chart (no crash here to draw it): drawn in the page from its own module
  ok(await page.evaluate(async () => {
    const m = await import('/console/js/chart.js');
    const box = document.createElement('div');
    document.querySelector('main').append(box);
    const plot = m.dailyBars(box, 'reports per day', [[1795219200, 3], [1795305600, 5]]);
    const drawn = box.querySelector('.uplot canvas') !== null;
    plot.destroy();
    box.remove();
    return drawn;
  }), 'the failures chart draws');

  // --- signing out ends the session: the next API call is refused ---
  step('signing out ends the session: the next API call is refused');
  signedOut = true;
  await page.click('#logout');
  await page.waitForSelector('form.login', WAIT);
  const after = await page.evaluate(async (t) => (await fetch(`/api/v1/tenants/${t}/devices`)).status, env.ACME);
  ok(after === 401, `an API call after signing out: ${after}`);

  // --- a one-time login link (what `rampart console link` prints) signs in once ---
  step('a one-time login link signs in once');
  const link = JSON.parse(run('curl', ['-sf', '--cacert', env.SERVER_CA, '-X', 'POST', '-H',
    `Authorization: Bearer ${fs.readFileSync(env.ACME_TOKEN, 'utf8').trim()}`, `${base}/api/v1/console/links`]));
  ok(/\/console\/login#code=/.test(link.url), `the login link: ${link.url}`);
  await page.goto(link.url, { waitUntil: 'load' });
  await heading('Fleet');
  // the page says whose session the link opened (a link may be another tenant's)
  await text('#link-notice', /^Signed in with a login link: tenant acme, role admin\./);
  await text('.card-blocked .card-n', /^1$/);
  await page.waitForSelector('.chart .uplot', WAIT);
  await shot('fleet');
  ok(!(await page.evaluate(() => location.href)).includes('code='), 'the code stays in the address bar');
  await page.click('#logout');
  await page.waitForSelector('form.login', WAIT);
  ok(await page.$eval('#link-notice', (e) => e.hidden), 'the login link\'s notice outlived its session');
  await page.goto(link.url, { waitUntil: 'load' });
  await text('.notice.error', /login link was refused/);

  // --- a system token sees every tenant: the switch, and the tenants page ---
  step('a system token sees every tenant');
  await page.$eval('input[name=token]', (e, v) => { e.value = v; }, fs.readFileSync(env.SYSTEM_TOKEN, 'utf8').trim());
  await page.click('form.login button[type=submit]');
  await heading('Fleet');
  ok(await page.$eval('#tenant-select', (s) => [...s.options].some((o) => o.textContent === 'acme')), 'acme in the tenant switch');
  await go('#/tenants');
  await heading('Tenants');
  await text('main td', /^acme$/);
  await shot('tenants');

  // --- a login link opened while signed in replaces nothing unless the operator says so ---
  // (login CSRF, found by review: another tenant's admin sends their tenant's link; the page used
  // it at once and the operator's next steps landed in that tenant)
  step('a login link opened while signed in asks first');
  const session = async () => page.evaluate(async () => (await fetch('/console/session')).json());
  const other = JSON.parse(run('curl', ['-sf', '--cacert', env.SERVER_CA, '-X', 'POST', '-H',
    `Authorization: Bearer ${fs.readFileSync(env.ACME_TOKEN, 'utf8').trim()}`, `${base}/api/v1/console/links`]));
  await page.goto(other.url, { waitUntil: 'load' });
  await heading('Use this login link?');
  await text('main p', /^You are signed in: the system \(every tenant\)\./);
  ok(!(await page.evaluate(() => location.href)).includes('code='), 'the code stays in the address bar while asking');
  ok((await session()).role === 'system', 'the session was replaced before the operator chose');
  await shot('link-ask');
  await page.evaluate(() => [...document.querySelectorAll('main button')].find((b) => b.textContent === 'Keep my session').click());
  await heading('Fleet');
  ok((await session()).role === 'system', 'keeping the session replaced it');
  ok(await page.$eval('#link-notice', (e) => e.hidden), 'a login link notice, with no link used');
  // the code was not used: chosen, it signs in, and the page says whose session it is
  await page.goto(other.url, { waitUntil: 'load' });
  await heading('Use this login link?');
  await page.evaluate(() => [...document.querySelectorAll('main button')].find((b) => b.textContent === 'Use the link').click());
  await heading('Fleet');
  await text('#link-notice', /^Signed in with a login link: tenant acme, role admin\./);
  const now = await session();
  ok(now.role === 'admin' && now.tenant === env.ACME, `the link's session: ${JSON.stringify(now)}`);

  ok(problems.length === 0, `the page reported problems:\n  ${problems.join('\n  ')}`);
}

main().then(() => {
  fs.writeFileSync(path.join(env.WORK, 'browser-checks'), String(checks));
  step('end');
  console.log(times.join('\n'));
  console.log(`browser: ${checks} checks in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${shots}`);
}).catch((e) => {
  console.error(`FAIL at step "${at}": ${e.message || e}`);
  if (problems.length) console.error(`page problems:\n  ${problems.join('\n  ')}`);
  process.exit(1);
});
