// The fast preset's own promises: its block sizes, merging on both sides, the medium blocks'
// caches, in-place realloc both ways, large mappings, growth without thrashing, trimming, and a
// million live blocks freed in any order. Small-object pages have test/pages.test.ts.

import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import koffi from 'koffi';
import { Heap, HeapError } from '../src/index.js';
import { checkPattern, fillPattern, random } from './helpers.js';

const HEADER = 8;
const MiB = 1024 * 1024;
const fast = (): Heap => new Heap({ preset: 'fast' });

/** The blocks of the heap's medium arena (its first region, when it has one), as [size, free] pairs. */
function layout(heap: Heap): Array<[number, boolean]> {
  return heap.snapshot().regions[0]!.blocks.map((b) => [b.size, b.free]);
}

test('small requests get their size class (16-byte steps to 256); larger blocks are align16(request + 8)', () => {
  const heap = fast();
  const usable = [0, 1, 16, 17, 100, 256, 257, 300, 513, 1000, 1024, 1025, 3000].map((n) => {
    const p = heap.malloc(n);
    assert.is(p % 16, 0);
    return heap.usableSize(p);
  });
  assert.equal(usable, [16, 16, 16, 32, 112, 256, 264, 312, 520, 1000, 1032, 1032, 3000]);
  heap.destroy();
});

test('free merges with both neighbours into one block', () => {
  const heap = fast();
  const [a, b, c] = [150_000, 150_000, 150_000, 150_000].map((n) => heap.malloc(n));
  // The wide cache, full: the frees below go to the lists.
  const held = Array.from({ length: 4 }, () => [heap.malloc(8000), heap.malloc(300, 'pin')] as const);
  for (const [p] of held) heap.free(p);
  heap.free(a!);
  heap.free(c!);
  assert.equal(layout(heap).slice(0, 4), [[150_016, true], [150_016, false], [150_016, true], [150_016, false]]);
  heap.free(b!);
  assert.equal(layout(heap).slice(0, 2), [[3 * 150_016, true], [150_016, false]]);
  assert.is(heap.malloc(200_000), a, 'the merged block serves a request larger than any one of them');
  heap.check();
  heap.destroy();
});

test('a request that would carve the top past the peak merges the caches first and takes the merged room', () => {
  const heap = fast();
  const cached = Array.from({ length: 20 }, () => heap.malloc(1000));
  heap.malloc(1000, 'pin'); // keeps the cached blocks from the free top
  for (const p of cached) heap.free(p); // 20 cached 1008-byte blocks, side by side, unmerged
  const top = heap.snapshot().regions[0]!.blocks.at(-1)!;
  assert.ok(top.free && top.size >= 3008, `the free top (${top.size} bytes) has room`);
  const { peakMapped, mmapCalls } = heap.stats();
  const big = heap.malloc(3000); // the free top has room, but carving it would pass the peak
  assert.is(big, cached[0], 'served from the merged cached blocks');
  assert.equal([heap.stats().peakMapped, heap.stats().mmapCalls], [peakMapped, mmapCalls]);
  heap.check();
  heap.destroy();
});

test('a request the free top would serve only by passing the peak takes a larger free block below it', () => {
  const heap = fast();
  const a = heap.malloc(150_000); // freed, it is held whole, then merged back by a request of another size
  heap.malloc(1000, 'pin'); // made in the rest of the arena's last page: the free top is what is left of it
  heap.free(a);
  const top = heap.snapshot().regions[0]!.blocks.at(-1)!;
  assert.ok(top.free && top.size >= 320 && top.size < 4096, `the free top (${top.size} bytes) is a better fit than a's block`);
  const { peakMapped } = heap.stats();
  assert.is(heap.malloc(300), a, 'the block below the touched top serves it');
  assert.is(heap.stats().peakMapped, peakMapped);
  heap.check();
  heap.destroy();
});

