// toSVG: bounded whatever the heap or the options. Layouts that once hung run in a child process,
// so a hang fails its test instead of stopping the suite.

import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap } from '../src/index.js';
import { MAX_BOXES, toSVG } from '../src/debug/svg.js';
import type { HeapSnapshot } from '../src/heap/types.js';

const svgEntry = new URL('../src/debug/svg.js', import.meta.url).href;
const entry = new URL('../src/index.js', import.meta.url).href;

/** Runs `body` (an async module body) in a child with a time limit; returns what it printed. */
function child(body: string, timeout = 20_000): string {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', body], { encoding: 'utf8', timeout });
  assert.is(run.signal, null, `the child ended by ${run.signal} (a hang or a crash): ${run.stderr}`);
  assert.is(run.status, 0, run.stderr);
  return run.stdout;
}

/** A snapshot of `regions` regions of `blocks` blocks each, all of 4096 bytes, with no heap behind it. */
function fakeSnapshot(regions: number, blocks: number, blockSize = 4096): HeapSnapshot {
  return {
    freeList: [],
    regions: Array.from({ length: regions }, (_, r) => {
      const address = 0x10000000 + r * blocks * blockSize * 2;
      return {
        address,
        size: blocks * blockSize,
        blocks: Array.from({ length: blocks }, (_, b) => ({ address: address + b * blockSize, size: blockSize, free: b % 2 === 1, name: '' })),
      };
    }),
  };
}

function assertFinite(svg: string): void {
  assert.not.match(svg, /NaN|Infinity/, 'no NaN or Infinity in the SVG');
  assert.ok(svg.startsWith('<svg ') && svg.endsWith('</svg>\n'));
}

const rows = (svg: string): number => (svg.match(/<rect class="region"/g) ?? []).length;

test('toSVG of 10,000 regions returns within seconds, draws at most maxRows rows, and says how many it left out', () => {
  const out = child(`
    const { toSVG } = await import(${JSON.stringify(svgEntry)});
    const regions = Array.from({ length: 10000 }, (_, r) => ({ address: 0x10000000 + r * 65536, size: 8192,
      blocks: [{ address: 0x10000000 + r * 65536, size: 8192, free: false, name: 'b' }] }));
    const started = Date.now();
    const svg = toSVG({ regions, freeList: [] });
    console.log(JSON.stringify({ ms: Date.now() - started, rows: (svg.match(/<rect class="region"/g) ?? []).length,
      bad: /NaN|Infinity/.test(svg), heading: svg.match(/class="label">([^<]*regions[^<]*)</)[1] }));
  `);
  const result = JSON.parse(out) as { ms: number; rows: number; bad: boolean; heading: string };
  assert.ok(result.ms < 5000, `${result.ms} ms`);
  assert.is(result.rows, 160, 'the default maxRows');
  assert.is(result.bad, false);
  assert.match(result.heading, /^10000 regions \(the first 160 drawn\)/);
});

test('toSVG of a classic heap of 161 regions returns, with 160 drawn', () => {
  const out = child(`
    const { Heap } = await import(${JSON.stringify(entry)});
    const heap = new Heap({ preset: 'classic' });
    for (let i = 0; i < 161; i++) heap.malloc(5000);
    const regions = heap.snapshot().regions.length;
    const svg = heap.toSVG();
    console.log(JSON.stringify({ regions, rows: (svg.match(/<rect class="region"/g) ?? []).length, bad: /NaN|Infinity/.test(svg),
      groups: (svg.match(/<g class="block/g) ?? []).length }));
    heap.destroy();
  `);
  const result = JSON.parse(out) as { regions: number; rows: number; bad: boolean; groups: number };
  assert.is(result.regions, 161);
  assert.is(result.rows, 160);
  assert.is(result.bad, false);
  assert.ok(result.groups >= 160, `${result.groups} block groups drawn`);
});

test('toSVG refuses a bad maxRows, width, title or options with an error naming toSVG', () => {
  const snapshot = fakeSnapshot(3, 4);
  const cases: [unknown, ErrorConstructor][] = [
    [{ maxRows: 0 }, RangeError], [{ maxRows: -1 }, RangeError], [{ maxRows: 0.5 }, RangeError],
    [{ maxRows: NaN }, RangeError], [{ maxRows: Infinity }, RangeError], [{ maxRows: '10' }, TypeError],
    [{ width: NaN }, RangeError], [{ width: -5 }, RangeError], [{ width: 0 }, RangeError],
    [{ width: Infinity }, RangeError], [{ width: '960' }, TypeError], [{ width: null }, TypeError],
    [{ title: 5 }, TypeError], [null, TypeError], ['wide', TypeError],
  ];
  for (const [options, kind] of cases) {
    let thrown: unknown;
    try {
      toSVG(snapshot, options as never);
    } catch (e) {
      thrown = e;
    }
    assert.instance(thrown, kind, `toSVG(${JSON.stringify(options)}) throws ${kind.name}`);
    assert.match((thrown as Error).message, /^toSVG\(options\): /);
  }
  const heap = new Heap();
  heap.malloc(100);
  assert.throws(() => heap.toSVG({ maxRows: 0 }), (e: unknown) => e instanceof RangeError && /toSVG/.test((e as Error).message));
  heap.destroy();
});

test('toSVG with maxRows 1 or the largest width stays within its bounds and writes only finite numbers', () => {
  const snapshot = fakeSnapshot(5, 20);
  const one = toSVG(snapshot, { maxRows: 1 });
  assertFinite(one);
  assert.is(rows(one), 1);
  assert.match(one, /5 regions \(the first 1 drawn\)/);
  const wide = toSVG(snapshot, { width: 100_000, maxRows: 3 });
  assertFinite(wide);
  assert.is(rows(wide), 3);
  // Every box lies within the row: x + width <= label column + drawing width.
  for (const [, x, w] of wide.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)) {
    assert.ok(Number(x) + Number(w) <= 120 + 100_000 + 0.01, `box at ${x} of ${w}`);
  }
});

test('toSVG draws at most MAX_BOXES boxes, each at least half a pixel wide, and counts the blocks left out', () => {
  const snapshot = fakeSnapshot(100, 2000, 16);
  const svg = toSVG(snapshot, { maxRows: 100 });
  assertFinite(svg);
  // Block boxes start at the label column (x >= 120); the legend's two boxes are left of it.
  const widths = [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)].filter((m) => Number(m[1]) >= 120).map((m) => Number(m[2]));
  assert.ok(widths.length <= MAX_BOXES, `${widths.length} boxes`);
  assert.ok(widths.length > MAX_BOXES / 2);
  assert.ok(widths.every((w) => w >= 0.5), 'tiny blocks still show');
  const left = Number(svg.match(/, (\d+) blocks not drawn/)?.[1]);
  assert.is(left, 200_000 - widths.length);
});

test('toSVG of a snapshot with impossible sizes and addresses terminates with finite numbers', () => {
  const snapshot = {
    freeList: [],
    regions: [
      { address: 0x1000, size: Number.MAX_VALUE, blocks: [{ address: NaN, size: Infinity, free: false, name: 'x' }] },
      { address: -1, size: NaN, blocks: [{ address: 0, size: -4, free: true, name: '' }] },
    ],
  } as unknown as HeapSnapshot;
  assertFinite(toSVG(snapshot));
});

test.run();
