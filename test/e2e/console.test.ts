import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import pino from 'pino';
import { buildApp } from '../../src/app';
import { DevDesks } from '../../src/dev/dev-desks';
import { createMetrics } from '../../src/metrics';
import { makeTestApp, type TestApp } from '../helpers/app';
import { ensureConsoleBuilt, launchChromium, recordRequests } from '../helpers/browser';
import { makeKeyPair } from '../helpers/keys';
import { validContent } from '../fixtures/alerts';
import type { AlertContent } from '../../src/domain/types';

/**
 * The desk and ops console in a real browser (Debian's Chromium through playwright-core) against
 * a real node on the real NATS and Redis of this machine. Elements are found by role and label,
 * as a person (or a screen reader) finds them.
 */

jest.setTimeout(60_000);

let t: TestApp;
let base: string;
let browser: Browser;
const requests: string[] = [];
/** The nodes' origins (http and ws): the only ones a page may talk to. */
const origins: string[] = [];
/** Script errors and Content-Security-Policy reports of every page (expected: only the ones listed at the end). */
const consoleErrors: string[] = [];
const contexts: BrowserContext[] = [];
let R1: string;
let R2: string;

async function newPage(opts: { locale?: string; height?: number } = {}): Promise<Page> {
  const context = await browser.newContext({
    locale: opts.locale ?? 'en-GB',
    viewport: { width: 1280, height: opts.height ?? 900 },
    timezoneId: 'Asia/Bishkek',
  });
  contexts.push(context);
  recordRequests(context, requests);
  // Desktop notifications the page shows are recorded (headless Chromium has no notification centre).
  await context.addInitScript(`{
    const Real = window.Notification;
    window.__notes = [];
    window.Notification = class extends Real { constructor(title, opts) { super(title, opts); window.__notes.push(title); } };
  }`);
  const page = await context.newPage();
  page.on('websocket', (ws) => requests.push(ws.url()));
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content.Security.Policy/i.test(m.text())) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  return page;
}

async function signIn(page: Page, token: string, ops = false): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByLabel('Token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (ops) await page.getByRole('navigation').getByRole('button', { name: 'Replay' }).waitFor({ timeout: 10_000 });
  else await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 10_000 });
}

function content(overrides: Partial<AlertContent> = {}): AlertContent {
  return validContent({ region: R1, ...overrides });
}

function feedArticle(page: Page, title: string) {
  return page.getByRole('feed').getByRole('article', { name: title, exact: true });
}

/** Every article of the (virtualised) feed, scrolling it through: position order, key and title. */
async function wholeFeed(page: Page): Promise<Array<{ key: string; title: string }>> {
  return await page.evaluate<Array<{ key: string; title: string }>>(`(async () => {
    const s = document.querySelector('.feed-scroller');
    const seen = new Map();
    s.scrollTop = 0;
    for (;;) {
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      for (const a of document.querySelectorAll('[role=feed] article')) {
        seen.set(Number(a.getAttribute('aria-posinset')), { key: a.dataset.key, title: a.querySelector('h3').textContent });
      }
      if (s.scrollTop + s.clientHeight >= s.scrollHeight - 1) break;
      s.scrollTop += s.clientHeight;
    }
    s.scrollTop = 0;
    return [...seen.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
  })()`);
}

/** Polls a locator's count: the feed re-renders once per animation frame, later on a loaded machine. */
async function countIs(l: Locator, n: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  let c = await l.count();
  while (c !== n && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    c = await l.count();
  }
  expect(c).toBe(n);
}

type Live = { isConnected: boolean };

/**
 * Evaluates fn on the element a locator finds, again if that element left the page before fn ran:
 * the feed replaces an article whenever it changes (its signature or log check completes), and the
 * element Playwright resolved can be detached by the time it evaluates (a detached element's computed
 * style is all empty strings). fn returns null for a detached element.
 */