test('a request the free top would serve only by passing the peak takes a listed block below it before any cache moves', () => {
  const heap = fast();
  const cached = Array.from({ length: 5 }, () => heap.malloc(1000));
  heap.malloc(1000, 'pin');
  const a = heap.malloc(150_000); // freed, it is held whole, then merged back by a request of another size
  heap.malloc(1000, 'pin'); // the free top is what is left of the arena's last page
  heap.free(a);
  for (const p of cached) heap.free(p); // five cached blocks side by side: flushed, they would merge
  const { peakMapped } = heap.stats();
  assert.is(heap.malloc(300), a, 'the listed block below the touched top serves it');
  assert.is(heap.stats().peakMapped, peakMapped);
  assert.is(heap.malloc(1000), cached.at(-1), 'the caches still hold their blocks');
  heap.check();
  heap.destroy();
});

test('trim() gives back the whole pages inside a free block below blocks in use, and the block serves again', () => {
  for (const options of [{ preset: 'fast' as const }, { shared: true }]) {
    trimsHole(new Heap(options));
  }
});

function trimsHole(heap: Heap): void {
  const a = heap.malloc(100_000);
  heap.malloc(1000); // keeps a's block off the top
  heap.trim();
  const before = heap.stats().mapped;
  heap.bytes(a, 100_000).fill(7);
  heap.free(a);
  heap.trim();
  const given = before - heap.stats().mapped;
  assert.ok(given >= 90 * 1024 && given <= 100_000, `trim() gave back ${given} bytes of the 100,000-byte hole`);
  heap.check();
  const b = heap.malloc(100_000);
  assert.is(b, a, 'the hole serves the next request of its size');
  heap.bytes(b, 100_000).fill(9);
  assert.is(heap.stats().mapped, before, 'its pages count as held again');
  heap.check();
  heap.destroy();
}

test('a request the free top block fits is served by it, though its class lists more blocks ahead of it than are looked at', () => {
  for (const options of [{ preset: 'fast' as const }, { shared: true }]) {
    const heap = new Heap(options);
    const small = [];
    for (let i = 0; i < 40; i++) {
      small.push(heap.malloc(1016)); // 40 blocks of 1024 bytes, kept apart
      heap.malloc(300);
    }
    heap.malloc(2520); // leaves a free top block of 1040 bytes: the class of the 1024-byte blocks
    for (const p of small) heap.free(p); // all of them on the class's list (or cached, then merged), ahead of the top
    const top = heap.snapshot().regions[0]!.size;
    const p = heap.malloc(1032); // a 1040-byte block
    heap.bytes(p, 1032).fill(1);
    assert.is(heap.snapshot().regions[0]!.size, top, `${JSON.stringify(options)}: the arena did not grow`);
    heap.check();
    heap.destroy();
  }
});

test('a block whose free merges with a free block before it and the free top past the trim threshold is not held: the top goes back', () => {
  const heap = fast();
  const KiB = 1024;
  const junk = [];
  for (let i = 0; i < 4; i++) {
    junk.push(heap.malloc(3000));
    heap.malloc(300, 'pin');
  }
  const [x, y, z] = [heap.malloc(200 * KiB), heap.malloc(200 * KiB), heap.malloc(200 * KiB)];
  for (const p of [x!, y!, z!]) heap.bytes(p).fill(1);
  for (const p of junk) heap.free(p); // the wide cache, full
  heap.free(x!);
  heap.free(y!); // listed: 400 KiB free just below z
  heap.malloc(3000); // a slot of the wide cache free again
  const held = heap.stats().mapped;
  heap.free(z!); // with the block before it and the free top: past the threshold
  assert.ok(heap.stats().mapped < held - 400 * KiB, `${heap.stats().mapped} of ${held} bytes still held`);
  heap.check();
  heap.destroy();
});

test('stats().peakMapped is never below stats().mapped, also when blocks are made again over pages given back', () => {
  const heap = fast();
  const atPeak = (what: string): void => {
    const s = heap.stats();
    assert.ok(s.mapped <= s.peakMapped, `${what}: mapped ${s.mapped}, peak ${s.peakMapped}`);
  };
  for (let turn = 0; turn < 3; turn++) {
    const medium = Array.from({ length: 200 }, (_, i) => heap.malloc(1000 + (i % 7) * 300));
    for (const p of medium) heap.bytes(p).fill(9);
    atPeak(`medium blocks, turn ${turn}`);
    for (const p of medium) heap.free(p);
    const small = Array.from({ length: 20_000 }, (_, i) => heap.malloc(16 + (i % 15) * 16));
    atPeak(`small blocks, turn ${turn}`);
    for (const p of small) heap.free(p);
    const again = Array.from({ length: 50 }, () => heap.malloc(5000));
    for (const p of again) heap.bytes(p).fill(1);
    atPeak(`medium blocks again, turn ${turn}`);
    for (const p of again) heap.free(p);
  }
  heap.check();
  heap.destroy();
});

