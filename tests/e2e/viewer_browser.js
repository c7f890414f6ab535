// The web viewer in real headless Chromium (tests/e2e/test_viewer.py runs this once).
// Input (JSON on stdin): base URL, tokens, drain credentials, expected counts, artifact
// directory. Output (JSON on stdout): what the page showed, for the Python test to
// assert; screenshots go to the artifact directory. One browser for the whole file.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const cfg = JSON.parse(fs.readFileSync(0, 'utf8'));
const out = { steps: [] };
const T = 15000; // the longest any single wait may take

const T0 = Date.now();
function step(name) { out.steps.push(`${name} @${Date.now() - T0}ms`); }

async function apiSearch(params, token) {
  const u = new URL('/api/v1/search', cfg.base);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const r = await fetch(u, { headers: { Authorization: 'Bearer ' + token } });
  return r.json();
}

async function post(src, msg) {
  const line = `<190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - ${msg}\n`;
  const body = `${Buffer.byteLength(line)} ${line}`;
  const r = await fetch(new URL('/logs', cfg.base), {
    method: 'POST', body,
    headers: { Authorization: 'Basic ' + Buffer.from(src.name + ':' + src.token).toString('base64'),
      'Content-Type': 'application/logplex-1' },
  });
  if (r.status !== 204) throw new Error('POST /logs ' + r.status);
}

const rowIds = (page) => page.$$eval('#rows .row', (rs) => rs.map((r) => r.dataset.id));

async function signIn(page, token) {
  await page.goto(cfg.base + '/');
  await page.waitForSelector('#signin:not([hidden])', { timeout: T });
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#view:not([hidden])', { timeout: T });
}

async function searchFor(page, q) {
  await page.fill('#q', q);
  await page.press('#q', 'Enter');
  await page.waitForFunction((qq) => (new URLSearchParams(location.search).get('q') || '') === qq && document.getElementById('stat').textContent.includes('lines'), q, { timeout: T });
}

async function shot(page, name) {
  const f = path.join(cfg.artifacts, `viewer-${name}.png`);
  await page.screenshot({ path: f });
  out.screenshots = (out.screenshots || []).concat([f]);
}

