'use strict';
/*
 * Regenerates docs/console/*.png: starts an embedded node (development trust store) on a free
 * port, publishes demo alerts with the CLI, and photographs the main screens in Chromium.
 * Usage: npm run build && node console/screenshots.js
 */
const { spawn, execFileSync } = require('node:child_process');
const { mkdtempSync, rmSync, mkdirSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');
const net = require('node:net');
const { chromium } = require('playwright-core');

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'docs', 'console');

function freePort() {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-shots-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const node = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'server.js')], {
    env: { ...process.env, CORDON_PORT: String(port), CORDON_DATA_DIR: dir, CORDON_LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
  const publish = (state, region) =>
    execFileSync(
      process.execPath,
      [
        join(ROOT, 'bin', 'cordon.js'),
        'publish',
        '--key',
        join(dir, 'keys', `${state}-alert.jwk.json`),
        '--demo',
        '--url',
        base,
        ...(region ? ['--region', region] : []),
      ],
      { stdio: 'ignore' },
    );
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    for (let i = 0; i < 50; i++) {
      try {
        await fetch(`${base}/healthz`);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    mkdirSync(OUT, { recursive: true });
    const shot = async (locale, fn) => {
      const ctx = await browser.newContext({ locale, viewport: { width: 1280, height: 860 }, timezoneId: 'Asia/Bishkek' });
      const page = await ctx.newPage();
      await fn(page);
      await ctx.close();
    };
    await shot('en-GB', async (page) => {
      await page.goto(base);
      await page.getByRole('heading', { name: 'Development desks' }).waitFor();
      await page.screenshot({ path: join(OUT, 'sign-in.png') });
      await page.getByRole('button', { name: /Kyrgyzstan \(KG\): liaison desk/ }).click();
      await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
      for (let i = 0; i < 6; i++) publish(i % 2 ? 'CN' : 'KG', 'KG-CN-01');
      await page.getByRole('article').nth(5).waitFor();
      await page.getByRole('article').nth(1).getByRole('button', { name: 'Acknowledge' }).click();
      // Every alert proved in the transparency log ("In log" beside "Verified").
      for (let i = 0; i < 6; i++)
        await page
          .getByRole('article')
          .nth(i)
          .getByRole('img', { name: /^In log/ })
          .waitFor({ timeout: 15_000 });
      await page.waitForTimeout(400);
      await page.screenshot({ path: join(OUT, 'watch.png') });
      await page.getByRole('article').first().getByRole('button', { name: 'Details' }).click();
      await page.getByRole('dialog').getByText('Version history').waitFor();
      await page
        .getByRole('dialog')
        .getByRole('img', { name: /^In log/ })
        .waitFor();
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(OUT, 'details.png') });
    });
    await shot('ru-RU', async (page) => {
      await page.goto(base);
      await page
        .getByRole('button', { name: /Kyrgyzstan \(KG\)/ })
        .first()
        .click();
      await page.getByRole('status').filter({ hasText: 'В эфире' }).waitFor();
      await page
        .getByRole('article')
        .first()
        .getByRole('img', { name: /^В журнале/ })
        .waitFor({ timeout: 15_000 });
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(OUT, 'watch-ru.png') });
    });
    await shot('zh-CN', async (page) => {
      await page.goto(base);
      await page.getByRole('heading', { name: '开发用值班台' }).waitFor();
      await page.screenshot({ path: join(OUT, 'sign-in-zh.png') });
    });
    await shot('en-GB', async (page) => {
      await page.goto(base);
      await page.getByRole('button', { name: /Kyrgyzstan \(KG\): operations/ }).click();
      await page.getByLabel('Purpose', { exact: true }).fill('Case 2026-117: Torugart review');
      await page.getByRole('button', { name: 'Show' }).click();
      await page.getByRole('table').waitFor();
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(OUT, 'replay.png') });
      await page.getByRole('navigation').getByRole('button', { name: 'Audit' }).click();
      await page.getByRole('button', { name: 'Show' }).click();
      await page.getByRole('table').waitFor();
      await page.screenshot({ path: join(OUT, 'audit.png') });
    });
  } finally {
    await browser.close();
    node.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.stdout.write(`screenshots written to ${OUT}\n`),
  (err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  },
);