test('a freed block of the arena of a MiB is kept whole for the next request of its size, unless its free would give memory back', () => {
  const heap = fast();
  const MiB = 1024 * 1024;
  heap.free(heap.malloc(MiB)); // a mapping of its own; its free raises the large-block threshold past it
  const a = heap.malloc(MiB); // now a block of the arena
  heap.malloc(1000, 'pin'); // so that a does not end at the free top
  heap.free(a);
  assert.ok(layout(heap).some(([size, free]) => free && size === MiB + 16), 'held whole, shown as free');
  const { mmapCalls, munmapCalls } = heap.stats();
  assert.is(heap.malloc(MiB), a, 'the same size takes it back');
  assert.equal([heap.stats().mmapCalls, heap.stats().munmapCalls], [mmapCalls, munmapCalls], 'no system call');
  heap.check();
  // A block at the top whose free passes the trim threshold goes to the lists, and the top back to the kernel.
  const b = heap.malloc(200 * 1024);
  const grown = heap.realloc(b, 12 * MiB); // grown in place at the top, past the threshold
  assert.is(grown, b);
  heap.bytes(b, 12 * MiB).fill(1);
  const held = heap.stats().mapped;
  heap.free(b);
  assert.ok(heap.stats().mapped < held - 8 * MiB, `${heap.stats().mapped} of ${held} bytes still held`);
  assert.not.ok(layout(heap).some(([size, free]) => free && size >= 12 * MiB), 'not held in the cache');
  heap.check();
  heap.destroy();
});

test('a realloc that moves a block to another mapping keeps its bytes: a slot to the arena, the arena to a mapping of its own and back', () => {
  const heap = fast();
  const MiB = 1024 * 1024;
  let p = heap.malloc(200); // a slot of a small page
  fillPattern(heap, p, 200, 1);
  p = heap.realloc(p, 1000); // to the arena: 200 bytes through views
  assert.is(checkPattern(heap, p, 200, 1), -1, 'slot to arena');
  fillPattern(heap, p, 1000, 2);
  heap.malloc(300, 'pin'); // keeps p from growing in place
  p = heap.realloc(p, 3000); // within the arena: copyWithin
  assert.is(checkPattern(heap, p, 1000, 2), -1, 'within the arena');
  fillPattern(heap, p, 3000, 3);
  heap.malloc(5000, 'pin'); // too large for the hole p left: after p, which is then not the last block
  p = heap.realloc(p, MiB); // to a mapping of its own: 3000 bytes through memcpy
  const own = (ptr: number): boolean => heap.snapshot().regions.some((r) => r.address === ptr && r.blocks.length === 1);
  assert.ok(own(p), 'a mapping of its own');
  assert.is(checkPattern(heap, p, 3000, 3), -1, 'arena to mapping');
  fillPattern(heap, p, MiB, 4);
  const q = heap.malloc(100_000); // a block of the arena
  fillPattern(heap, q, 100_000, 5);
  heap.malloc(5000, 'pin');
  const r = heap.realloc(q, 2 * MiB); // to a mapping of its own: 100,000 bytes through memcpy
  assert.ok(own(r), 'a mapping of its own');
  assert.is(checkPattern(heap, r, 100_000, 5), -1, 'a larger copy');
  assert.is(checkPattern(heap, p, MiB, 4), -1, 'the other block untouched');
  const back = heap.realloc(p, 5000); // shrunk far below its mapping: back to the arena, through memcpy
  assert.not.ok(own(back), 'a block of the arena');
  assert.is(checkPattern(heap, back, 5000, 4), -1, 'mapping to arena');
  heap.check();
  heap.destroy();
});

