/*
 * bench/console: the desk console in Debian's Chromium (playwright-core) against one node.
 *
 *   assets     the console's files as served (gzip), in all; the budget is 300 KB
 *   load       navigation to the sign-in page, and to "Live" with a token, cold (new context)
 *   10,000     10,000 alerts arrive as fast as the node takes them, then the feed is scrolled from
 *              top to bottom: frame intervals (rAF) during both, and the DOM size (virtualised)
 *   latency    alerts paced at BENCH_RATE/s (default 50) for BENCH_PACED_S (default 10 s): from the
 *              WebSocket message reaching the page to the alert's article drawn on screen, p50/p99
 *
 * The node runs in embedded mode (memory log and bus): what is measured is the browser.
 *   npm run bench:console
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { benchContent, makeFixture } from './lib/fixture';
import { percentile, ROOT, startScript } from './lib/node';

const ALERTS = Number(process.env.BENCH_ALERTS ?? 10_000);
const RATE = Number(process.env.BENCH_RATE ?? 50);
const PACED_S = Number(process.env.BENCH_PACED_S ?? 10);
const CONCURRENCY = 16;
const out = (line = '') => process.stdout.write(line + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Installed before the console's own script: frame intervals, and when each alert's frame arrived. */
const INIT = `
  window.__frames = [];
  (() => { let last = performance.now(); const f = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(f); }; requestAnimationFrame(f); })();
  window.__recv = new Map();
  const Orig = window.WebSocket;
  window.WebSocket = class extends Orig {
    constructor(u, p) {
      super(u, p);
      this.addEventListener('message', (e) => {
        const m = /"id":"(alert--[0-9a-f-]+)"/.exec(e.data);
        if (m) window.__recv.set(m[1], performance.now());
      });
    }
  };
`;

function frameStats(frames: number[]): string {
  const s = [...frames].sort((a, b) => a - b);
  const long = frames.filter((f) => f > 50).length;
  return `${frames.length} frames, interval p50 ${percentile(s, 50).toFixed(1)} ms, p99 ${percentile(s, 99).toFixed(1)} ms, max ${s[s.length - 1]?.toFixed(1)} ms, ${long} over 50 ms`;
}

