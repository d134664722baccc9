// `npm run bench:view [-- TRACE...]`: what the viewer costs on big traces (default: every trace in
// ../shared/traces). For each: the time to record the replay of the fast preset, the page's size,
// and, in a headless Chromium (test/browser.ts: Debian's chromium), the time until the page is
// ready and the time of moving the cursor to 9 operations spread over the trace (median, slowest).

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTrace } from '../src/trace/format.js';
import { viewPage } from '../src/viewer/html.js';
import { recordHeap } from '../src/viewer/record.js';
import { BROWSER_MISSING, openBrowser } from '../test/browser.js';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  process.stdout.write('usage: npm run bench:view [-- TRACE...]  (default: ../shared/traces/*)\n');
  process.exit(0);
}
const shared = fileURLToPath(new URL('../../../shared/traces/', import.meta.url));
const files = args.length > 0 ? args : readdirSync(shared).filter((f) => /\.rep(\.gz)?$/.test(f)).map((f) => join(shared, f));
const browser = await openBrowser();
if (browser === null) {
  process.stderr.write(`bench:view: ${BROWSER_MISSING}\n`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'ffi-heap-bench-view-'));
const rows: string[][] = [['trace', 'operations', 'record s', 'page MiB', 'ready s', 'move ms (median)', 'move ms (slowest)']];
try {
  for (const file of files) {
    const trace = readTrace(file);
    const t0 = performance.now();
    const record = recordHeap(trace, { preset: 'fast' });
    const recordSeconds = (performance.now() - t0) / 1000;
    const html = viewPage(trace, [record]);
    const path = join(dir, `${trace.name}.html`);
    writeFileSync(path, html);
    const page = await browser.newPage();
    const t1 = performance.now();
    await page.goto(`file://${path}`);
    await page.waitForFunction(() => (window as unknown as { heapView?: { ready: boolean } }).heapView?.ready === true, null, { timeout: 600_000 });
    const ready = (performance.now() - t1) / 1000;
    const n = trace.kinds.length;
    const moves: number[] = [];
    for (const f of [0.9, 0.1, 0.5, 0.99, 0.3, 0.7, 0.2, 0.6, 0.4]) {
      moves.push(await page.evaluate((op) => {
        const t = performance.now();
        (window as unknown as { heapView: { go(i: number): void } }).heapView.go(op);
        return performance.now() - t;
      }, Math.floor(f * (n - 1))));
    }
    await page.close();
    moves.sort((a, b) => a - b);
    rows.push([trace.name, String(n), recordSeconds.toFixed(1), (Buffer.byteLength(html) / 2 ** 20).toFixed(2), ready.toFixed(1),
      moves[Math.floor(moves.length / 2)]!.toFixed(0), moves[moves.length - 1]!.toFixed(0)]);
    process.stderr.write(`${trace.name} done\n`);
  }
} finally {
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) process.stdout.write(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ') + '\n');