test('before the arena grows, a block of the request\'s own size class that fits serves it, though the first of the class does not', () => {
  const heap = fast();
  const x = heap.malloc(4190); // a 4208-byte block
  heap.malloc(1000, 'pin');
  const y = heap.malloc(4100); // a 4112-byte block, of the same class (4096 to 4223 bytes)
  heap.malloc(1000, 'pin');
  heap.free(x);
  heap.free(y); // y heads the class's list
  const { mmapCalls } = heap.stats();
  const top = heap.snapshot().regions[0]!.size;
  assert.is(heap.malloc(4130), x, 'x, the second of the class, serves a 4144-byte block');
  assert.is(heap.snapshot().regions[0]!.size, top, 'the arena did not grow');
  assert.is(heap.stats().mmapCalls, mmapCalls);
  heap.check();
  heap.destroy();
});

test('a freed medium block of up to 2 KiB is cached and handed back to the next request of its size', () => {
  const heap = fast();
  const a = heap.malloc(1500);
  const b = heap.malloc(1500);
  heap.free(a);
  assert.is(heap.stats().freeBlocks, 2, 'the cached block and the free rest of the heap');
  assert.equal(layout(heap).slice(0, 2), [[1520, true], [1520, false]], 'a cached block shows as free, unmerged');
  assert.is(heap.malloc(1500), a);
  heap.free(a);
  heap.free(b);
  assert.equal([heap.malloc(1500), heap.malloc(1500)], [b, a], 'last in, first out');
  heap.check();
  heap.destroy();
});

test('a freed block of 2 KiB to 32 MiB is kept whole for a request of its size, the four freed last; a request that would touch new memory merges them back first', () => {
  const heap = fast();
  const a = heap.malloc(5000); // a 5008-byte block
  const pin = heap.malloc(300, 'pin'); // a block of the arena between a and b
  const b = heap.malloc(5000);
  heap.free(a);
  assert.equal(layout(heap)[0], [5008, true], 'held whole, shown as free');
  assert.is(heap.malloc(5000), a, 'the same size takes it back');
  heap.free(a);
  // The wide cache cannot serve 3000 bytes, and the lists could only from the untouched top: the
  // held block merges back and is split.
  const c = heap.malloc(3000);
  assert.is(c, a);
  assert.equal(layout(heap).slice(0, 2), [[3008, false], [2000, true]]);
  heap.free(c);
  heap.free(b);
  heap.free(pin);
  heap.check();
  // At most four are held: a fifth freed block sends the oldest to the lists.
  const blocks = Array.from({ length: 5 }, () => [heap.malloc(8000), heap.malloc(300, 'pin')] as const);
  for (const [p] of blocks) heap.free(p);
  const free8k = () => heap.snapshot().regions[0]!.blocks.filter((x) => x.free && x.size === 8016).length;
  assert.is(free8k(), 5, 'five free blocks of that size: four held, one on the lists');
  // The snapshot's free list ends with the wide cache's blocks (their headers), oldest first.
  assert.equal(heap.snapshot().freeList.slice(-4), blocks.slice(1).map(([p]) => p - HEADER), 'the four freed last are held');
  assert.is(heap.malloc(8000), blocks[4]![0], 'the one freed last serves first');
  // A request the held blocks do not serve, that a listed block below the touched top does: they
  // stay held.
  const d = heap.malloc(7000);
  assert.is(d, blocks[0]![0], 'served by the listed block');
  assert.is(heap.malloc(8000), blocks[3]![0], 'and the held ones still serve their size');
  heap.check();
  heap.destroy();
});

test('a freed block past 64 KiB is held only until a request it does not serve; one of at most 64 KiB stays held', () => {
  for (const [size, kept] of [[60_000, true], [100_000, false]] as const) {
    const heap = fast();
    const a = heap.malloc(5000);
    heap.malloc(300, 'pin');
    const big = heap.malloc(size);
    const x = heap.malloc(5000); // big's neighbour, to be free on the lists
    heap.malloc(300, 'pin');
    heap.free(x);
    heap.free(a);
    // The held blocks merge back (only the untouched top could serve otherwise); a is split.
    assert.is(heap.malloc(3000), a, 'a 2000-byte block on the lists, below the touched top');
    heap.free(big);
    assert.is(heap.malloc(1500), a + 3008, 'a request the listed 2000-byte block serves');
    const block = size + HEADER + 8; // align16(size + 8)
    const merged = layout(heap).some(([n, free]) => free && n === block + 5008);
    assert.is(merged, !kept, kept ? `${size} bytes: still held whole` : `${size} bytes: merged with its free neighbour`);
    assert.is(layout(heap).some(([n, free]) => free && n === block), kept);
    heap.check();
    heap.destroy();
  }
});