async function main(): Promise<void> {
  const fx = makeFixture();
  const node = await startScript('dist/src/server.js', {
    CORDON_TRUST_STORE: fx.trustPath,
    CORDON_REGIONS: fx.regionsPath,
    CORDON_DATA_DIR: fx.dir,
    CORDON_LOG_LEVEL: 'warn',
    CORDON_RATE_LIMIT_MAX: '0',
    CORDON_WS_MAX_QUEUE_FRAMES: '100000',
  });
  const browser = await chromium.launch({
    executablePath: process.env.CORDON_TEST_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const token = fx.token({ exp: Math.floor(Date.now() / 1000) + 3600 });
  const publish = async (n: number, paceMs = 0): Promise<void> => {
    const subs = Array.from({ length: n }, () => JSON.stringify(fx.sign(benchContent(fx.region))));
    let next = 0;
    const start = performance.now();
    const worker = async () => {
      while (next < subs.length) {
        const i = next++;
        if (paceMs > 0) {
          const due = start + i * paceMs;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
        }
        const res = await fetch(`${node.url}/v1/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: subs[i] });
        if (res.status !== 201) throw new Error(`publish: ${res.status} ${await res.text()}`);
      }
    };
    await Promise.all(Array.from({ length: paceMs > 0 ? 4 : CONCURRENCY }, worker));
  };

  try {
    out(`bench/console: Chromium ${browser.version()}, node ${process.version}`);
    // Assets
    const dir = join(ROOT, 'dist', 'console');
    let gz = 0;
    let raw = 0;
    for (const f of readdirSync(dir)) {
      if (f.endsWith('.gz')) gz += statSync(join(dir, f)).size;
      else if (!f.endsWith('.br')) raw += statSync(join(dir, f)).size;
    }
    out(`assets: ${(raw / 1024).toFixed(1)} KB, ${(gz / 1024).toFixed(1)} KB gzipped in all (budget 300 KB)`);

    // Load time, cold
    const loads: number[] = [];
    const lives: number[] = [];
    for (let i = 0; i < 5; i++) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      let t0 = performance.now();
      await page.goto(`${node.url}/`);
      await page.getByLabel('Token', { exact: true }).waitFor();
      loads.push(performance.now() - t0);
      await page.getByLabel('Token', { exact: true }).fill(token);
      t0 = performance.now();
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
      lives.push(performance.now() - t0);
      await ctx.close();
    }
    loads.sort((a, b) => a - b);
    lives.sort((a, b) => a - b);
    out(
      `load: sign-in page ready in ${percentile(loads, 50).toFixed(0)} ms median (max ${loads[4].toFixed(0)}), cold; sign-in to Live ${percentile(lives, 50).toFixed(0)} ms median`,
    );

    // 10,000 alerts
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await ctx.addInitScript(`sessionStorage.setItem('cordon.token', ${JSON.stringify(token)}); localStorage.setItem('cordon.bench', '1');`);
    await ctx.addInitScript(INIT);
    const page: Page = await ctx.newPage();
    await page.goto(`${node.url}/console/`);
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
    await page.evaluate('window.__frames = []');
    let t0 = performance.now();
    await publish(ALERTS);
    const pubS = (performance.now() - t0) / 1000;
    await page.waitForFunction(`document.querySelector('[role=feed] article')?.getAttribute('aria-setsize') === '${ALERTS}'`, undefined, {
      timeout: 120_000,
      polling: 100,
    });
    const allS = (performance.now() - t0) / 1000;
    const ingestFrames = await page.evaluate<number[]>('window.__frames');
    out(`10,000: ${ALERTS} alerts published in ${pubS.toFixed(1)} s, all in the feed after ${allS.toFixed(1)} s; while arriving: ${frameStats(ingestFrames)}`);
    await page.evaluate('window.__frames = []');
    const scrolled = await page.evaluate<{ frames: number; articles: number; nodes: number }>(`new Promise((done) => {
      const s = document.querySelector('.feed-scroller');
      let frames = 0;
      const step = () => {
        s.scrollTop += 600;
        frames++;
        if (s.scrollTop + s.clientHeight >= s.scrollHeight - 1) done({ frames, articles: document.querySelectorAll('article').length, nodes: document.getElementsByTagName('*').length });
        else requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    })`);
    const scrollFrames = await page.evaluate<number[]>('window.__frames');
    out(
      `10,000: scrolled top to bottom (600 px a frame, ${scrolled.frames} frames): ${frameStats(scrollFrames)}; ${scrolled.articles} articles and ${scrolled.nodes} elements in the DOM`,
    );
    await page.evaluate(`document.querySelector('.feed-scroller').scrollTop = 0`);
    await sleep(500);

    // On-screen latency while RATE alerts/s arrive (with the 10,000 already in the feed)
    await page.evaluate('window.__frames = []; window.__recv.clear(); window.cordonConsole.drawn.clear()');
    t0 = performance.now();
    await publish(RATE * PACED_S, 1000 / RATE);
    await sleep(1000);
    const lat = await page.evaluate<number[]>(
      `[...window.__recv].map(([id, t]) => { const d = window.cordonConsole.drawn.get(id); return d === undefined ? -1 : d - t; })`,
    );
    const drawn = lat.filter((x) => x >= 0).sort((a, b) => a - b);
    const pacedFrames = await page.evaluate<number[]>('window.__frames');
    out(
      `latency: ${RATE} alerts/s for ${PACED_S} s (${lat.length} received, ${drawn.length} drawn): receipt to on screen p50 ${percentile(drawn, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(drawn, 99).toFixed(1)} ms, max ${drawn[drawn.length - 1]?.toFixed(1)} ms (target p99 < 500 ms); ${frameStats(pacedFrames)}`,
    );
    const heap = await page.evaluate<number>('performance.memory ? performance.memory.usedJSHeapSize : 0');
    if (heap) out(`memory: JS heap ${(heap / 1048576).toFixed(0)} MB with ${ALERTS + lat.length} alerts held`);
    await ctx.close();
  } finally {
    await browser.close();
    await node.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
