// The debug heap at the edges: sizes its canaries cannot be added to are out of memory, as in the
// presets, and every call after destroy() is refused with ERR_HEAP_DESTROYED.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap, HeapError } from '../src/index.js';

const INNER = ['fast', 'classic'] as const;
const destroyed = (e: unknown): boolean => e instanceof HeapError && e.code === 'ERR_HEAP_DESTROYED';

for (const preset of INNER) {
  test(`debug heap (${preset}): sizes from 2^53 - 40 to 2^53 - 1 give 0, as the preset does`, () => {
    const heap = new Heap({ preset, debug: true });
    const plain = new Heap({ preset });
    const live = heap.malloc(24);
    for (let size = 2 ** 53 - 40; size <= 2 ** 53 - 1; size++) {
      assert.is(heap.malloc(size), plain.malloc(size), `malloc(${size})`);
      assert.is(heap.malloc(size), 0);
      assert.is(heap.calloc(1, size), 0, `calloc(1, ${size})`);
      assert.is(heap.realloc(live, size), 0, `realloc(p, ${size})`);
    }
    assert.is(heap.usableSize(live), 24, 'the failed reallocs left the block as it was');
    heap.check();
    heap.destroy();
    plain.destroy();
  });

  test(`debug heap (${preset}) with throwOnOutOfMemory: sizes near 2^53 throw ERR_OUT_OF_MEMORY, not a RangeError`, () => {
    const heap = new Heap({ preset, debug: true, throwOnOutOfMemory: true });
    for (const size of [2 ** 53 - 32, 2 ** 53 - 17, 2 ** 53 - 1, 2 ** 32 + 1]) {
      assert.throws(() => heap.malloc(size), (e: unknown) => e instanceof HeapError && e.code === 'ERR_OUT_OF_MEMORY', `malloc(${size})`);
    }
    heap.destroy();
  });

  test(`debug heap (${preset}): after destroy() every call throws ERR_HEAP_DESTROYED, whatever its arguments`, () => {
    const heap = new Heap({ preset, debug: true });
    const p = heap.malloc(64);
    const freed = heap.malloc(64);
    heap.free(freed);
    heap.destroy();
    const calls: [string, () => unknown][] = [
      ['malloc', () => heap.malloc(10)], ['calloc', () => heap.calloc(2, 8)], ['free(p)', () => heap.free(p)],
      ['free(freed)', () => heap.free(freed)], ['free(0)', () => heap.free(0)], ['free("x")', () => heap.free('x' as never)],
      ['bytes', () => heap.bytes(p)], ['realloc', () => heap.realloc(p, 100)], ['realloc(0, n)', () => heap.realloc(0, 100)],
      ['usableSize', () => heap.usableSize(p)], ['stats', () => heap.stats()], ['snapshot', () => heap.snapshot()],
      ['trim', () => heap.trim()], ['check', () => heap.check()], ['formatMemory', () => heap.formatMemory()],
      ['leakReport', () => heap.leakReport()], ['toSVG', () => heap.toSVG()], ['view', () => heap.view(p, Uint8Array)],
      ['cstring', () => heap.cstring('x')], ['readCString', () => heap.readCString(p)], ['alloc', () => heap.alloc('int')],
      ['encode', () => heap.encode(p, 'int', 1)], ['decode', () => heap.decode(p, 'int')],
      ['autoFree', () => heap.autoFree(p, {})], ['scope', () => heap.scope()], ['withScope', () => heap.withScope(() => 1)],
      ['arena', () => heap.arena(64)],
    ];
    for (const [name, call] of calls) assert.throws(call, destroyed, name);
    heap.destroy(); // a second destroy does nothing
  });
}

test.run();