test('a block in the wide cache whose header was overwritten is reported, not handed out', () => {
  const heap = fast();
  const a = heap.malloc(5000);
  heap.malloc(300, 'pin');
  heap.free(a);
  new Uint32Array(koffi.view(a - 4, 4) as ArrayBuffer)[0] = 12345; // a write after free over its header
  assert.throws(() => heap.malloc(5000), (e: unknown) => e instanceof HeapError && e.code === 'ERR_HEAP_CORRUPTED');
  assert.throws(() => heap.check(), (e: unknown) => e instanceof HeapError && e.code === 'ERR_HEAP_CORRUPTED');
  heap.destroy();
});

test('the caches are flushed and merged before the heap grows', () => {
  const heap = fast();
  const cached = Array.from({ length: 20 }, () => heap.malloc(1100));
  const pin = heap.malloc(1100, 'pin');
  const rest = layout(heap).at(-1)![0]; // the free block at the top
  for (const p of cached) heap.free(p); // 20 cached 1120-byte blocks, side by side, unmerged
  const { mmapCalls, mapped } = heap.stats();
  // Too large for the free top and any cached block, small enough for the 22400 bytes the flush merges.
  const request = Math.max(1200, rest);
  assert.ok(request + HEADER <= 22_400);
  const big = heap.malloc(request);
  assert.is(big, cached[0]);
  assert.equal([heap.stats().mmapCalls, heap.stats().mapped], [mmapCalls, mapped]);
  heap.free(pin);
  heap.check();
  heap.destroy();
});

test('realloc grows in place into a free neighbour and shrinks in place, freeing the tail', () => {
  const heap = fast();
  const a = heap.malloc(3000);
  const b = heap.malloc(3000); // freed, b is held whole, then merged back by the realloc that grows a
  heap.malloc(3000, 'pin');
  fillPattern(heap, a, 3000, 1);
  heap.free(b);
  assert.is(heap.realloc(a, 5900), a, 'grew into the freed neighbour');
  assert.is(checkPattern(heap, a, 3000, 1), -1);
  assert.equal(layout(heap).slice(0, 2), [[5920, false], [96, true]]);
  assert.is(heap.realloc(a, 1000), a, 'shrank in place');
  assert.equal(layout(heap).slice(0, 2), [[1008, false], [5008, true]], 'the tail merged with the free block after it');
  assert.is(checkPattern(heap, a, 1000, 1), -1);
  heap.check();
  heap.destroy();
});

test('realloc of the last block grows the heap in place', () => {
  const heap = fast();
  const a = heap.malloc(1100);
  fillPattern(heap, a, 1100, 2);
  const before = heap.stats().mmapCalls;
  assert.is(heap.realloc(a, 200_000), a);
  assert.ok(heap.stats().mmapCalls > before, 'more memory was committed');
  assert.is(checkPattern(heap, a, 1100, 2), -1);
  heap.check();
  heap.destroy();
});

test('a buffer grown step by step, with small blocks made between its steps, grows in place past the large-block threshold', () => {
  const heap = fast();
  const first = heap.malloc(300);
  fillPattern(heap, first, 300, 3);
  const small: number[] = [];
  let size = 300;
  for (; size < 4 * MiB; size = Math.ceil(size * 1.3)) {
    assert.is(heap.realloc(first, size), first, `grown to ${size} bytes in place`);
    for (let k = 0; k < 3; k++) small.push(heap.malloc(16 + ((size + 40 * k) % 200)));
  }
  assert.is(checkPattern(heap, first, 300, 3), -1);
  const s = heap.stats();
  assert.ok(s.inUse / s.mapped >= 0.85, `${s.inUse} bytes in use, ${s.mapped} held`);
  heap.check();
  // Not at the top, the buffer moves past the threshold to a mapping of its own.
  const other = heap.malloc(300);
  heap.malloc(300);
  const moved = heap.realloc(other, 1 * MiB);
  assert.ok(heap.snapshot().regions.some((r) => r.address === moved), 'a mapping of its own');
  heap.destroy();
});

