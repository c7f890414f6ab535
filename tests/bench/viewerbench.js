// The web viewer's first paint and first results in headless Chromium (tests/bench/viewer.sh):
// signs in once, then loads the page RUNS times for each query and prints one RESULT line
// per query with the medians and maxima of first-contentful-paint, the first results
// (the viewer's `sluice-first-results` mark: the search answered and drawn) and the graph.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const [base, token, runs, ...queries] = process.argv.slice(2);
const ok = (a) => a.filter((x) => typeof x === 'number');
const med = (a) => { const s = ok(a).sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)].toFixed(0) : 'na'; };
const max = (a) => (ok(a).length ? Math.max(...ok(a)).toFixed(0) : 'na');

(async () => {
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'viewerbench-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 860 },
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    await page.goto(base + '/');
    await page.fill('#token', token);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#view:not([hidden])', { timeout: 60000 });
    for (const q of queries) {
      const fcp = [], res = [], graph = [], search = [];
      for (let i = 0; i < Number(runs); i++) {
        const p = await ctx.newPage();
        await p.goto(base + '/?q=' + encodeURIComponent(q));
        await p.waitForFunction(() => document.body.dataset.results !== undefined, null, { timeout: 60000 });
        await p.waitForFunction(() => document.getElementById('graph-info').dataset.lines !== undefined, null, { timeout: 60000 }).catch(() => {});
        const m = await p.evaluate(() => {
          const e = (n) => { const x = performance.getEntriesByName(n)[0]; return x ? x.startTime : null; };
          const g = performance.getEntriesByType('resource').find((r) => r.name.includes('/api/v1/aggregate'));
          const sr = performance.getEntriesByType('resource').find((r) => r.name.includes('/api/v1/search'));
          return { fcp: e('first-contentful-paint'), res: e('sluice-first-results'), graph: g ? g.responseEnd : null,
            search: sr ? sr.responseEnd - sr.requestStart : null };
        });
        fcp.push(m.fcp); res.push(m.res); graph.push(m.graph); search.push(m.search);
        await p.close();
      }
      console.log(`RESULT q=${JSON.stringify(q)} runs=${runs} first_paint_p50_ms=${med(fcp)} first_paint_max_ms=${max(fcp)} first_results_p50_ms=${med(res)} first_results_max_ms=${max(res)} search_request_p50_ms=${med(search)} graph_p50_ms=${med(graph)} graph_max_ms=${max(graph)} graphs_drawn=${ok(graph).length}`);
    }
    // screenshots over the loaded set (docs/img/ takes the best of them); a failure here
    // is reported, not fatal: the figures above are the bench
    const shots = process.env.VIEWER_SHOTS;
    if (shots) {
      try {
        fs.mkdirSync(shots, { recursive: true });
        const p = await ctx.newPage();
        const graphDrawn = () => p.waitForFunction(() => document.querySelectorAll('#bars .bar').length > 0, null, { timeout: 30000 }).catch(() => {});
        await p.goto(base + '/?since=7d&q=' + encodeURIComponent('KeyError OR H12'));
        await p.waitForFunction(() => document.body.dataset.results !== undefined, null, { timeout: 60000 });
        await graphDrawn();
        await p.waitForTimeout(300);
        await p.screenshot({ path: path.join(shots, 'viewer-bench-search.png') });
        const rows = await p.$$('#rows .row');
        if (rows.length) {
          await rows[Math.max(0, rows.length - 8)].click();
          await p.waitForFunction(() => document.querySelectorAll('#ctx-all .row').length > 1, null, { timeout: 60000 });
          await p.screenshot({ path: path.join(shots, 'viewer-bench-context.png') });
          await p.keyboard.press('Escape');
        }
        await p.click('#alert');
        await p.waitForTimeout(200);
        await p.screenshot({ path: path.join(shots, 'viewer-bench-alert.png') });
        await p.close();
      } catch (e) {
        console.error('screenshots: ' + e);
      }
    }
  } finally {
    await ctx.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
