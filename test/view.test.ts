// The viewer (`ffi-heap view`): the record it makes of a replay rebuilds the heap exactly at every
// operation, and the page, driven in a real headless Chromium, draws at any operation the blocks
// heap.snapshot() gives there, describes, hovers, steps, plays and keeps its columns together.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'playwright-core';
import { formatMemory } from '../src/debug/format.js';
import { Heap as PublicHeap } from '../src/index.js';
import type { Heap } from '../src/heap/heap.js';
import type { HeapSnapshot } from '../src/heap/types.js';
import { parseTrace, readTrace, type Trace } from '../src/trace/format.js';
import { viewPage } from '../src/viewer/html.js';
import { EventReader, HeapModel, STATE_USED } from '../src/viewer/model.js';
import { recordHeap, type HeapRecord, type ViewAllocator } from '../src/viewer/record.js';
import { BROWSER_MISSING, openBrowser } from './browser.js';
import { FIREFOX_MISSING, openFirefox } from './firefox.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/${name}.rep`, import.meta.url));
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const ALLOCATORS: ViewAllocator[] = [
  { preset: 'fast' },
  { preset: 'classic', algorithm: 'first_fit' },
  { preset: 'classic', algorithm: 'best_fit' },
  { preset: 'classic', algorithm: 'worst_fit' },
];

/** A snapshot's blocks as the viewer's drawn ones are compared: address, size, used or not; sorted by address. */
function blocksOf(s: HeapSnapshot): string[] {
  return s.regions.flatMap((r) => r.blocks.map((b) => `${b.address.toString(16)} ${b.size} ${b.free ? 'free' : 'used'}`)).sort();
}

function modelBlocks(m: HeapModel): string[] {
  return m.regions.flatMap((r) => r.addrs.map((a, k) => `${a.toString(16)} ${r.sizes[k]} ${r.states[k] === STATE_USED ? 'used' : 'free'}`)).sort();
}

/** Records `trace` for `allocator`, keeping the heap's snapshot after each of `ops`. */
function recordWithSnapshots(trace: Trace, allocator: ViewAllocator, ops: readonly number[]): { record: HeapRecord; snapshots: Map<number, HeapSnapshot> } {
  const snapshots = new Map<number, HeapSnapshot>();
  const want = new Set(ops);
  const record = recordHeap(trace, allocator, { observe: (op: number, heap: Heap) => void (want.has(op) && snapshots.set(op, heap.snapshot())) });
  return { record, snapshots };
}

for (const name of ['mixed', 'realloc', 'coalesce', 'sizes', 'random', 'uniform']) {
  test(`the record's mirror equals the heap after every operation of ${name}, for the fast preset and each classic fit`, () => {
    const trace = readTrace(fixture(name));
    for (const allocator of ALLOCATORS) {
      const record = recordHeap(trace, allocator, { verify: true });
      assert.ok(record.events.length > trace.kinds.length, 'at least one byte an operation');
      assert.is(record.failed, 0);
    }
  });
}

test('read back, the events rebuild every block, the free list and the footprint snapshot() and stats() give at each operation', () => {
  const trace = readTrace(fixture('builder'));
  const ops = [0, 1, 17, 400, 1201, trace.kinds.length - 1];
  for (const allocator of ALLOCATORS) {
    const mapped = new Map<number, number>();
    const snapshots = new Map<number, HeapSnapshot>();
    const record = recordHeap(trace, allocator, {
      observe: (op, heap) => {
        if (!ops.includes(op)) return;
        snapshots.set(op, heap.snapshot());
        mapped.set(op, heap.stats().mapped);
      },
    });
    const reader = new EventReader(record.events);
    const model = new HeapModel();
    for (let i = 0; i <= ops[ops.length - 1]!; i++) {
      reader.applyOp(model);
      if (!ops.includes(i)) continue;
      const snap = snapshots.get(i)!;
      assert.equal(modelBlocks(model), blocksOf(snap), `${record.label}, operation ${i}: blocks`);
      assert.equal(model.freeList, [...snap.freeList], `${record.label}, operation ${i}: free list`);
      assert.is(model.mapped, mapped.get(i), `${record.label}, operation ${i}: footprint`);
    }
    assert.is(reader.pos, record.events.length, 'the last operation ends the record');
  }
});

test('a trace of one allocation records one used block and its address', () => {
  const trace = parseTrace('0\n1\n1\n1\na 0 24\n', 'one.rep');
  const record = recordHeap(trace, { preset: 'classic', algorithm: 'first_fit' });
  const model = new HeapModel();
  new EventReader(record.events).applyOp(model);
  assert.is(model.used, 1);
  assert.is(model.result !== 0, true);
});