/** Bytes the kernel holds for [from, to) of this process, from /proc/self/smaps. */
function resident(from: number, to: number): number {
  let rss = 0;
  let inside = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) inside = parseInt(range[1]!, 16) >= from && parseInt(range[2]!, 16) <= to;
    else if (inside && line.startsWith('Rss:')) rss += parseInt(line.slice(4), 10) * 1024;
  }
  return rss;
}

test('stats().mapped counts the arena memory blocks were handed out from, not the rest of a growth step, and never less than the kernel holds', () => {
  const heap = fast();
  const blocks: number[] = [];
  // Medium blocks, each written whole, until the heap has just committed a growth step.
  for (let calls = heap.stats().mmapCalls; blocks.length < 40 || heap.stats().mmapCalls === calls;) {
    if (blocks.length >= 40) calls = heap.stats().mmapCalls;
    const p = heap.malloc(3000);
    heap.bytes(p).fill(7);
    blocks.push(p);
  }
  // The step was committed ahead of the blocks: the next requests extend them with no mmap call.
  const calls = heap.stats().mmapCalls;
  const before = heap.snapshot().regions[0]!.size;
  for (let i = 0; i < 2; i++) {
    const p = heap.malloc(3000);
    heap.bytes(p).fill(7);
    blocks.push(p);
  }
  const arena = heap.snapshot().regions[0]!;
  assert.is(heap.stats().mmapCalls, calls, 'no mmap call');
  assert.ok(arena.size > before, `the blocks reach further (${before} to ${arena.size} bytes)`);
  const s = heap.stats();
  assert.ok(s.mapped <= arena.size, `${s.mapped} counted, the blocks spanning ${arena.size}`);
  // The whole reservation, so the memory committed past the blocks is in the sum.
  assert.ok(s.mapped >= resident(arena.address, arena.address + 2 ** 30), 'never less than the kernel holds');
  assert.ok(s.mapped - s.inUse <= 2 * 4096 + HEADER, 'at most the page blocks reached into and the last one');
  for (const p of blocks) heap.free(p);
  heap.check();
  heap.destroy();
});

test('before the arena grows, the whole pages inside its free blocks go back to the kernel, and come back when a block is made there', () => {
  const heap = fast();
  const KiB = 1024;
  const a = heap.malloc(200 * KiB);
  heap.bytes(a).fill(1);
  const keep = heap.malloc(1000); // a used block after it, so that a's block is not the last
  heap.bytes(keep).fill(2);
  heap.free(a); // a free block of 200 KiB inside the arena
  const held = heap.stats().mapped;
  const b = heap.malloc(250 * KiB); // fits no free block: the arena grows, and a's pages go back first
  heap.bytes(b).fill(3);
  const arena = heap.snapshot().regions[0]!;
  const s = heap.stats();
  assert.ok(s.mapped - s.inUse < 16 * KiB, `${s.mapped} held for ${s.inUse} in use`);
  assert.ok(s.mapped < held + 250 * KiB - 150 * KiB, 'the free block\'s pages are no longer counted');
  assert.ok(s.mapped >= resident(arena.address, arena.address + arena.size), 'never less than the kernel holds');
  heap.check();
  const c = heap.malloc(150 * KiB); // made in the free block: its pages are held again
  assert.is(c, a);
  heap.bytes(c).fill(4);
  assert.ok(heap.stats().mapped >= s.mapped + 140 * KiB);
  assert.ok(heap.bytes(keep).every((v) => v === 2) && heap.bytes(b).every((v) => v === 3));
  heap.check();
  heap.destroy();
});

