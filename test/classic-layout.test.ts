// The classic preset's layout rules, each checked against the exact print_memory text.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap } from '../src/index.js';
import { expectedMemory } from './helpers.js';

const T = (i: number): string => `Test Allocation: ${i}`;

/** The DESIGN.md example: mallocs 0..5, free 1 and 3, then malloc 10 as '6'. */
function designExample(algorithm: 'first_fit' | 'best_fit' | 'worst_fit'): Heap {
  const heap = new Heap({ preset: 'classic', algorithm });
  const ptrs = [100, 10, 100, 100, 100, 3100].map((size, i) => heap.malloc(size, T(i)));
  heap.free(ptrs[1]!);
  heap.free(ptrs[3]!);
  heap.malloc(10, T(6));
  heap.check();
  return heap;
}

test('first fit takes the first free block that fits: the 144-byte tail, whole', () => {
  const heap = designExample('first_fit');
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [176, 'USED', T(0)], [80, 'FREE', T(1)], [176, 'USED', T(2)], [176, 'FREE', T(3)],
    [176, 'USED', T(4)], [3168, 'USED', T(5)], [144, 'USED', T(6)],
  ]], [[0, 1], [0, 3]]));
  heap.destroy();
});

test('best fit takes the smallest block that fits: the 80-byte hole', () => {
  const heap = designExample('best_fit');
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [176, 'USED', T(0)], [80, 'USED', T(6)], [176, 'USED', T(2)], [176, 'FREE', T(3)],
    [176, 'USED', T(4)], [3168, 'USED', T(5)], [144, 'FREE', ''],
  ]], [[0, 6], [0, 3]]));
  heap.destroy();
});

test('worst fit takes the largest block and splits it, the rest going to the tail of the free list', () => {
  const heap = designExample('worst_fit');
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [176, 'USED', T(0)], [80, 'FREE', T(1)], [176, 'USED', T(2)], [80, 'USED', T(6)], [96, 'FREE', ''],
    [176, 'USED', T(4)], [3168, 'USED', T(5)], [144, 'FREE', ''],
  ]], [[0, 7], [0, 1], [0, 4]]));
  heap.destroy();
});

test('best and worst fit take the first of equal blocks', () => {
  for (const algorithm of ['best_fit', 'worst_fit'] as const) {
    const heap = new Heap({ preset: 'classic', algorithm });
    const p = [100, 100, 100, 100, 3300].map((size, i) => heap.malloc(size, `b${i}`));
    heap.free(p[2]!);
    heap.free(p[0]!); // free list: [b2, b0], both 176 bytes
    const q = heap.malloc(100, 'again');
    assert.is(q, p[2], algorithm);
    heap.destroy();
  }
});

test('an empty heap prints the two headings and NULL', () => {
  const heap = new Heap({ preset: 'classic' });
  assert.is(heap.formatMemory(), '-- Current Memory State --\n\n-- Free List --\nNULL\n');
  heap.destroy();
});

test('a region is one page-rounded mapping: the block goes in front, the free rest after it', () => {
  const heap = new Heap({ preset: 'classic' });
  heap.malloc(100, 'a');
  assert.is(heap.formatMemory(), expectedMemory(heap, [[[176, 'USED', 'a'], [3920, 'FREE', '']]], [[0, 1]]));
  assert.is(heap.stats().mapped, 4096);
  heap.destroy();
});

test('block size is align16(request + 64), never below 80', () => {
  const heap = new Heap({ preset: 'classic' });
  const sizes = [0, 1, 16, 17, 100, 1000];
  const ptrs = sizes.map((n) => heap.malloc(n));
  const blocks = heap.snapshot().regions[0]!.blocks;
  assert.equal(blocks.slice(0, sizes.length).map((b) => b.size), [80, 80, 80, 96, 176, 1072]);
  assert.equal(ptrs.map((p) => heap.usableSize(p)), [16, 16, 16, 32, 112, 1008]);
  heap.destroy();
});

test('a remainder under 80 bytes is not split off: the block is taken whole', () => {
  const heap = new Heap({ preset: 'classic' });
  heap.malloc(3888, 'big'); // a 3952-byte block, leaving 144 bytes free at the end
  heap.malloc(60, 'takes the 144'); // needs 128; the 16-byte rest cannot be a block
  assert.is(heap.formatMemory(), expectedMemory(heap, [[[3952, 'USED', 'big'], [144, 'USED', 'takes the 144']]], []));
  heap.destroy();
});

test('free merges with a free next block; the merged block keeps the left header and name', () => {
  const heap = new Heap({ preset: 'classic' });
  const [a, b] = ['a', 'b', 'c'].map((n) => heap.malloc(100, n));
  heap.free(b!);
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [176, 'USED', 'a'], [176, 'FREE', 'b'], [176, 'USED', 'c'], [3568, 'FREE', ''],
  ]], [[0, 3], [0, 1]]));
  heap.free(a!);
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [352, 'FREE', 'a'], [176, 'USED', 'c'], [3568, 'FREE', ''],
  ]], [[0, 2], [0, 0]]));
  heap.check();
  heap.destroy();
});