test('ffi-heap view: usage errors exit 2 with one line naming the option; the page is written and self-contained', () => {
  const run = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [cli, 'view', ...args], { encoding: 'utf8' });
  const bad = run('--algorithm', 'next_fit', fixture('mixed'));
  assert.is(bad.status, 2);
  assert.match(String(bad.stderr), /--algorithm must be one of first_fit, best_fit, worst_fit, got 'next_fit'/);
  const many = run('--allocator', 'fast', '--allocator', 'classic', '--algorithm', 'first_fit', '--algorithm', 'best_fit', '--algorithm', 'worst_fit', fixture('mixed'));
  assert.is(many.status, 2);
  assert.match(String(many.stderr), /at most three heaps side by side, got 4/);
  assert.is(run().status, 2);
  const dir = mkdtempSync(join(tmpdir(), 'ffi-heap-view-'));
  try {
    const out = join(dir, 'mixed.html');
    const ok = run('--algorithm', 'first_fit', '--algorithm', 'best_fit', '--out', out, fixture('mixed'));
    assert.is(ok.status, 0, String(ok.stderr));
    assert.match(String(ok.stdout), /wrote .*mixed\.html \(\d+ KiB\): 2096 operations, classic, first fit \| classic, best fit/);
    const html = readFileSync(out, 'utf8');
    assert.not.match(html, /<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!127\.0\.0\.1)/, 'nothing is loaded from elsewhere');
    assert.not.match(html, /^import /m, 'the inlined modules import nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ffi-heap view --serve serves the page on 127.0.0.1 and stops on SIGTERM', async () => {
  const child = spawn(process.execPath, [cli, 'view', '--serve', fixture('coalesce')], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        text += chunk;
        const m = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(text);
        if (m !== null) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`view --serve exited (${code}) before serving`)));
    });
    const page = await fetch(url);
    assert.is(page.status, 200);
    assert.match(await page.text(), /<script type="application\/json" id="view-data">/);
    assert.is((await fetch(`${url}elsewhere`)).status, 404);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  assert.is(child.exitCode, 0);
});

interface PageColumn { label: string; at(): number; drawn(): { address: number; size: number; state: string; x: number; y: number; w: number; h: number }[]; description(): string; freeList(): number[]; printMemory(): string | null }
type ViewWindow = { heapView: { ready: boolean; ops: number; peak: number; cursor: number; go(i: number): void; columns: PageColumn[] } };

const drawnBlocks = (page: Page, column: number): Promise<string[]> =>
  page.evaluate((c) => (window as unknown as ViewWindow).heapView.columns[c]!.drawn()
    .map((d) => `${d.address.toString(16)} ${d.size} ${d.state === 'used' ? 'used' : 'free'}`).sort(), column);

