// Every path of the classic realloc: stay, stay and trim, grow into the next block, move.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap } from '../src/index.js';
import { checkPattern, expectedMemory, fillPattern } from './helpers.js';

test('realloc that still fits stays in place and takes the new name', () => {
  const heap = new Heap({ preset: 'classic' });
  const a = heap.malloc(100, 'a');
  fillPattern(heap, a, 100, 1);
  assert.is(heap.realloc(a, 110, 'a renamed'), a);
  assert.is(heap.formatMemory(), expectedMemory(heap, [[[176, 'USED', 'a renamed'], [3920, 'FREE', '']]], [[0, 1]]));
  assert.is(checkPattern(heap, a, 100, 1), -1);
  heap.destroy();
});

test('realloc without a name keeps the old one', () => {
  const heap = new Heap({ preset: 'classic' });
  const a = heap.malloc(100, 'kept');
  heap.malloc(100, 'neighbour');
  const moved = heap.realloc(a, 5000);
  assert.is.not(moved, a);
  assert.is(heap.snapshot().regions[1]!.blocks[0]!.name, 'kept');
  heap.destroy();
});

test('shrinking by less than 80 bytes leaves the block as it is', () => {
  const heap = new Heap({ preset: 'classic' });
  const a = heap.malloc(100, 'a');
  assert.is(heap.realloc(a, 40), a); // needs 112: the 64-byte tail cannot be a block
  assert.is(heap.usableSize(a), 112);
  heap.destroy();
});

test('shrinking splits off the tail, frees it and merges it with a free next block', () => {
  const heap = new Heap({ preset: 'classic' });
  const a = heap.malloc(300, 'a');
  fillPattern(heap, a, 100, 2);
  assert.is(heap.realloc(a, 100, 'a'), a);
  assert.is(heap.formatMemory(), expectedMemory(heap, [[[176, 'USED', 'a'], [3920, 'FREE', '']]], [[0, 1]]));
  assert.is(checkPattern(heap, a, 100, 2), -1);
  heap.check();
  heap.destroy();
});

test('shrinking next to a used block leaves the trimmed tail free on its own', () => {
  const heap = new Heap({ preset: 'classic' });
  const a = heap.malloc(300, 'a');
  heap.malloc(100, 'b');
  heap.realloc(a, 100, 'a');
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [176, 'USED', 'a'], [192, 'FREE', ''], [176, 'USED', 'b'], [3552, 'FREE', ''],
  ]], [[0, 3], [0, 1]]));
  assert.is(heap.stats().inUse, 352);
  heap.check();
  heap.destroy();
});

test('growing into a free next block stays in place and splits off what is left', () => {
  const heap = new Heap({ preset: 'classic' });
  const [a, b] = ['a', 'b', 'c'].map((n) => heap.malloc(100, n));
  fillPattern(heap, a!, 112, 3);
  heap.free(b!);
  assert.is(heap.realloc(a!, 200, 'a grown'), a);
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [272, 'USED', 'a grown'], [80, 'FREE', ''], [176, 'USED', 'c'], [3568, 'FREE', ''],
  ]], [[0, 3], [0, 1]]));
  assert.is(checkPattern(heap, a!, 112, 3), -1);
  heap.check();
  heap.destroy();
});

test('growing takes the whole next block when the rest would be under 80 bytes', () => {
  const heap = new Heap({ preset: 'classic' });
  const [a, b] = ['a', 'b', 'c'].map((n) => heap.malloc(100, n));
  heap.free(b!);
  assert.is(heap.realloc(a!, 250), a); // needs 320 of 352: a 32-byte rest stays inside
  assert.is(heap.snapshot().regions[0]!.blocks[0]!.size, 352);
  heap.check();
  heap.destroy();
});

test('growing with no room after the block moves it: malloc, copy, free', () => {
  const heap = new Heap({ preset: 'classic' });
  const a = heap.malloc(100, 'a');
  heap.malloc(100, 'b');
  fillPattern(heap, a, 112, 4);
  const moved = heap.realloc(a, 300, 'a moved');
  assert.is.not(moved, a);
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [176, 'FREE', 'a'], [176, 'USED', 'b'], [368, 'USED', 'a moved'], [3376, 'FREE', ''],
  ]], [[0, 3], [0, 0]]));
  assert.is(checkPattern(heap, moved, 112, 4), -1);
  heap.check();
  heap.destroy();
});

test('a moving realloc keeps every byte up to the old size, across regions', () => {
  // 500 bytes copy through views; 3000, past NATIVE_COPY_MIN, through memcpy.
  for (const size of [500, 3000]) {
    const heap = new Heap({ preset: 'classic' });
    const a = heap.malloc(size, 'a');
    heap.malloc(100, 'pin'); // keeps a from growing in place
    fillPattern(heap, a, size, 5);
    const moved = heap.realloc(a, 100_000);
    assert.is(heap.stats().regions, 2);
    assert.is(checkPattern(heap, moved, size, 5), -1, `${size} bytes`);
    heap.check();
    heap.destroy();
  }
});

test('realloc(0, n) is malloc(n); realloc(p, 0) frees p and returns 0', () => {
  const heap = new Heap({ preset: 'classic' });
  const p = heap.realloc(0, 100, 'from realloc');
  assert.ok(p > 0);
  assert.is(heap.snapshot().regions[0]!.blocks[0]!.name, 'from realloc');
  assert.is(heap.realloc(p, 0), 0);
  assert.is(heap.stats().mapped, 0);
  heap.destroy();
});

test('a realloc that cannot be satisfied returns 0 and leaves the block untouched', () => {
  const heap = new Heap({ preset: 'classic' });
  const a = heap.malloc(100, 'a');
  fillPattern(heap, a, 112, 6);
  const before = heap.formatMemory();
  assert.is(heap.realloc(a, 2 ** 40), 0);
  assert.is(heap.formatMemory(), before);
  assert.is(checkPattern(heap, a, 112, 6), -1);
  heap.destroy();
});

test.run();