(async () => {
  const userDir = fs.mkdtempSync(path.join(cfg.tmp, 'chromium-'));
  const browser = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 860 }, timezoneId: 'America/New_York',
  });
  try {
    // everything that would show a script ran: dialogs, CSP violations, page errors
    out.dialogs = []; out.csp = []; out.pageErrors = [];
    await browser.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI);
      });
    });
    const page = browser.pages()[0] || await browser.newPage();
    page.on('dialog', (d) => { out.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    page.on('pageerror', (e) => out.pageErrors.push(String(e)));

    // --- sign-in required
    step('sign-in required');
    await page.goto(cfg.base + '/');
    await page.waitForSelector('#signin:not([hidden])', { timeout: T });
    out.signinShown = await page.isVisible('#signin');
    out.viewHiddenBeforeSignin = !(await page.isVisible('#view'));
    await shot(page, 'signin');
    await page.fill('#token', 'slr_' + '0'.repeat(40));
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#signin-err:not([hidden])', { timeout: T });
    out.badTokenRefused = await page.isVisible('#signin');
    await page.fill('#token', cfg.allToken);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#view:not([hidden])', { timeout: T });
    await page.waitForFunction(() => document.querySelectorAll('#rows .row').length > 0, null, { timeout: T });
    step('signed in');
    const cookies = await browser.cookies(cfg.base);
    out.cookies = cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, secure: c.secure, path: c.path }));
    out.documentCookie = await page.evaluate(() => document.cookie);
    out.tokenInPage = (await page.content()).includes(cfg.allToken) || page.url().includes(cfg.allToken);
    out.tokenFieldEmpty = (await page.inputValue('#token')) === '';

    // --- first page: exactly what the API returns, newest at the bottom
    step('first page: exactly what the A');
    const api1 = await apiSearch({ limit: 200, order: 'desc' }, cfg.allToken);
    out.firstPageIds = await rowIds(page);
    out.firstPageApiIds = api1.events.map((e) => e.id).reverse();
    out.atBottom = await page.evaluate(() => { const l = document.getElementById('lines'); return l.scrollHeight - l.scrollTop - l.clientHeight < 40; });
    out.timeTitle = await page.$eval('#rows .row .t', (t) => t.title);
    await shot(page, 'search');

    // --- scroll up: older lines through the cursor
    step('scroll up: older lines through');
    await page.$eval('#lines', (l) => { l.scrollTop = 0; l.dispatchEvent(new Event('scroll')); });
    await page.waitForFunction(() => document.querySelectorAll('#rows .row').length > 200, null, { timeout: T });
    await page.waitForFunction(() => !document.getElementById('top-note').textContent.includes('loading'), null, { timeout: T });
    const api2 = await apiSearch({ limit: 200, order: 'desc', cursor: api1.next_cursor }, cfg.allToken);
    out.twoPageIds = await rowIds(page);
    out.twoPageApiIds = api2.events.map((e) => e.id).reverse().concat(out.firstPageApiIds);

    // --- keyboard: / focuses the search box
    step('keyboard: / focuses the search');
    await page.click('#graph-info');
    await page.keyboard.press('/');
    out.slashFocus = await page.evaluate(() => document.activeElement && document.activeElement.id);
    await page.keyboard.press('Escape');

    // --- a query: the same lines as the API, highlighted; the graph's totals
    step('a query: the same lines as the');
    await searchFor(page, cfg.query);
    await page.waitForFunction(() => document.getElementById('graph-info').dataset.lines !== undefined && document.querySelectorAll('#bars .bar').length > 0, null, { timeout: T });
    const api3 = await apiSearch({ q: cfg.query, limit: 200, order: 'desc' }, cfg.allToken);
    out.queryIds = await rowIds(page);
    out.queryApiIds = api3.events.map((e) => e.id).reverse();
    out.marks = await page.$$eval('#rows mark', (ms) => ms.slice(0, 20).map((m) => m.textContent));
    out.graph = await page.$eval('#graph-info', (g) => ({ lines: Number(g.dataset.lines), matches: Number(g.dataset.matches) }));
    out.barSums = await page.$$eval('#bars .bar', (bs) => ({
      lines: bs.reduce((a, b) => a + Number(b.dataset.lines), 0),
      matches: bs.reduce((a, b) => a + Number(b.dataset.matches), 0), n: bs.length }));
    out.progClasses = await page.$$eval('#rows .prog', (ps) => [...new Set(ps.map((p) => p.className.split(' ')[1]))]);
    await shot(page, 'query');

    // --- permalink round trip: a new page at this URL shows the same search
    step('permalink round trip: a new pa');
    const link = page.url();
    const p2 = await browser.newPage();
    p2.on('dialog', (d) => { out.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    await p2.goto(link);
    await p2.waitForFunction(() => document.querySelectorAll('#rows .row').length > 0, null, { timeout: T });
    out.permalink = { url: link, q: await p2.inputValue('#q'), ids: await rowIds(p2) };
    await p2.close();

    // --- click a bar: the range zooms to it (absolute since/until in the URL)
    await page.$$eval('#bars .bar', (bs) => { const b = bs.filter((x) => Number(x.dataset.lines) > 0).pop(); b.click(); });
    await page.waitForFunction(() => /since=\d{4}-/.test(location.search) && /until=\d{4}-/.test(location.search) && document.getElementById('graph-info').dataset.lines !== undefined, null, { timeout: T });
    out.zoom = await page.evaluate(() => { const p = new URLSearchParams(location.search);
      return { since: p.get('since'), until: p.get('until'), q: p.get('q'), matches: Number(document.getElementById('graph-info').dataset.matches) }; });

    // --- a bad query: the error at its position
    step('a bad query: the error at its ');
    await page.fill('#q', cfg.badQuery);
    await page.press('#q', 'Enter');
    await page.waitForSelector('#qerr:not([hidden])', { timeout: T });
    out.queryError = { msg: await page.textContent('#qerr-msg'), at: await page.textContent('#qerr-at') };
    await shot(page, 'query-error');

    // --- XSS lines are text
    step('XSS lines are text');
    await searchFor(page, 'xsstest');
    await page.waitForFunction(() => document.querySelectorAll('#rows .row').length >= 3, null, { timeout: T });
    // click each (its context renders it again), closing the panel between clicks
    for (const r of await page.$$('#rows .row .text')) {
      await r.click({ timeout: 3000 });
      await page.waitForFunction(() => document.querySelectorAll('#ctx-dyno .row').length > 0, null, { timeout: T });
      await page.keyboard.press('Escape');
    }
    await page.waitForTimeout(300);
    out.xss = await page.evaluate(() => ({
      ran: window.__xss === undefined ? null : window.__xss,
      imgs: document.querySelectorAll('#rows img, #context img').length,
      scripts: document.scripts.length,
      links: document.querySelectorAll('#rows a, #context a').length,
      texts: [...document.querySelectorAll('#rows .row .text')].map((t) => t.textContent),
      csp: window.__csp || [],
      rawMarks: [...document.querySelectorAll('#rows .mk.raw')].map((m) => m.title),
      perrMarks: document.querySelectorAll('#rows .mk.perr').length,
    }));
    await shot(page, 'xss');

    // --- context: same dyno and all dynos
    step('context: same dyno and all dyn');
    await searchFor(page, cfg.contextQuery);
    await page.waitForFunction(() => document.querySelectorAll('#rows .row').length > 0, null, { timeout: T });
    const rows = await page.$$('#rows .row');
    const target = rows[Math.floor(rows.length / 2)];
    const targetId = await target.evaluate((r) => r.dataset.id);
    await target.click();
    await page.waitForFunction(() => document.querySelectorAll('#ctx-all .row').length > 1, null, { timeout: T });
    out.context = await page.evaluate(() => ({
      visible: !document.getElementById('context').hidden,
      dynoProgs: [...document.querySelectorAll('#ctx-dyno .prog')].map((p) => p.textContent),
      allProgs: [...document.querySelectorAll('#ctx-all .prog')].map((p) => p.textContent),
      selected: document.querySelector('#ctx-dyno .row.sel') && document.querySelector('#ctx-dyno .row.sel').dataset.id,
      dynoN: document.querySelectorAll('#ctx-dyno .row').length,
    }));
    out.context.targetId = targetId;
    await shot(page, 'context');
    await page.keyboard.press('Escape');
    out.contextClosedByEsc = await page.evaluate(() => document.getElementById('context').hidden);

    // --- a line of a crash: the context shows the joined trace
    step('crash in context');
    await searchFor(page, 'ValueError');
    await page.waitForFunction(() => document.querySelectorAll('#rows .row').length > 0, null, { timeout: T });
    await (await page.$$('#rows .row')).pop().click();
    await page.waitForSelector('#ctx-crash:not([hidden])', { timeout: T });
    out.crash = await page.evaluate(() => ({
      head: document.getElementById('crash-head').textContent,
      frames: [...document.querySelectorAll('#crash-frames li')].map((li) => [li.textContent, li.className]),
    }));
    await shot(page, 'crash');
    await page.keyboard.press('Escape');

    // --- alert snippet
    step('alert snippet');
    await searchFor(page, cfg.query);
    await page.click('#alert');
    await page.waitForSelector('#alertbox:not([hidden])', { timeout: T });
    out.alertSnippet = await page.textContent('#alert-snippet');
    await page.check('input[name=cond][value=threshold]');
    out.alertThreshold = await page.textContent('#alert-snippet');
    await shot(page, 'alert');
    await page.keyboard.press('Escape');

    // --- live tail: f toggles; a line posted now shows within 1 s
    step('live tail: f toggles; a line p');
    await searchFor(page, '');
    await page.click('#graph-info');
    await page.keyboard.press('f');
    await page.waitForFunction(() => document.getElementById('tail-state').textContent === 'live', null, { timeout: T });
    out.fStartsTail = await page.evaluate(() => document.getElementById('live').classList.contains('on') && new URLSearchParams(location.search).get('live') === '1');
    const marker = 'tailmark' + Date.now();
    const t0 = Date.now();
    await post(cfg.sourceA, marker + ' posted after the page opened');
    let seen = true;
    try {
      await page.waitForFunction((m) => [...document.querySelectorAll('#rows .text')].some((t) => t.textContent.includes(m)), marker, { timeout: 1000, polling: 20 });
    } catch (e) { seen = false; }
    out.tail = { seen, ms: Date.now() - t0 };
    await shot(page, 'live');
    // a burst: the DOM stays bounded (a window over the stream), the last line arrives
    const burst = 'burst' + Date.now();
    const many = [];
    for (let i = 0; i < 4000; i++) many.push(`<190>1 2026-11-21T10:00:00.000000+00:00 host app worker.${i % 3} - ${burst} n=${i}\n`);
    for (let k = 0; k < 4000; k += 1000) {
      const body = many.slice(k, k + 1000).map((l) => `${Buffer.byteLength(l)} ${l}`).join('');
      const r = await fetch(new URL('/logs', cfg.base), { method: 'POST', body, headers: {
        Authorization: 'Basic ' + Buffer.from(cfg.sourceA.name + ':' + cfg.sourceA.token).toString('base64'),
        'Content-Type': 'application/logplex-1' } });
      if (r.status !== 204) throw new Error('POST /logs ' + r.status);
    }
    await page.waitForFunction((m) => [...document.querySelectorAll('#rows .text')].some((t) => t.textContent === m), burst + ' n=3999', { timeout: T });
    out.burst = await page.evaluate(() => ({ rows: document.querySelectorAll('#rows .row').length,
      atBottom: (() => { const l = document.getElementById('lines'); return l.scrollHeight - l.scrollTop - l.clientHeight < 40; })() }));
    await page.keyboard.press('f');
    out.fStopsTail = await page.evaluate(() => !document.getElementById('live').classList.contains('on'));
    // paused: a line posted now is not shown; resuming gets it (the stream resumes after
    // the last line shown, last_id, and the server replays what came meanwhile)
    const held = 'heldback' + Date.now();
    await post(cfg.sourceA, held);
    await page.waitForTimeout(500);
    out.pausedShowedLine = await page.evaluate((m) => [...document.querySelectorAll('#rows .text')].some((t) => t.textContent.includes(m)), held);
    await page.keyboard.press('f');
    await page.waitForFunction((m) => [...document.querySelectorAll('#rows .text')].some((t) => t.textContent.includes(m)), held, { timeout: T });
    out.resumedGotLine = true;
    await page.keyboard.press('f');

    // --- first paint and first results (performance timings; figures, not assertions)
    step('first paint and first results ');
    const p3 = await browser.newPage();
    await p3.goto(cfg.base + '/?q=' + encodeURIComponent(cfg.query));
    await p3.waitForFunction(() => document.body.dataset.results !== undefined, null, { timeout: T });
    out.perf = await p3.evaluate(() => {
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      const res = performance.getEntriesByName('sluice-first-results')[0];
      return { firstContentfulPaintMs: fcp ? Math.round(fcp.startTime) : null,
        firstResultsMs: res ? Math.round(res.startTime) : null };
    });
    await p3.close();

    // --- sign out
    step('sign out');
    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])', { timeout: T });
    out.signedOut = (await browser.cookies(cfg.base)).filter((c) => c.name === 'sluice_session' && c.value).length === 0;

    // --- the scoped token sees only its source, in every view
    step('the scoped token sees only its');
    await signIn(page, cfg.scopedToken);
    await page.waitForFunction(() => document.querySelectorAll('#rows .row').length > 0, null, { timeout: T });
    out.scoped = {};
    out.scoped.sourceOptions = await page.$$eval('#source option', (os) => os.map((o) => o.value));
    out.scoped.defaultSources = await page.$$eval('#rows .src', (ss) => [...new Set(ss.map((s) => s.textContent))]);
    await searchFor(page, cfg.secretWord);
    await page.waitForFunction(() => document.getElementById('graph-info').dataset.lines !== undefined, null, { timeout: T });
    out.scoped.secretRows = (await rowIds(page)).length;
    out.scoped.graph = await page.$eval('#graph-info', (g) => ({ lines: Number(g.dataset.lines), matches: Number(g.dataset.matches) }));
    out.scoped.contextOfB = await page.evaluate(async (id) => (await fetch('/api/v1/context?id=' + id)).status, cfg.secretId);
    out.scoped.searchB = await page.evaluate(async (name) => (await (await fetch('/api/v1/search?source=' + name)).json()).count, cfg.sourceB.name);
    await searchFor(page, '');
    await page.click('#graph-info');
    await page.keyboard.press('f');
    await page.waitForFunction(() => document.getElementById('tail-state').textContent === 'live', null, { timeout: T });
    const mB = 'scopedB' + Date.now(), mA = 'scopedA' + Date.now();
    await post(cfg.sourceB, mB);
    await post(cfg.sourceA, mA);
    await page.waitForFunction((m) => [...document.querySelectorAll('#rows .text')].some((t) => t.textContent.includes(m)), mA, { timeout: T });
    await page.waitForTimeout(300);
    out.scoped.tailSawB = await page.evaluate((m) => [...document.querySelectorAll('#rows .text')].some((t) => t.textContent.includes(m)), mB);
    out.scoped.tailSawA = true;
    await shot(page, 'scoped');
    out.pageErrors = out.pageErrors.concat([]);
  } catch (e) {
    out.error = String(e && e.stack || e);
  } finally {
    await browser.close();
    fs.rmSync(userDir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out));
})();