/** Opens `html` in a new headless Chromium page, waits for the viewer, runs `body`, and checks the page threw nothing. */
async function inChromium(html: string, body: (page: Page) => Promise<void>): Promise<void> {
  const browser = await openBrowser();
  if (browser === null) return assert.unreachable(BROWSER_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'ffi-heap-view-'));
  try {
    const file = join(dir, 'view.html');
    writeFileSync(file, html);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`file://${file}`);
    await page.waitForFunction(() => (window as unknown as Partial<ViewWindow>).heapView?.ready === true, null, { timeout: 60_000 });
    await body(page);
    assert.equal(errors, [], 'the page threw nothing');
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('in Chromium: at chosen operations each column draws exactly the blocks snapshot() gives; hover, steps, keys and play move every column together', async () => {
  const trace = readTrace(fixture('mixed'));
  const n = trace.kinds.length;
  const ops = [0, 57, 300, 1033, n - 1];
  const heaps: ViewAllocator[] = [{ preset: 'classic', algorithm: 'first_fit' }, { preset: 'classic', algorithm: 'best_fit' }, { preset: 'fast' }];
  const recorded = heaps.map((a) => recordWithSnapshots(trace, a, ops));
  const html = viewPage(trace, recorded.map((r) => r.record));
  await inChromium(html, async (page) => {
    const view = (): Promise<{ cursor: number; at: number[] }> => page.evaluate(() => {
      const v = (window as unknown as ViewWindow).heapView;
      return { cursor: v.cursor, at: v.columns.map((c) => c.at()) };
    });
    assert.equal(await view(), { cursor: -1, at: [-1, -1, -1] }, 'it opens before the first operation');
    for (const op of [...ops].reverse()) {
      await page.evaluate((i) => (window as unknown as ViewWindow).heapView.go(i), op);
      for (let c = 0; c < heaps.length; c++) {
        const snap = recorded[c]!.snapshots.get(op)!;
        assert.equal(await drawnBlocks(page, c), blocksOf(snap), `${recorded[c]!.record.label} at operation ${op}`);
        const freeList = await page.evaluate((k) => (window as unknown as ViewWindow).heapView.columns[k]!.freeList(), c);
        assert.equal(freeList, [...snap.freeList], `${recorded[c]!.record.label}'s free list at operation ${op}`);
        if (heaps[c]!.preset === 'classic') {
          const printed = await page.evaluate((k) => (window as unknown as ViewWindow).heapView.columns[k]!.printMemory(), c);
          assert.is(printed, formatMemory(snap), `print_memory at operation ${op}`);
        }
      }
    }
    // The operation described: op 300 is an allocation; first fit names the block it split or took.
    await page.evaluate(() => (window as unknown as ViewWindow).heapView.go(300));
    const described = await page.evaluate(() => (window as unknown as ViewWindow).heapView.columns.map((c) => c.description()));
    const op300 = `a ${trace.ids[300]} ${trace.sizes[300]}`;
    assert.ok(described.every((d) => d.startsWith(`${op300}: `)), described.join('\n'));
    assert.match(described[0]!, /first fit (splits|takes|places) /);
    assert.match(described[1]!, /best fit (splits|takes|places) /);
    // Hover: the middle of a drawn used block shows its size, state, trace id and addresses.
    const box = await page.evaluate(() => (window as unknown as ViewWindow).heapView.columns[0]!.drawn().find((d) => d.state === 'used' && d.w >= 6)!);
    const canvas = page.locator('.map').first();
    const at = await canvas.boundingBox();
    await page.mouse.move(at!.x + box.x + box.w / 2, at!.y + box.y + box.h / 2);
    const tip = await page.locator('#tooltip').textContent();
    assert.match(tip!, new RegExp(`^used block, ${box.size} bytes, trace id \\d+\\nheader 0x${box.address.toString(16)} \\(\\d+ bytes\\), data 0x[0-9a-f]+$`));
    const id = Number(/trace id (\d+)/.exec(tip!)![1]);
    const lastOfId = Math.max(...Array.from(trace.ids.subarray(0, 301)).map((v, i) => (v === id ? i : -1)));
    assert.ok(lastOfId >= 0 && trace.kinds[lastOfId] !== 2, `trace id ${id} is live at operation 300`);
    // Buttons and keys move the one cursor, and every column with it.
    await page.click('#forward');
    assert.equal(await view(), { cursor: 301, at: [301, 301, 301] });
    await page.click('#back');
    await page.click('#back');
    assert.equal(await view(), { cursor: 299, at: [299, 299, 299] });
    await page.locator('body').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('ArrowRight');
    assert.is((await view()).cursor, 300);
    await page.keyboard.press('End');
    assert.equal(await view(), { cursor: n - 1, at: [n - 1, n - 1, n - 1] });
    await page.keyboard.press('Home');
    assert.is((await view()).cursor, -1);
    await page.keyboard.press('p');
    const peak = await page.evaluate(() => (window as unknown as ViewWindow).heapView.peak);
    assert.equal(await view(), { cursor: peak, at: [peak, peak, peak] });
    // Dragging on the timeline: its middle is the trace's middle.
    const timeline = await page.locator('#timeline').boundingBox();
    await page.mouse.click(timeline!.x + timeline!.width / 2, timeline!.y + timeline!.height / 2);
    const middle = (await view()).cursor;
    assert.ok(Math.abs(middle - n / 2) <= n / 100, `the middle of the timeline is operation ${middle}`);
    // Play runs on from the cursor; pause stops it.
    await page.selectOption('#speed', '10');
    await page.click('#play');
    await page.waitForFunction((from) => (window as unknown as ViewWindow).heapView.cursor >= from + 30, middle);
    await page.click('#play');
    const stopped = (await view()).cursor;
    await page.waitForTimeout(200);
    assert.is((await view()).cursor, stopped, 'paused, the cursor stays');
    // More detail: more rows, so taller maps, of the same blocks.
    const tall = (): Promise<number> => page.evaluate(() => (document.querySelector('.map') as HTMLCanvasElement).clientHeight);
    const before = await tall();
    const blocks = await drawnBlocks(page, 0);
    await page.selectOption('#detail', '10');
    assert.ok(await tall() > before, `a map of ${before} px grows with more rows`);
    assert.equal(await drawnBlocks(page, 0), blocks);
  });
});