test('free merges with a free previous block, which keeps its place in the free list', () => {
  const heap = new Heap({ preset: 'classic' });
  const [a, b] = ['a', 'b', 'c', 'd'].map((n) => heap.malloc(100, n));
  heap.free(a!);
  heap.free(b!);
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [352, 'FREE', 'a'], [176, 'USED', 'c'], [176, 'USED', 'd'], [3392, 'FREE', ''],
  ]], [[0, 3], [0, 0]]));
  heap.check();
  heap.destroy();
});

test('free merges on both sides at once', () => {
  const heap = new Heap({ preset: 'classic' });
  const [a, b, c] = ['a', 'b', 'c', 'd'].map((n) => heap.malloc(100, n));
  heap.free(a!);
  heap.free(c!);
  heap.free(b!);
  assert.is(heap.formatMemory(), expectedMemory(heap, [[
    [528, 'FREE', 'a'], [176, 'USED', 'd'], [3392, 'FREE', ''],
  ]], [[0, 2], [0, 0]]));
  assert.is(heap.stats().freeBlocks, 2);
  heap.check();
  heap.destroy();
});

test('a region that becomes one free block is unmapped', () => {
  const heap = new Heap({ preset: 'classic' });
  const a = heap.malloc(100, 'a');
  const big = heap.malloc(5000, 'big'); // does not fit the first page: a second region
  assert.is(heap.stats().regions, 2);
  assert.is(heap.formatMemory(), expectedMemory(heap, [
    [[176, 'USED', 'a'], [3920, 'FREE', '']],
    [[5072, 'USED', 'big'], [3120, 'FREE', '']],
  ], [[0, 1], [1, 1]]));
  heap.free(big);
  assert.is(heap.formatMemory(), expectedMemory(heap, [[[176, 'USED', 'a'], [3920, 'FREE', '']]], [[0, 1]]));
  assert.equal([heap.stats().mapped, heap.stats().mmapCalls, heap.stats().munmapCalls], [4096, 2, 1]);
  heap.free(a);
  assert.is(heap.formatMemory(), '-- Current Memory State --\n\n-- Free List --\nNULL\n');
  assert.equal([heap.stats().mapped, heap.stats().peakMapped, heap.stats().munmapCalls], [0, 12288, 2]);
  heap.destroy();
});

test('blocks in different regions never merge, even when their regions touch', () => {
  const heap = new Heap({ preset: 'classic' });
  heap.malloc(100, 'a');
  const z = heap.malloc(3920 - 64, 'z'); // fills the first page exactly
  const p = heap.malloc(100, 'p'); // second region
  heap.malloc(100, 'q');
  heap.free(p);
  heap.free(z); // its list neighbour p is free but lives in another region
  assert.is(heap.formatMemory(), expectedMemory(heap, [
    [[176, 'USED', 'a'], [3920, 'FREE', 'z']],
    [[176, 'FREE', 'p'], [176, 'USED', 'q'], [3744, 'FREE', '']],
  ], [[1, 2], [1, 0], [0, 1]]));
  heap.check();
  heap.destroy();
});

test('a large request gets its own page-rounded region', () => {
  const heap = new Heap({ preset: 'classic' });
  heap.malloc(20000, 'large');
  assert.is(heap.formatMemory(), expectedMemory(heap, [[[20064, 'USED', 'large'], [416, 'FREE', '']]], [[0, 1]]));
  assert.is(heap.stats().mapped, 20480);
  heap.destroy();
});

test('names: a freed block keeps its name, a reused block takes the new one (or none)', () => {
  const heap = new Heap({ preset: 'classic' });
  const a = heap.malloc(100, 'first owner');
  heap.malloc(4096 - 176 - 64, 'fills the page'); // so a is the only free block once freed
  heap.free(a);
  assert.is(heap.snapshot().regions[0]!.blocks[0]!.name, 'first owner');
  heap.malloc(100);
  assert.is(heap.snapshot().regions[0]!.blocks[0]!.name, '');
  heap.destroy();
});

test('names: at most 31 bytes of UTF-8 are kept, never half a character', () => {
  const heap = new Heap({ preset: 'classic' });
  heap.malloc(1, 'x'.repeat(40));
  heap.malloc(1, 'é'.repeat(20)); // 2 bytes each: 15 fit in 31
  heap.malloc(1, 'naïve 名前');
  const names = heap.snapshot().regions[0]!.blocks.map((b) => b.name);
  assert.equal(names.slice(0, 3), ['x'.repeat(31), 'é'.repeat(15), 'naïve 名前']);
  heap.destroy();
});

test('regions are listed in the order they were mapped', () => {
  const heap = new Heap({ preset: 'classic' });
  const sizes = [5000, 100, 9000];
  for (const [i, n] of sizes.entries()) heap.malloc(n, `r${i}`);
  // 100 bytes fit in the first region's free tail, so only two regions exist
  const regions = heap.snapshot().regions;
  assert.equal(regions.map((r) => r.blocks[0]!.name), ['r0', 'r2']);
  assert.equal(regions.map((r) => r.size), [8192, 12288]);
  heap.destroy();
});

test.run();
