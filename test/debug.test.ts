// The debug mode: canaries catch overflows and underflows, the quarantine catches writes after
// free, neighbours are checked on free, and misuse still gets its usual errors.

import { spawnSync } from 'node:child_process';
import koffi from 'koffi';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DebugHeap, Heap, HeapError } from '../src/index.js';
import { checkPattern, fillPattern } from './helpers.js';

const raw = (address: number, length: number): Uint8Array => new Uint8Array(koffi.view(address, length) as ArrayBuffer);
const corrupted = (e: Error): boolean => e instanceof HeapError && e.code === 'ERR_HEAP_CORRUPTED';

for (const preset of ['fast', 'classic'] as const) {
  const test = suite(`${preset} preset, debug`);
  const make = (): Heap => new Heap({ preset, debug: true });

  test('a debug heap is a DebugHeap over the preset, giving exactly the bytes asked for', () => {
    const heap = make();
    assert.instance(heap, DebugHeap);
    assert.is(heap.preset, preset);
    const p = heap.malloc(100, 'exact');
    assert.is(heap.usableSize(p), 100);
    assert.is(heap.bytes(p).length, 100);
    assert.throws(() => heap.bytes(p, 101), (e: Error) => e instanceof RangeError);
    assert.is(p % 16, 0);
    heap.free(p);
    heap.destroy();
  });

  test('an overflow past the block is caught when it is freed', () => {
    const heap = make();
    const p = heap.malloc(40);
    raw(p, 41)[40] = 1; // one byte too far, as C code might write
    assert.throws(() => heap.free(p), corrupted);
    assert.throws(() => heap.check(), corrupted);
    heap.destroy();
  });

  test('an underflow before the block is caught, and so is a neighbour\'s overflow', () => {
    const heap = make();
    const a = heap.malloc(64);
    const b = heap.malloc(64);
    raw(b - 4, 4).fill(0);
    assert.throws(() => heap.realloc(b, 10), corrupted);
    const c = make();
    const x = c.malloc(32);
    const y = c.malloc(32);
    raw(x, 33)[32] = 9;
    assert.throws(() => c.free(y), corrupted, 'freeing y checks its neighbour x');
    assert.throws(() => heap.free(a), corrupted, 'freeing a checks its neighbour b');
    heap.destroy();
    c.destroy();
  });

  test('a write after free is caught while the block is in quarantine', () => {
    const heap = make();
    const p = heap.malloc(200);
    const stale = heap.bytes(p);
    heap.free(p);
    assert.throws(() => heap.free(p), (e: Error) => e instanceof HeapError && e.code === 'ERR_DOUBLE_FREE');
    stale[50] = 1; // through a view kept past free
    assert.throws(() => heap.check(), corrupted);
    assert.throws(() => heap.trim(), corrupted, 'the quarantine is checked as it drains');
    heap.destroy();
  });

  test('blocks keep their bytes through realloc, which always moves', () => {
    const heap = make();
    const p = heap.malloc(300, 'moving');
    fillPattern(heap, p, 300, 4);
    const q = heap.realloc(p, 1000);
    assert.is.not(q, p);
    assert.is(checkPattern(heap, q, 300, 4), -1);
    const r = heap.realloc(q, 100);
    assert.is(checkPattern(heap, r, 100, 4), -1);
    const small = heap.malloc(8);
    assert.throws(() => heap.free(small + 4), (e: Error) => e instanceof HeapError && e.code === 'ERR_INVALID_POINTER');
    heap.free(small);
    heap.free(r);
    heap.check();
    heap.trim();
    assert.is(heap.stats().inUse, 0);
    heap.destroy();
  });

  test('the leak report counts live blocks only, not quarantined ones', () => {
    const heap = make();
    const kept = heap.malloc(100, 'kept');
    heap.free(heap.malloc(100, 'freed'));
    assert.match(heap.leakReport(), /'kept'\n\n-- Summary --\n1 blocks lost/);
    assert.not.match(heap.leakReport(), /'freed'/);
    heap.free(kept);
    assert.match(heap.leakReport(), /\n0 blocks lost \(0 bytes\)\n$/);
    heap.destroy();
  });

  test.run();
}

const env = suite('ALLOCATOR_DEBUG');

env('ALLOCATOR_DEBUG=1 makes the default heap a debug heap', () => {
  const entry = new URL('../src/index.js', import.meta.url).href;
  const script = `import * as h from ${JSON.stringify(entry)}; h.malloc(1); console.log(h.defaultHeap().constructor.name, h.defaultHeap().debug);`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ALLOCATOR_DEBUG: '1' } });
  assert.is(run.status, 0, run.stderr);
  assert.is(run.stdout.trim(), 'DebugHeap true');
});

env.run();