test('in Chromium: a program recorded with its names shows them: print_memory as the replayed heap prints it, and on hover', async () => {
  const program = new PublicHeap({ preset: 'classic', record: true });
  const blocks = [100, 10, 100, 100, 100, 3100].map((n, i) => program.malloc(n, `Test Allocation: ${i}`));
  program.free(blocks[1]!);
  program.free(blocks[3]!);
  program.malloc(10, 'Test Allocation: 6');
  program.realloc(blocks[0]!, 120);
  const trace = parseTrace(program.recorded({ names: true }), 'named.rep');
  program.destroy();
  const last = trace.kinds.length - 1;
  for (const allocator of ALLOCATORS) recordHeap(trace, allocator, { verify: true });
  const { record, snapshots } = recordWithSnapshots(trace, { preset: 'classic', algorithm: 'best_fit' }, [last]);
  const snap = snapshots.get(last)!;
  assert.ok(formatMemory(snap).includes("'Test Allocation: 6'"), 'the replayed heap has the names');
  await inChromium(viewPage(trace, [record]), async (page) => {
    await page.evaluate((i) => (window as unknown as ViewWindow).heapView.go(i), last);
    assert.is(await page.evaluate(() => (window as unknown as ViewWindow).heapView.columns[0]!.printMemory()), formatMemory(snap));
    const used = snap.regions[0]!.blocks.find((b) => !b.free && b.name === 'Test Allocation: 4')!;
    const box = await page.evaluate((a) => (window as unknown as ViewWindow).heapView.columns[0]!.drawn().find((d) => d.address === a)!, used.address);
    // Scrolled so the box is in the viewport: the mouse reaches only what is shown.
    const top = (await page.locator('.map').first().boundingBox())!.y;
    await page.evaluate((y) => window.scrollBy(0, y), top + box.y - 200);
    const at = await page.locator('.map').first().boundingBox();
    await page.mouse.move(at!.x + box.x + box.w / 2, at!.y + box.y + box.h / 2);
    const tip = (await page.locator('#tooltip').textContent())!;
    assert.ok(/, trace id 4, named "Test Allocation: 4"\n/.test(tip), `the tooltip says ${JSON.stringify(tip)}`);
  });
});

test('in Firefox: the page opens, draws at an operation the blocks snapshot() gives there, and steps by key', async () => {
  const trace = readTrace(fixture('mixed'));
  const { record, snapshots } = recordWithSnapshots(trace, { preset: 'classic', algorithm: 'best_fit' }, [300, 301]);
  const firefox = await openFirefox();
  if (firefox === null) return assert.unreachable(FIREFOX_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'ffi-heap-view-'));
  try {
    const file = join(dir, 'mixed.html');
    writeFileSync(file, viewPage(trace, [record]));
    await firefox.goto(`file://${file}`);
    let ready = false;
    for (let i = 0; i < 300 && !ready; i++) {
      ready = await firefox.evaluate<boolean>('window.heapView?.ready === true');
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(ready, 'the page is ready within 30 s');
    const drawn = (): Promise<string[]> => firefox.evaluate<string[]>(
      "window.heapView.columns[0].drawn().map((d) => `${d.address.toString(16)} ${d.size} ${d.state === 'used' ? 'used' : 'free'}`).sort()");
    await firefox.evaluate('window.heapView.go(300)');
    assert.equal(await drawn(), blocksOf(snapshots.get(300)!));
    assert.is(await firefox.evaluate<string>('window.heapView.columns[0].printMemory()'), formatMemory(snapshots.get(300)!));
    await firefox.press('\uE014'); // the right arrow
    assert.is(await firefox.evaluate<number>('window.heapView.cursor'), 301);
    assert.equal(await drawn(), blocksOf(snapshots.get(301)!));
  } finally {
    await firefox.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('in Chromium: a heap of hundreds of regions apart is drawn within the canvas height, every block that fits', async () => {
  // Classic regions, one for each 200,000-byte block, kept live: many bands, most one row each.
  const lines = Array.from({ length: 600 }, (_, i) => `a ${i} 200000`);
  const trace = parseTrace(`0\n600\n600\n1\n${lines.join('\n')}\n`, 'regions.rep');
  const { record, snapshots } = recordWithSnapshots(trace, { preset: 'classic', algorithm: 'first_fit' }, [599]);
  await inChromium(viewPage(trace, [record]), async (page) => {
    await page.evaluate(() => (window as unknown as ViewWindow).heapView.go(599));
    const drawn = await drawnBlocks(page, 0);
    const all = blocksOf(snapshots.get(599)!);
    assert.ok(drawn.length > 0 && drawn.every((b) => all.includes(b)), 'every block drawn is the heap\'s');
    const height = await page.evaluate(() => (document.querySelector('.map') as HTMLCanvasElement).height);
    assert.ok(height <= 30_000, `the canvas is ${height} px high`);
    const summary = await page.locator('.summary').textContent();
    if (drawn.length < all.length) assert.match(summary!, /runs of regions past the map's greatest height are not drawn/);
  });
});

test.run();
