import { chromium, type Browser, type BrowserContext, type Request } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core for the console's end-to-end tests. The flags keep
 * it from reaching the internet on its own (component updates, sync, background networking), so
 * that "no request to another origin" is about the console, not about the browser.
 */

export const CHROMIUM_PATH = process.env.CORDON_TEST_CHROMIUM ?? '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** Builds the console (esbuild, well under a second) unless dist/console is up to date. */
export async function ensureConsoleBuilt(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ensureBuilt } = require('../../console/build.js') as { ensureBuilt: () => Promise<void> };
  await ensureBuilt();
}

/** Every request any page of the context makes, to check that none leaves the node's origin. */
export function recordRequests(context: BrowserContext, into: string[]): void {
  context.on('request', (r: Request) => into.push(r.url()));
}