async function live<T>(l: Locator, fn: (el: Live) => T | null, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = (await l.evaluate(fn as (el: unknown) => T | null)) as T | null;
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error('the element was replaced on every try');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function auditItems(purpose: string): Promise<Array<Record<string, unknown>>> {
  const ops = t.token({ role: 'ops', sub: 'ops-test' });
  const items: Array<Record<string, unknown>> = [];
  let after = 0;
  for (;;) {
    const res = await t.app.inject({
      url: `/v1/audit?after=${after}&limit=1000&purpose=${encodeURIComponent(purpose)}`,
      headers: { authorization: `Bearer ${ops}` },
    });
    const page = res.json<{ items: Array<Record<string, unknown>>; next: number | null }>();
    items.push(...page.items);
    if (page.next === null || page.items.length === 0) return items;
    after = page.next;
  }
}

beforeAll(async () => {
  await ensureConsoleBuilt();
  // With the transparency log: every alert is also proved in the browser ("In log").
  t = await makeTestApp({ backend: 'real', tlog: { delayMs: 20 } });
  [R1, R2] = t.regions.list().map((r) => r.code);
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  origins.push(base);
  browser = await launchChromium();
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await t?.close();
});

describe('console in Chromium against a real node', () => {
  let desk: Page;

  test('GET / leads to the console; a desk signs in with a token and sees who it is, live', async () => {
    desk = await newPage();
    await desk.context().grantPermissions(['notifications'], { origin: base });
    await signIn(desk, t.token({ sub: 'desk-bishkek' }));
    const who = desk.getByRole('banner');
    await who.getByText('desk-bishkek').waitFor();
    expect(await who.textContent()).toContain('secret');
    expect(desk.url()).toBe(`${base}/console/`);
    // The token lives in sessionStorage only.
    const stored = await desk.evaluate<{ session: string | null; local: string }>(
      '({ session: sessionStorage.getItem("cordon.token"), local: JSON.stringify(localStorage) })',
    );
    expect(stored.session).toMatch(/^ey/);
    expect(stored.local).not.toContain(stored.session as string);
  });

  test('a live alert is on screen within 2 s, verified by the browser, with its TLP and handling in words', async () => {
    const c = content({ title: 'Live truck at Torugart' });
    const t0 = Date.now();
    await t.publish(c);
    const art = feedArticle(desk, c.title);
    await art.waitFor({ timeout: 2000 });
    expect(Date.now() - t0).toBeLessThan(2000);
    await art.getByText('Verified').waitFor({ timeout: 15_000 });
    // Proved in the region's transparency log, by the browser, once a checkpoint covers it.
    await art.getByRole('img', { name: /^In log: included in the signed transparency log/ }).waitFor({ timeout: 15_000 });
    const text = await art.textContent();
    expect(text).toContain('TLP:AMBER');
    expect(text).toContain("not to be passed on without the provider's permission");
    expect(text).toContain("Onward sharing: only with the issuing state's permission.");
    expect(text).toContain('Urgent');
  });

  test('markup and script in alert text are shown as text, never run', async () => {
    const title = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>Bold</b>';
    const description = '<iframe src="https://example.org/"></iframe><script>window.__pwned=3</script>';
    await t.publish(content({ title, description }));
    const art = feedArticle(desk, title);
    await art.waitFor({ timeout: 15_000 });
    await art.getByRole('button', { name: 'Details' }).click();
    const dialog = desk.getByRole('dialog');
    await dialog.getByText(description, { exact: true }).waitFor();
    expect(await desk.evaluate('window.__pwned')).toBeUndefined();
    expect(await desk.locator('#app img, #app iframe, #app script, #app b').count()).toBe(0);
    // Grading and handling in words, in the details.
    const detail = await dialog.textContent();
    expect(detail).toContain('B2: mostly reliable source, known personally to the source but not to the official passing it on');
    expect(detail).toContain("H1: not to be used in judicial proceedings without the provider's permission");
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  test('a flash alert is announced with role="alert" and a desktop notification', async () => {
    const c = content({ urgency: 'flash', title: 'Flash: convoy crossing now' });
    await t.publish(c);
    await desk
      .getByRole('alert')
      .filter({ hasText: `Flash alert: ${c.title}` })
      .waitFor({ timeout: 15_000 });
    expect(await feedArticle(desk, c.title).getAttribute('data-urgency')).toBe('flash');
    // and, with the permission granted, a desktop notification
    expect(await desk.evaluate('window.__notes')).toContain(`Flash alert: ${c.title}`);
  });

  test('filters by urgency, category, issuing state and text, without reconnecting', async () => {
    await t.publish(content({ urgency: 'routine', category: 'route-change', title: 'Routine route change' }));
    await t.publish(validContent({ region: R1, issuer: { state: 'CN', agency: 'cn-customs', gateway: 'cn-gw-1' }, title: 'Chinese customs notice' }), 'CN');
    await feedArticle(desk, 'Chinese customs notice').waitFor({ timeout: 15_000 });
    // Inclusion checks of the transparency log go on in the background: not counted.
    const fetches = 'performance.getEntriesByType("resource").filter((e) => !e.name.includes("/log/")).length';
    const opens = await desk.evaluate(fetches);
    const feed = desk.getByRole('feed');

    await desk.getByLabel('Urgency').selectOption({ label: 'Flash' });
    await countIs(feed.getByRole('article'), 1);
    await desk.getByLabel('Urgency').selectOption({ label: 'Any' });

    await desk.getByLabel('Category').selectOption({ label: 'Route change' });
    await feedArticle(desk, 'Routine route change').waitFor();
    await countIs(feed.getByRole('article'), 1);
    await desk.getByLabel('Category').selectOption({ label: 'Any' });

    await desk.getByLabel('Issuing state').selectOption('CN');
    await countIs(feed.getByRole('article'), 1);
    await feedArticle(desk, 'Chinese customs notice').waitFor();
    await desk.getByLabel('Issuing state').selectOption('');

    await desk.getByLabel('Search').fill('LIVE TRUCK');
    await feedArticle(desk, 'Live truck at Torugart').waitFor();
    await countIs(feed.getByRole('article'), 1);
    await desk.getByLabel('Search').fill('');
    await expect(desk.getByRole('status').textContent()).resolves.toBe('Live');
    // No new connection or fetch was made for filtering.
    expect(await desk.evaluate(fetches)).toBe(opens);
  });

  test('Acknowledge (button and keyboard) is recorded in the audit trail as from this desk', async () => {
    const a = content({ title: 'Please acknowledge me' });
    const b = content({ title: 'Acknowledge me by keyboard' });
    const ra = await t.publish(a);
    const rb = await t.publish(b);
    await feedArticle(desk, a.title).getByRole('button', { name: 'Acknowledge' }).click();
    await feedArticle(desk, a.title).getByRole('button', { name: 'Acknowledged' }).waitFor();
    await feedArticle(desk, b.title).focus();
    await desk.keyboard.press('a');
    await feedArticle(desk, b.title).getByRole('button', { name: 'Acknowledged' }).waitFor();
    let acks: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 50 && acks.length < 2; i++) {
      acks = (await auditItems('console test: read acks')).filter((r) => r.kind === 'ack' && r.region === R1 && (r.seq === ra.seq || r.seq === rb.seq));
      if (acks.length < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(acks).toHaveLength(2);
    for (const r of acks) expect(String(r.actor)).toContain('desk-bishkek');
  });

  test('a correction and a revocation: version history in the details, the revoked alert struck through', async () => {
    const v1 = content({ title: 'Vehicle to be revoked' });
    await t.publish(v1);
    await feedArticle(desk, v1.title).waitFor({ timeout: 15_000 });
    const later = (ms: number) => new Date(Date.parse(v1.created) + ms).toISOString();
    await t.publish({ ...v1, modified: later(1000), correction_note: 'Plate number corrected' });
    await t.publish({ ...v1, modified: later(2000), revoked: true });
    const articles = desk.getByRole('feed').getByRole('article', { name: v1.title, exact: true });
    await articles.nth(2).waitFor({ timeout: 15_000 });
    for (const i of [0, 1, 2]) await articles.nth(i).getByText('Revoked', { exact: true }).waitFor();
    const decoration = await live(articles.first().getByRole('heading'), (el) =>
      el.isConnected
        ? (globalThis as unknown as { getComputedStyle(e: unknown): { textDecorationLine: string } }).getComputedStyle(el).textDecorationLine
        : null,
    );
    expect(decoration).toContain('line-through');
    await articles.first().getByRole('button', { name: 'Details' }).click();
    const dialog = desk.getByRole('dialog');
    const history = dialog.getByRole('listitem').filter({ hasText: 'KG-CN' });
    await dialog.getByText('Plate number corrected').first().waitFor({ timeout: 15_000 });
    await countIs(history, 3);
    expect(await dialog.textContent()).toContain('The issuing state has revoked this alert.');
    await desk.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
  });

  test('keyboard only: move between alerts, open one, close it', async () => {
    await desk.getByLabel('Search').focus();
    await desk.keyboard.press('Tab');
    const first = desk.getByRole('feed').getByRole('article').first();
    await first.focus();
    await desk.keyboard.press('ArrowDown');
    const second = desk.getByRole('feed').getByRole('article').nth(1);
    expect(
      await live(second, (el) => (el.isConnected ? el === (globalThis as unknown as { document: { activeElement: unknown } }).document.activeElement : null)),
    ).toBe(true);
    await desk.keyboard.press('Enter');
    await desk.getByRole('dialog').waitFor();
    await desk.keyboard.press('Escape');
    await desk.getByRole('dialog').waitFor({ state: 'hidden' });
  });

  test('a reload resumes exactly: the alerts published meanwhile appear, none twice', async () => {
    await desk.setViewportSize({ width: 1280, height: 3000 });
    const before = Number(await desk.getByRole('feed').getByRole('article').first().getAttribute('aria-setsize'));
    await desk.goto('about:blank');
    const missed = [content({ title: 'Missed one' }), content({ title: 'Missed two' }), content({ title: 'Missed three' })];
    for (const c of missed) await t.publish(c);
    await desk.goto(`${base}/console/`);
    await desk.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 10_000 });
    for (const c of missed) await feedArticle(desk, c.title).waitFor({ timeout: 15_000 });
    const feed = desk.getByRole('feed');
    const setsize = Number(await feed.getByRole('article').first().getAttribute('aria-setsize'));
    expect(setsize).toBe(before + missed.length);
    const all = await wholeFeed(desk);
    expect(all).toHaveLength(setsize);
    expect(new Set(all.map((a) => a.key)).size).toBe(setsize);
    // Newest first.
    expect(all.slice(0, 3).map((a) => a.title)).toEqual(['Missed three', 'Missed two', 'Missed one']);
  });

  test('a gap frame after trimming becomes a visible warning naming the range and the reason', async () => {
    const first = validContent({ region: R2, issuer: { state: 'KZ', agency: 'kz-border', gateway: 'kz-gw-1' }, title: 'Korday one' });
    await t.publish(first, 'KZ');
    await feedArticle(desk, first.title).waitFor({ timeout: 15_000 });
    await desk.goto('about:blank');
    for (let i = 2; i <= 6; i++)
      await t.publish(validContent({ region: R2, issuer: { state: 'KZ', agency: 'kz-border', gateway: 'kz-gw-1' }, title: `Korday ${i}` }), 'KZ');
    await t.deps.regionLog.trim(R2, { maxAlerts: 2, maxAgeMs: 86_400_000, nowMs: Date.now() });
    await desk.goto(`${base}/console/`);
    const warning = desk.getByRole('alert').filter({ hasText: 'are missing' });
    await warning.waitFor({ timeout: 10_000 });
    const text = await warning.textContent();
    expect(text).toContain(`Alerts 2–4 of region`);
    expect(text).toContain(R2);
    expect(text).toContain('retention');
    await feedArticle(desk, 'Korday 6').waitFor({ timeout: 15_000 });
  });

  test('the region picker narrows the watch; ticking a region again brings what it missed', async () => {
    const box = desk.getByRole('checkbox', { name: new RegExp(R2) });
    await box.uncheck();
    await feedArticle(desk, 'Korday 6').waitFor({ state: 'detached' });
    const c = validContent({ region: R2, issuer: { state: 'KZ', agency: 'kz-border', gateway: 'kz-gw-1' }, title: 'Korday while unwatched' });
    await t.publish(c, 'KZ');
    await feedArticle(desk, 'Live truck at Torugart').waitFor();
    await new Promise((r) => setTimeout(r, 300));
    expect(await feedArticle(desk, c.title).count()).toBe(0);
    await box.check();
    await feedArticle(desk, c.title).waitFor({ timeout: 15_000 });
    await countIs(feedArticle(desk, c.title), 1);
  });

  test('offline and back: the status says so, and what arrived meanwhile is shown once', async () => {
    await desk.context().setOffline(true);
    await desk.getByRole('status').filter({ hasText: 'Offline' }).waitFor({ timeout: 15_000 });
    const c = content({ title: 'Published while offline' });
    await t.publish(c);
    await desk.context().setOffline(false);
    await desk.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 10_000 });
    await feedArticle(desk, c.title).waitFor({ timeout: 15_000 });
    await countIs(feedArticle(desk, c.title), 1);
  });

  test('close 4002 (too slow): reconnects and resumes with nothing lost; close 4501: signed out with the reason', async () => {
    const sessions = () => [...t.app.deskSessions];
    await until(() => sessions().length === 1, 'the desk session');
    sessions()[0].close(4002, 'too slow');
    const during = [content({ title: 'While reconnecting one' }), content({ title: 'While reconnecting two' })];
    for (const c of during) await t.publish(c);
    for (const c of during) await feedArticle(desk, c.title).waitFor({ timeout: 10_000 });
    await desk.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 10_000 });
    for (const c of during) await countIs(feedArticle(desk, c.title), 1);

    await until(() => sessions().length === 1, 'the resumed desk session');
    sessions()[0].close(4501, 'token no longer valid');
    await desk.getByRole('alert').filter({ hasText: 'The node ended the session (4501): token no longer valid' }).waitFor({ timeout: 10_000 });
    await desk.getByLabel('Token', { exact: true }).waitFor();
  });

  test('"Signature invalid" when the trust-store key was swapped under the browser', async () => {
    const page = await newPage();
    const other = makeKeyPair();
    await page.route('**/v1/trust', async (route) => {
      const res = await route.fetch();
      const trust = (await res.json()) as { states: Record<string, { keys: Array<{ use: string; jwk: { x: string } }> }> };
      for (const k of trust.states.KG.keys) if (k.use === 'alert') k.jwk.x = other.jwk.x;
      await route.fulfill({ response: res, json: trust });
    });
    await signIn(page, t.token({ sub: 'desk-swapped' }));
    const c = content({ title: 'Signed by the real KG key' });
    await t.publish(c);
    const art = feedArticle(page, c.title);
    await art.getByText('Signature invalid').waitFor({ timeout: 15_000 });
    await art.getByRole('button', { name: 'Details' }).click();
    expect(await page.getByRole('dialog').textContent()).toContain('the signature does not match the content');
    await page.close();
  });

  test('"In log" in English, Russian and Chinese, found by its accessible label, also in the details', async () => {
    const page = await newPage();
    await signIn(page, t.token({ sub: 'desk-inlog' }));
    const c = content({ title: 'Proved in the log' });
    await t.publish(c);
    const art = feedArticle(page, c.title);
    const badge = (name: RegExp) => art.getByRole('img', { name }).waitFor({ timeout: 15_000 });
    await badge(/^In log: /);
    expect(await art.textContent()).toContain('In log');
    await page.getByLabel('Language').selectOption('ru');
    await badge(/^В журнале: включено в подписанный журнал прозрачности/);
    expect(await art.textContent()).toContain('В журнале');
    await page.getByLabel('Язык').selectOption('zh');
    await badge(/^已入日志：/);
    expect(await art.textContent()).toContain('已入日志');
    await page.getByLabel('语言').selectOption('en');
    await art.getByRole('button', { name: 'Details' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText(/proved against the signed tree of \d+ alerts/).waitFor();
    await dialog.getByRole('img', { name: /^In log: / }).waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.close();
  });

  test('"Pending" while no signed checkpoint covers the alert, then "In log" once one does, without a reload', async () => {
    const page = await newPage();
    let hold = true;
    await page.route('**/log/checkpoint', async (route) => {
      if (hold)
        await route.fulfill({ status: 503, contentType: 'application/problem+json', json: { code: 'LOG_TREE_NOT_FOUND', detail: 'held back by the test' } });
      else await route.continue();
    });
    await signIn(page, t.token({ sub: 'desk-pending' }));
    const c = content({ title: 'Waiting for a checkpoint' });
    await t.publish(c);
    const art = feedArticle(page, c.title);
    await art.getByRole('img', { name: /^Pending: not yet in the latest signed checkpoint/ }).waitFor({ timeout: 15_000 });
    hold = false;
    await art.getByRole('img', { name: /^In log: / }).waitFor({ timeout: 15_000 });
    await page.close();
  });

  test('"Not in log" when the inclusion proof the node serves does not verify', async () => {
    const page = await newPage();
    // Every proof this page gets has one hash altered on the way: it no longer leads to the signed root.
    await page.route('**/log/proof?*', async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { proof: string[] };
      body.proof = body.proof.map((h, i) => {
        if (i > 0) return h;
        const b = Buffer.from(h, 'base64');
        b[0] ^= 0x01;
        return b.toString('base64');
      });
      await route.fulfill({ response: res, json: body });
    });
    await signIn(page, t.token({ sub: 'desk-forked' }));
    const c = content({ title: 'Served with a wrong proof' });
    const receipt = await t.publish(c);
    expect(receipt.seq).toBeGreaterThan(1); // a tree of one leaf has an empty proof
    const art = feedArticle(page, c.title);
    await art.getByRole('img', { name: /^Not in log: the transparency log's inclusion proof for this alert does not verify/ }).waitFor({ timeout: 15_000 });
    await art.getByText('Verified').waitFor();
    expect(await art.getAttribute('class')).toContain('not-in-log');
    await page.close();
  });

  test('warns before the token expires and signs out when it does', async () => {
    const page = await newPage();
    const now = Math.floor(Date.now() / 1000);
    await signIn(page, t.token({ sub: 'desk-short', iat: now, exp: now + 6 }));
    await page.getByRole('alert').filter({ hasText: 'Your token expires at' }).waitFor({ timeout: 15_000 });
    await page.getByRole('alert').filter({ hasText: 'Your token expired' }).waitFor({ timeout: 15_000 });
    await page.getByLabel('Token', { exact: true }).waitFor();
    expect(await page.evaluate('sessionStorage.getItem("cordon.token")')).toBeNull();
    await page.close();
  });

  test('ops: replay with a purpose, open an alert, export NDJSON, read the audit trail', async () => {
    const page = await newPage();
    const purpose = 'Case 2026-117: review of Torugart alerts';
    // More than one page (25 rows) of history.
    for (let i = (await t.deps.regionLog.state(R1)).latest; i < 27; i++) await t.publish(content({ title: `History ${i + 1}` }));
    await signIn(page, t.token({ role: 'ops', sub: 'ops-bishkek' }), true);
    await page.getByLabel('Region', { exact: true }).selectOption(R1);
    await page.getByRole('button', { name: 'Show' }).click();
    await page.getByRole('alert').filter({ hasText: 'State the purpose first.' }).waitFor();
    await page.getByLabel('Purpose', { exact: true }).fill(purpose);
    await page.getByRole('button', { name: 'Show' }).click();
    const table = page.getByRole('table');
    await table.getByRole('cell', { name: '25', exact: true }).waitFor();
    await countIs(table.getByRole('row'), 26);
    await table.getByRole('row').nth(1).getByRole('cell').nth(3).getByRole('button').click();
    await page.getByRole('dialog').getByText('Verified').first().waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
    await page.getByRole('button', { name: 'Next page' }).click();
    await table.getByRole('cell', { name: '26', exact: true }).waitFor();

    const top = (await t.deps.regionLog.state(R1)).latest;
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
    const lines = readFileSync(await download.path(), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number });
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: top }, (_, i) => i + 1));
    await page
      .getByRole('status')
      .filter({ hasText: `Export finished: ${top} alerts downloaded.` })
      .waitFor();

    const replayed = (await auditItems('console test: read replays')).filter((r) => r.kind === 'replayed' && r.purpose === purpose);
    expect(replayed.length).toBeGreaterThanOrEqual(2);

    await page.getByRole('navigation').getByRole('button', { name: 'Audit' }).click();
    await page.getByLabel('Kind').selectOption({ label: 'history read' });
    await page.getByLabel('Actor').fill('ops-bishkek');
    await page.getByRole('button', { name: 'Show' }).click();
    // Page through the trail until this replay's record shows.
    const mine = page
      .getByRole('table')
      .getByRole('cell', { name: new RegExp(purpose) })
      .first();
    await page.getByRole('table').getByRole('cell', { name: 'history read' }).first().waitFor();
    for (let i = 0; i < 10 && !(await mine.isVisible()); i++) {
      await page.getByRole('button', { name: 'Next page' }).click();
      await page.waitForTimeout(200);
    }
    await mine.waitFor({ timeout: 2000 });
    await page.close();
  });

  test('development desks: offered only by a node with development keys, one click signs in', async () => {
    const page = await newPage();
    await page.goto(`${base}/console/`);
    await page.getByLabel('Token', { exact: true }).waitFor();
    await page.waitForLoadState('networkidle');
    expect(await page.getByRole('heading', { name: 'Development desks' }).count()).toBe(0);

    const key = t.trust.tokenKey('KG');
    const devDesks = DevDesks.fromKeys(t.deps.trust, new Map([['KG', { privateKey: key.privateKey, kid: key.kid, state: 'KG', use: 'token' as const }]]));
    const dev = await buildApp({ ...t.deps, metrics: createMetrics({ defaultMetrics: false }), devDesks }, { logger: pino({ level: 'silent' }) });
    try {
      await dev.listen({ port: 0, host: '127.0.0.1' });
      const devBase = `http://127.0.0.1:${(dev.server.address() as AddressInfo).port}`;
      origins.push(devBase);
      await page.goto(`${devBase}/`);
      await page.getByRole('heading', { name: 'Development desks' }).waitFor();
      await page.getByRole('button', { name: 'State KG (KG): liaison desk' }).click();
      await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 10_000 });
      await page.getByRole('banner').getByText('desk-kg').waitFor();
      await page.close();
    } finally {
      await dev.close();
    }
  });

  test('English, Russian and Chinese: chosen from the browser, switchable, lang attribute follows', async () => {
    const ru = await newPage({ locale: 'ru-RU' });
    await ru.goto(`${base}/console/`);
    await ru.getByLabel('Токен', { exact: true }).waitFor();
    await ru.getByRole('button', { name: 'Войти' }).waitFor();
    expect(await ru.evaluate('document.documentElement.lang')).toBe('ru');
    await ru.getByLabel('Язык').selectOption('zh');
    await ru.getByLabel('令牌', { exact: true }).waitFor();
    expect(await ru.evaluate('document.documentElement.lang')).toBe('zh-Hans');
    await ru.getByLabel('令牌', { exact: true }).fill(t.token({ sub: 'desk-zh' }));
    await ru.getByRole('button', { name: '登录' }).click();
    await ru.getByRole('status').filter({ hasText: '实时' }).waitFor({ timeout: 10_000 });
    await ru.getByRole('button', { name: '确认' }).first().waitFor();
    await ru.getByLabel('语言').selectOption('en');
    await ru.getByRole('status').filter({ hasText: 'Live' }).waitFor();
    expect(await ru.evaluate('document.documentElement.lang')).toBe('en');
    await ru.close();
  });

  test('no request ever went to another origin', () => {
    expect(requests.length).toBeGreaterThan(5);
    expect(requests.some((u) => u.startsWith('ws://'))).toBe(true);
    const allowed = (u: string) =>
      origins.some((o) => u.startsWith(`${o}/`) || u.startsWith(`${o.replace(/^http/, 'ws')}/`)) || /^(?:blob|data):/.test(u) || u === 'about:blank';
    const foreign = requests.filter((u) => !allowed(u));
    expect(foreign).toEqual([]);
  });

  test('no script error and no Content-Security-Policy violation on any page', () => {
    // Expected: the browser's own log lines for the connections the tests cut on purpose (offline,
    // closes) and for answers the console handles itself (404 of the development desks here).
    const unexpected = consoleErrors.filter((e) => !/Failed to load resource|WebSocket connection to .* failed/.test(e));
    expect(unexpected).toEqual([]);
  });
});
