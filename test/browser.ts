// A headless Chromium for the suites that test pages in a real browser, driven by playwright-core
// (which downloads no browser). The browser is Debian's chromium package; CHROMIUM_PATH names
// another executable. Playwright's launch talks to Chromium over a pipe on fds 3 and 4, which works
// on Node 20, Node 22 and Bun (`bun --bun`), so all three take the same path.
//
// playwright-core's types name DOM types (HTMLElement, Node), and page.evaluate callbacks run in
// the page, so the DOM library comes in here, for the test build only (tsconfig.json has no test/).

/// <reference lib="dom" />

import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** The failure a browser suite reports when there is no Chromium: the browser tests never skip. */
export const BROWSER_MISSING =
  "No Chromium found for the browser tests: install Debian's chromium (apt-get install -y chromium, " +
  'which gives /usr/bin/chromium), or set CHROMIUM_PATH to a Chromium executable.';

export interface BrowserHandle {
  /** A page in a fresh browser context, with a 1280x800 viewport; it goes with close(). */
  newPage(): Promise<Page>;
  /** Closes the browser; it resolves when the Chromium processes have ended and its profile is removed. */
  close(): Promise<void>;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** CHROMIUM_PATH when set (and executable), else /usr/bin/chromium, else `chromium` on PATH; null when none is. */
export function findChromium(): string | null {
  const named = process.env.CHROMIUM_PATH;
  if (named) return executable(named) ? named : null;
  if (executable('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'chromium'))) return join(dir, 'chromium');
  }
  return null;
}

/**
 * Launches a headless Chromium; null only when there is no Chromium to launch. A Chromium that is
 * there but fails to start throws, with its log. --no-sandbox (Chromium's sandbox refuses root)
 * and --disable-dev-shm-usage (containers' /dev/shm is small) are Playwright's defaults too.
 * Playwright gives the browser a temporary profile, removed on close, and kills the browser if
 * the process exits without close().
 */
export async function openBrowser(): Promise<BrowserHandle | null> {
  const executablePath = findChromium();
  if (executablePath === null) return null;
  const browser: Browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: 30_000,
  });
  return {
    newPage: () => browser.newPage({ viewport: { width: 1280, height: 800 } }),
    close: () => browser.close(),
  };
}
