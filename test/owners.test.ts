// autoFree: blocks freed when their JavaScript owner is collected. The bookkeeping is tested here
// directly; the collection itself in a child process with --expose-gc, where gc() can be forced.

import { spawnSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap, HeapError } from '../src/index.js';

const entry = new URL('../src/index.js', import.meta.url).href;

const PRESETS = [['fast', {}], ['classic', { preset: 'classic' }], ['debug', { debug: true }]] as const;

for (const [label, options] of PRESETS) {
  const test = suite(`${label} heap, autoFree bookkeeping`);

  test('a block freed by hand, or by realloc to 0, is no longer tracked', () => {
    const heap = new Heap(options);
    const owner = {};
    const a = heap.malloc(40);
    const b = heap.malloc(40);
    heap.autoFree(a, owner);
    heap.autoFree(b, owner);
    assert.is(heap.autoFreeCount, 2);
    heap.free(a);
    assert.is(heap.autoFreeCount, 1);
    assert.is(heap.realloc(b, 0), 0);
    assert.is(heap.autoFreeCount, 0);
    heap.check();
    heap.destroy();
  });

  test('realloc carries the tracking to the new address, in place or moved', () => {
    const heap = new Heap(options);
    const owner = {};
    let p = heap.malloc(32);
    heap.bytes(p).fill(7);
    heap.autoFree(p, owner);
    const fence = heap.malloc(32); // so that growing p must move it
    for (const size of [16, 24, 5000, 600_000]) {
      p = heap.realloc(p, size);
      assert.is(heap.autoFreeCount, 1, `after realloc to ${size}`);
      heap.check();
    }
    assert.ok(heap.bytes(p, 16).every((b) => b === 7), 'the bytes moved with the block');
    heap.free(p);
    assert.is(heap.autoFreeCount, 0, 'the tracked block was the moved one');
    heap.free(fence);
    heap.destroy();
  });

  test('bad arguments are refused and change nothing', () => {
    const heap = new Heap(options);
    const p = heap.malloc(64);
    assert.throws(() => heap.autoFree(p, 42 as unknown as object), (e: Error) => e instanceof TypeError);
    assert.throws(() => heap.autoFree(p, null as unknown as object), (e: Error) => e instanceof TypeError);
    assert.throws(() => heap.autoFree(0, {}), (e: Error) => e instanceof TypeError);
    assert.throws(() => heap.autoFree(p + 16, {}), (e: Error) => e instanceof HeapError && e.code === 'ERR_INVALID_POINTER');
    const q = heap.malloc(64);
    heap.free(q);
    assert.throws(() => heap.autoFree(q, {}), (e: Error) => e instanceof HeapError);
    assert.is(heap.autoFreeCount, 0);
    heap.autoFree(p, {});
    heap.destroy();
    assert.is(heap.autoFreeCount, 0, 'destroy forgets every tracked block');
  });

  test.run();
}

const CHILD = `
const { Heap } = await import(${JSON.stringify(entry)});
const options = JSON.parse(process.argv[1]);
const heap = new Heap(options);
const keep = {};
const kept = heap.malloc(100);
heap.autoFree(kept, keep);
heap.bytes(kept).fill(1);

// 1000 blocks whose owners are dropped at once.
(() => { for (let i = 0; i < 1000; i++) heap.autoFree(heap.malloc(16 + (i % 200)), { i }); })();

// A block tracked, freed by hand, and its address reused by an untracked block: the dead
// owner's finalizer must not free the new block.
let reused = 0;
(() => {
  const p = heap.malloc(48);
  heap.autoFree(p, { doomed: true });
  heap.free(p);
  reused = heap.malloc(48);
  heap.bytes(reused).fill(9);
})();

// A tracked block moved by realloc: freed at its new address when its owner goes.
(() => {
  const p = heap.malloc(24);
  heap.autoFree(p, { moving: true });
  heap.malloc(24);
  heap.realloc(p, 4000);
})();

// Live blocks as the snapshot shows them (the debug heap's quarantine counts as free there).
const live = () => heap.snapshot().regions.flatMap((r) => r.blocks).filter((b) => !b.free).length;
const before = live();
for (let i = 0; i < 100 && heap.autoFreeCount > 1; i++) {
  globalThis.gc();
  await new Promise((resolve) => setTimeout(resolve, 10));
}
heap.check();
console.log(JSON.stringify({
  before, after: live(), count: heap.autoFreeCount,
  keptIntact: heap.bytes(kept).every((b) => b === 1), reusedIntact: heap.bytes(reused).every((b) => b === 9),
  alive: keep !== null,
}));
`;

const gc = suite('autoFree under the garbage collector');
for (const [label, options] of PRESETS) {
  gc(`${label} heap: blocks go with their owners, and only those`, () => {
    const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, JSON.stringify(options)], { encoding: 'utf8' });
    assert.is(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as Record<string, number | boolean>;
    assert.is(out.count, 1, 'only the block whose owner is alive is still tracked');
    // Live at the end: the kept block, the reused block, the fence after the moving block.
    assert.is(out.after, 3, `used blocks went from ${out.before} to ${out.after}`);
    assert.ok(out.keptIntact && out.reusedIntact, 'the blocks that must stay kept their bytes');
  });
}
gc.run();
