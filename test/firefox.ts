// A headless Firefox for the suites that test pages in more than one browser: Debian's firefox-esr
// (FIREFOX_PATH names another), driven over WebDriver BiDi, the W3C protocol Firefox speaks
// itself (Playwright drives only a Firefox of its own build). Just what the viewer's test needs:
// open a page, evaluate an expression in it, press a key.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import WebSocket from 'ws';

/** The failure a Firefox suite reports when there is none: the browser tests never skip. */
export const FIREFOX_MISSING =
  "No Firefox found for the browser tests: install Debian's firefox-esr (apt-get install -y firefox-esr), " +
  'or set FIREFOX_PATH to a Firefox executable.';

export interface FirefoxPage {
  /** Loads `url` and waits for its load event. */
  goto(url: string): Promise<void>;
  /** The value of `expression` in the page (awaited if a promise), as JSON-able data. */
  evaluate<T>(expression: string): Promise<T>;
  /** Presses and releases one key (a character, or a WebDriver key code such as '\uE014' for →). */
  press(key: string): Promise<void>;
  /** Ends Firefox and removes its profile. */
  close(): Promise<void>;
}

function findFirefox(): string | null {
  const candidates = process.env.FIREFOX_PATH !== undefined ? [process.env.FIREFOX_PATH] :
    ['/usr/bin/firefox-esr', '/usr/bin/firefox', ...(process.env.PATH ?? '').split(delimiter).flatMap((d) => [join(d, 'firefox-esr'), join(d, 'firefox')])];
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // The next one.
    }
  }
  return null;
}

/** BiDi's value serialization back to plain data. */
function plain(v: { type: string; value?: unknown }): unknown {
  switch (v.type) {
    case 'array':
      return (v.value as { type: string; value?: unknown }[]).map(plain);
    case 'object':
      return Object.fromEntries((v.value as [string, { type: string; value?: unknown }][]).map(([k, x]) => [k, plain(x)]));
    case 'undefined':
      return undefined;
    case 'null':
      return null;
    default:
      return v.value;
  }
}

/** A page in a new headless Firefox, or null when there is no Firefox. */
export async function openFirefox(): Promise<FirefoxPage | null> {
  const executable = findFirefox();
  if (executable === null) return null;
  const profile = mkdtempSync(join(tmpdir(), 'ffi-heap-firefox-'));
  const child: ChildProcess = spawn(executable, ['--headless', '--no-remote', '--profile', profile, '--remote-debugging-port=0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`Firefox did not start its WebDriver BiDi server: ${text}`)), 60_000);
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        text += chunk;
        const m = /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(text);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => reject(new Error(`Firefox exited (${code}) before it listened: ${text}`)));
    });
    const ws = new WebSocket(`${url}/session`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    let nextId = 0;
    const waiting = new Map<number, (m: { result?: unknown; error?: string; message?: string }) => void>();
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: string; message?: string };
      if (m.id !== undefined) waiting.get(m.id)?.(m);
    });
    const send = <T>(method: string, params: object): Promise<T> => new Promise((resolve, reject) => {
      const id = ++nextId;
      waiting.set(id, (m) => {
        waiting.delete(id);
        if (m.error !== undefined) reject(new Error(`${method}: ${m.error}: ${m.message}`));
        else resolve(m.result as T);
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
    await send('session.new', { capabilities: {} });
    const tree = await send<{ contexts: { context: string }[] }>('browsingContext.getTree', {});
    const context = tree.contexts[0]!.context;
    await send('browsingContext.setViewport', { context, viewport: { width: 1280, height: 800 } });
    return {
      goto: async (to) => void await send('browsingContext.navigate', { context, url: to, wait: 'complete' }),
      evaluate: async <T>(expression: string): Promise<T> => {
        const r = await send<{ type: string; result?: { type: string; value?: unknown }; exceptionDetails?: { text: string } }>(
          'script.evaluate', { expression, target: { context }, awaitPromise: true });
        if (r.type !== 'success') throw new Error(`in Firefox: ${r.exceptionDetails?.text ?? 'an exception'}`);
        return plain(r.result!) as T;
      },
      press: async (key) => void await send('input.performActions', {
        context,
        actions: [{ type: 'key', id: 'keyboard', actions: [{ type: 'keyDown', value: key }, { type: 'keyUp', value: key }] }],
      }),
      close: async () => {
        ws.close();
        await close();
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}