test('a large request gets a page-aligned mapping of its own, unmapped on free', () => {
  const heap = fast();
  const p = heap.malloc(MiB, 'large');
  let s = heap.stats();
  assert.equal([s.mmapCalls, s.regions, s.mapped], [1, 1, MiB]);
  assert.is(p % 4096, 0);
  assert.is(heap.snapshot().regions[0]!.address, p);
  heap.bytes(p).fill(3);
  heap.free(p);
  s = heap.stats();
  assert.equal([s.munmapCalls, s.regions, s.mapped], [1, 0, 0]);
  // Having seen a 1 MiB buffer freed, the heap now serves that size itself (glibc does the same).
  const q = heap.malloc(MiB);
  assert.is(heap.snapshot().regions.length, 1);
  assert.ok(heap.snapshot().regions[0]!.address < q, 'q is inside the arena, after its start');
  heap.free(q);
  heap.check();
  heap.destroy();
});

test('realloc of a large block resizes its mapping in the kernel, keeping its bytes', () => {
  const heap = fast();
  const p = heap.malloc(MiB);
  fillPattern(heap, p, MiB, 9);
  const before = heap.stats();
  const q = heap.realloc(p, 8 * MiB);
  const after = heap.stats();
  assert.is(checkPattern(heap, q, MiB, 9), -1);
  assert.equal([after.mapped, after.mmapCalls - before.mmapCalls, after.munmapCalls - before.munmapCalls], [8 * MiB, 1, 0]);
  assert.is(after.peakMapped, 8 * MiB, 'never two mappings at once');
  const r = heap.realloc(q, 3 * MiB);
  assert.is(checkPattern(heap, r, MiB, 9), -1);
  assert.is(heap.stats().mapped, 3 * MiB);
  heap.free(r);
  assert.is(heap.stats().mapped, 0);
  heap.check();
  heap.destroy();
});

test('a large block C writes before JavaScript reads it: bytes() shows what C wrote, before and after a remap', () => {
  const memset = koffi.load('libc.so.6').func('intptr_t memset(intptr_t s, int c, size_t n)');
  const heap = fast();
  const p = heap.malloc(MiB);
  memset(p + MiB - 100, 0x5a, 100);
  const tail = heap.bytes(p).subarray(MiB - 101);
  assert.equal([tail[0], tail.every((b, i) => i === 0 || b === 0x5a)], [0, true]);
  const r = heap.malloc(MiB);
  memset(r, 7, MiB);
  const q = heap.realloc(r, 4 * MiB); // the kernel moves the mapping: no copy, and no view was made of it
  const bytes = heap.bytes(q);
  assert.is(bytes.length, 4 * MiB);
  assert.ok(bytes.subarray(0, MiB).every((b) => b === 7), 'the bytes C wrote moved with the mapping');
  assert.ok(bytes.subarray(MiB).every((b) => b === 0), 'the new pages are zero');
  heap.free(p);
  heap.free(q);
  assert.is(heap.stats().mapped, 0);
  heap.destroy();
});

test('a malloc/free loop at the growth boundary does not thrash mmap', () => {
  const heap = fast();
  let last = 0;
  let calls = heap.stats().mmapCalls;
  // Allocate until the heap has just grown: the last block sits at the edge of committed memory.
  for (let i = 0; i < 100_000; i++) {
    last = heap.malloc(3000);
    if (heap.stats().mmapCalls > calls && i > 10) break;
    calls = heap.stats().mmapCalls;
  }
  const cycle = (): void => {
    heap.free(last);
    last = heap.malloc(3000);
    heap.free(heap.malloc(100_000));
  };
  cycle(); // the first 100 kB may need the heap to grow once
  const before = heap.stats();
  for (let i = 0; i < 10_000; i++) cycle();
  const after = heap.stats();
  assert.equal([after.mmapCalls, after.munmapCalls], [before.mmapCalls, before.munmapCalls]);
  heap.check();
  heap.destroy();
});

test('freeing most of a large heap gives memory back, and trim() gives back the rest', () => {
  const heap = fast();
  const ptrs = Array.from({ length: 1000 }, () => heap.malloc(60_000));
  const peak = heap.stats().mapped;
  assert.ok(peak >= 1000 * 60_000);
  for (const p of ptrs.slice(10)) heap.free(p);
  const s = heap.stats();
  assert.ok(s.munmapCalls > 0 && s.mapped < peak / 2, `mapped ${s.mapped} of a ${peak} peak`);
  for (const p of ptrs.slice(0, 10)) heap.free(p);
  heap.trim();
  assert.equal([heap.stats().mapped, heap.stats().blocks], [0, 0]);
  heap.check();
  heap.destroy();
});

