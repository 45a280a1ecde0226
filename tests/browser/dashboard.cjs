// The dashboard in a real browser: playwright-core drives Debian's Chromium against
// `bazaar serve` (and `bazaar run --serve`) on loopback. Started by tests/serve.rs, which
// passes what it knows of the runs in EXPECT (JSON) and where things are in the environment.
// Prints one JSON line of findings; any failed check throws (exit 1).
'use strict';

const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const fs = require('fs');
const path = require('path');

const BASE = process.env.BASE;
const LIVE = process.env.LIVE;
const SHOTS = process.env.SHOTS;
const EXPECT = JSON.parse(process.env.EXPECT);

function check(ok, message) {
  if (!ok) throw new Error(message);
}

async function settled(page) {
  // A view is drawn when its status line is empty (no "Loading…", no error).
  await page.waitForFunction(() => document.getElementById('status').textContent === '', null, { timeout: 30000 });
}

async function chartSum(page, index = 0) {
  return page.evaluate((i) => {
    const div = document.querySelectorAll('.chart')[i];
    const option = echarts.getInstanceByDom(div).getOption();
    // The festival and weekend bands are drawn, not data.
    return option.series.filter((x) => x.name !== 'bands').reduce((s, x) => s + x.data.reduce((a, v) => a + Number(v), 0), 0);
  }, index);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${page.url()}: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const found = {};
  const a = EXPECT.folder;

  // First, while it runs: the live view of `run --serve` gets progress and days, then
  // opens the finished run.
  if (LIVE) {
    const live = await context.newPage();
    live.on('console', (m) => { if (m.type() === 'error') errors.push(`${live.url()}: ${m.text()}`); });
    await live.addInitScript(() => {
      window.__events = { progress: 0, day: 0 };
      const Real = window.EventSource;
      window.EventSource = class extends Real {
        constructor(...args) {
          super(...args);
          for (const kind of ['progress', 'day']) this.addEventListener(kind, () => { window.__events[kind] += 1; });
        }
      };
    });
    await live.goto(`${LIVE}/?folder=${EXPECT.live_folder}&view=live`);
    await live.waitForFunction(() => window.__events.progress > 0, null, { timeout: 120000 });
    await live.screenshot({ path: path.join(SHOTS, 'live.png'), fullPage: true });
    await live.waitForURL((u) => u.searchParams.get('view') === 'overview', { timeout: 300000 });
    await settled(live);
    found.live_events = await live.evaluate(() => window.__events);
    check(found.live_events.day === EXPECT.live_days, `the live page got ${found.live_events.day} days of ${EXPECT.live_days}`);
    await live.screenshot({ path: path.join(SHOTS, 'live-finished.png'), fullPage: true });
  }

  // Every view loads without console errors, each with a screenshot.
  for (const view of EXPECT.views) {
    await page.goto(`${BASE}/?folder=${a}&view=${encodeURIComponent(view)}`);
    await settled(page);
    const drawn = await page.evaluate(() => document.querySelectorAll('.chart canvas, #view table, #view textarea').length);
    check(drawn > 0, `view ${view} drew nothing`);
    await page.screenshot({ path: path.join(SHOTS, `view-${view.replace(':', '-')}.png`), fullPage: true });
  }
  check(requests.every((u) => u.startsWith(BASE)), `the page fetched from elsewhere: ${requests.filter((u) => !u.startsWith(BASE))}`);

  // A filter changes the chart and the URL.
  await page.goto(`${BASE}/?folder=${a}&view=daily`);
  await settled(page);
  const all = await chartSum(page);
  await page.selectOption('#persona', [EXPECT.persona]);
  await page.waitForURL((u) => u.searchParams.get('persona') === EXPECT.persona);
  await settled(page);
  const one = await chartSum(page);
  found.daily_revenue_all = all;
  found.daily_revenue_persona = one;
  check(Math.abs(all - EXPECT.revenue) < 1, `daily revenue ${all}, summary says ${EXPECT.revenue}`);
  check(Math.abs(one - EXPECT.persona_revenue) < 1, `${EXPECT.persona} revenue ${one}, summary says ${EXPECT.persona_revenue}`);
  // The shared URL draws the same view.
  const shared = page.url();
  const other = await context.newPage();
  await other.goto(shared);
  await settled(other);
  check(Math.abs((await chartSum(other)) - one) < 1, 'the shared URL draws another chart');
  await other.close();

  // Hovering a day shows its figures (the bands stay out of the tooltip).
  await page.goto(`${BASE}/?folder=${a}&view=daily`);
  await settled(page);
  const box = await page.locator('.chart').first().boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForTimeout(300);
  const tip = await page.evaluate(() => [...document.querySelectorAll('.chart div')].map((d) => d.textContent).find((t) => /₹|Rs/.test(t)) || '');
  check(tip.length > 0 && !tip.includes('bands'), `the tooltip: ${tip}`);
  await page.screenshot({ path: path.join(SHOTS, 'daily-hover.png'), fullPage: true });

  // Phone-sized and print views.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${BASE}/?folder=${a}&view=overview`);
  await settled(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the overview is ${overflow}px wider than a phone`);
  await page.screenshot({ path: path.join(SHOTS, 'phone-overview.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ media: 'print' });
  const hidden = await page.evaluate(() => getComputedStyle(document.getElementById('filters')).display);
  check(hidden === 'none', 'the print view keeps the filters');
  await page.screenshot({ path: path.join(SHOTS, 'print-overview.png'), fullPage: true });
  await page.emulateMedia({ media: 'screen' });

  // The customer page shows a known customer's baskets.
  await page.goto(`${BASE}/?folder=${a}&view=customer&customer=${EXPECT.customer}`);
  await settled(page);
  const baskets = await page.locator('#customer-transactions tbody tr').count();
  found.customer_baskets = baskets;
  check(baskets === EXPECT.customer_baskets, `customer ${EXPECT.customer}: ${baskets} baskets shown, ${EXPECT.customer_baskets} in the log`);
  await page.screenshot({ path: path.join(SHOTS, 'customer.png'), fullPage: true });

  // The SQL tab answers a known count and refuses a write and a path outside the run.
  await page.goto(`${BASE}/?folder=${a}&view=sql`);
  await settled(page);
  const sql = async (text) => {
    await page.fill('#sql', text);
    await page.click('#run-sql');
    await page.waitForFunction(() => document.getElementById('sql-info').textContent !== 'Running…');
    await page.waitForSelector('#sql-result table, #sql-error');
  };
  await sql('SELECT COUNT(*) AS n FROM transactions');
  const n = Number(await page.locator('#sql-result td').first().textContent());
  found.sql_count = n;
  check(n === EXPECT.transactions, `SQL counted ${n} transactions, the manifest ${EXPECT.transactions}`);
  await page.screenshot({ path: path.join(SHOTS, 'sql.png'), fullPage: true });
  found.refusals = [];
  // The browser logs each refusal's 400 as a failed load: expected here, and only here.
  const before = errors.length;
  for (const bad of EXPECT.refused_sql) {
    await sql(bad);
    const text = await page.locator('#sql-error').textContent();
    found.refusals.push(text);
    check(text.length > 0, `${bad} was not refused`);
  }
  const refusals = errors.splice(before);
  check(refusals.every((e) => e.includes('status of 400')), `unexpected errors while refusing: ${refusals}`);

  // Two folders side by side.
  await page.goto(`${BASE}/?folder=${a}&view=compare&with=${EXPECT.other}`);
  await settled(page);
  check(await page.locator('#compare-table tbody tr').count() === EXPECT.personas, 'the comparison has a row per persona');
  await page.screenshot({ path: path.join(SHOTS, 'compare.png'), fullPage: true });

  // An experiment's folder: its verdicts and differences, a persona's, and two arms side
  // by side.
  await page.goto(`${BASE}/?folder=${EXPECT.experiment}`);
  await settled(page);
  const verdicts = await page.locator('#verdicts li').count();
  check(verdicts === EXPECT.experiment_verdicts, `${verdicts} verdicts shown, ${EXPECT.experiment_verdicts} in experiment.json`);
  const rows = await page.locator('#experiment-table tbody tr').count();
  check(rows === EXPECT.experiment_rows, `${rows} differences shown, ${EXPECT.experiment_rows} in experiment.json`);
  check(await page.locator('.chart canvas').count() > 0, 'the experiment view drew no chart');
  await page.screenshot({ path: path.join(SHOTS, 'experiment.png'), fullPage: true });
  await page.selectOption('#persona', [EXPECT.experiment_persona]);
  await page.waitForURL((u) => u.searchParams.get('persona') === EXPECT.experiment_persona);
  await settled(page);
  const metrics = await page.locator('#experiment-table tbody tr td:nth-child(3)').allTextContents();
  check(metrics.length > 0 && metrics.every((m) => m.endsWith(`.${EXPECT.experiment_persona}`)), `a persona's differences: ${metrics}`);
  await page.goto(`${BASE}/?folder=${EXPECT.experiment}&view=arms`);
  await settled(page);
  check(await page.locator('#arms-table tbody tr').count() === EXPECT.experiment_personas, 'the arms have a row per persona');
  await page.selectOption('#arm-a', 'sweets');
  await page.waitForURL((u) => u.searchParams.get('a') === 'sweets');
  await settled(page);
  const same = await page.locator('#arms-overall .card b').nth(2).textContent();
  found.arms_same = same;
  check(same === '₹0', `an arm against itself differs by ${same}`);
  await page.selectOption('#arm-a', 'base');
  await page.waitForURL((u) => u.searchParams.get('a') === 'base');
  await settled(page);
  await page.screenshot({ path: path.join(SHOTS, 'arms.png'), fullPage: true });

  check(errors.length === 0, `console errors: ${errors.join('\n')}`);
  await browser.close();
  console.log(JSON.stringify(found));
})().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