test('a heap that fills and empties in cycles keeps its top after the first cycle grows it back; trim() still gives it all back', () => {
  const heap = fast();
  const cycle = (): number[] => Array.from({ length: 300 }, () => heap.malloc(20_000)); // about 6 MiB of medium blocks
  for (const p of cycle()) heap.free(p);
  const first = heap.stats();
  assert.ok(first.munmapCalls > 0 && first.mapped < 2 * MiB, `the first cycle's top is given back (${first.mapped} bytes held)`);
  for (const p of cycle()) heap.free(p); // growing back what was given back raises the trim threshold
  const second = heap.stats();
  for (let i = 0; i < 5; i++) for (const p of cycle()) heap.free(p);
  const later = heap.stats();
  assert.is(later.mmapCalls, second.mmapCalls, 'later cycles grow nothing');
  assert.is(later.munmapCalls, second.munmapCalls, 'and give nothing back to fault in again');
  assert.ok(later.mapped >= 5 * MiB, `the top is held between cycles (${later.mapped} bytes)`);
  heap.trim();
  assert.is(heap.stats().mapped, 0);
  heap.check();
  heap.destroy();
});

test('a view kept past trim() reads zeros instead of crashing: given-back pages are the zero page', () => {
  const heap = fast();
  const ptrs = Array.from({ length: 2000 }, () => heap.malloc(1000));
  const last = ptrs.at(-1)!;
  heap.bytes(last).fill(7);
  const stale = heap.bytes(last, 16);
  for (const p of ptrs) heap.free(p);
  heap.trim();
  assert.is(heap.stats().mapped, 0);
  assert.ok(stale.every((v) => v === 0), 'reads as zeros, from memory the heap no longer holds');
  heap.destroy();
});

test('one million live blocks, freed in random order, leave the heap empty; growth costs under one mmap per MiB', () => {
  const heap = fast();
  const n = 1_000_000;
  const next = random(3);
  const ptrs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    ptrs[i] = heap.malloc(16 + Math.floor(next() * 49));
    if (ptrs[i] === 0) throw new Error('out of memory');
  }
  const grown = heap.stats();
  assert.is(grown.usedBlocks, n);
  assert.ok(grown.mmapCalls <= grown.mapped / MiB, `${grown.mmapCalls} mmap calls for ${(grown.mapped / MiB).toFixed(1)} MiB`);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = ptrs[i]!;
    ptrs[i] = ptrs[j]!;
    ptrs[j] = t;
  }
  for (let i = 0; i < n; i++) heap.free(ptrs[i]!);
  const s = heap.stats();
  assert.equal([s.inUse, s.usedBlocks], [0, 0]);
  heap.check();
  heap.trim();
  assert.equal([heap.stats().mapped, heap.stats().blocks, heap.stats().regions], [0, 0, 0]);
  heap.destroy();
});

test('names are kept only for named blocks and go with them', () => {
  const heap = fast();
  const a = heap.malloc(3000, 'named');
  const b = heap.malloc(3000);
  const names = (): string[] => heap.snapshot().regions[0]!.blocks.filter((x) => !x.free).map((x) => x.name);
  assert.equal(names(), ['named', '']);
  const moved = heap.realloc(a, 5000);
  assert.equal(names(), ['', 'named']);
  heap.realloc(moved, 5000, '');
  assert.equal(names(), ['', '']);
  heap.free(b);
  // A small block's name lives beside its slot, and goes with it through realloc and free.
  const s = heap.malloc(40, 'small');
  const named = (): string[] => heap.snapshot().regions.flatMap((r) => r.blocks).filter((x) => !x.free && x.name !== '').map((x) => x.name);
  assert.equal(named(), ['small']);
  const grown = heap.realloc(s, 600);
  assert.equal(named(), ['small']);
  heap.free(grown);
  assert.equal(named(), []);
  heap.check();
  heap.destroy();
});

test.run();
