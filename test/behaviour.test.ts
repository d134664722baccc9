// What a user of malloc relies on, whatever the layout, proved for every entry of PRESETS
// (./presets.ts): scribbling, calloc, data integrity, leak totals, stats, addresses that C accepts,
// memory that goes back to the kernel, and random workloads that keep every byte. Where a preset
// differs by design, the case reads its capability flag and asserts the declared behaviour instead.

import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import koffi from 'koffi';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap, type HeapOptions } from '../src/index.js';
import { checkPattern, fillPattern, nameFor, random } from './helpers.js';
import { makeHeap, PRESETS } from './presets.js';

const libc = koffi.load('libc.so.6');
const strlen = libc.func('size_t strlen(intptr_t s)');
const memset = libc.func('intptr_t memset(intptr_t s, int c, size_t n)');

function virtualSize(): number {
  const match = /VmSize:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(match![1]) * 1024;
}

/** The whole size of the block holding the data at `ptr`, as the snapshot shows it. */
function blockSize(heap: Heap, ptr: number): number {
  const block = heap.snapshot().regions.flatMap((r) => r.blocks).find((b) => b.address <= ptr && ptr < b.address + b.size);
  assert.ok(block !== undefined, `no block holds 0x${ptr.toString(16)}`);
  return block.size;
}

for (const preset of PRESETS) {
  const test = suite(`${preset.name} preset`);
  const make = (options: HeapOptions = {}): Heap => makeHeap(preset, options);
  const named = (name: string): string | undefined => nameFor(preset, name);
  /** A small block's whole size: usable bytes plus header, except in debug mode, where canaries and rounding add more. */
  const sizeOf = (heap: Heap, ptr: number): number => {
    const size = blockSize(heap, ptr);
    if (!preset.debugChecks) assert.is(size, heap.usableSize(ptr) + preset.headerOf(heap.usableSize(ptr)));
    return size;
  };
  /** Debug mode holds freed blocks in use until its quarantine is emptied; elsewhere this does nothing. */
  const drain = (heap: Heap): void => {
    if (preset.debugChecks) heap.trim();
  };

  test('scribble fills a freed block\'s data with 0xDD past the list links it keeps; without scribble it is left alone', () => {
    for (const scribble of [true, false]) {
      const heap = make({ scribble });
      // Sizes whose two blocks share a page or region, so that the freed one stays mapped.
      for (const size of preset.options.preset === 'classic' ? [48, 1000, 1800] : [48, 1000, 5000]) {
        const [p, neighbour] = [heap.malloc(size), heap.malloc(size)];
        assert.is(heap.snapshot().regions.find((r) => r.address <= p && p < r.address + r.size)?.address,
          heap.snapshot().regions.find((r) => r.address <= neighbour && neighbour < r.address + r.size)?.address, 'one region');
        heap.bytes(p).fill(0x11);
        heap.free(p);
        // Read through koffi: the heap itself refuses a freed block's bytes.
        const raw = new Uint8Array(koffi.view(p, size) as ArrayBuffer);
        // The first 16 bytes may hold the free list's links (fast medium: 8, classic: 16, pages: none).
        const rest = raw.subarray(16);
        if (scribble) assert.ok(rest.every((v) => v === 0xdd), `${size}: ${rest.slice(0, 8).join(',')}`);
        else if (!preset.debugChecks) assert.ok(rest.every((v) => v === 0x11), `${size} without scribble`);
        heap.free(neighbour);
      }
      heap.destroy();
    }
  });

  test('scribble fills every new allocation with 0xAA, read as ints and longs', () => {
    const heap = make({ scribble: true });
    const p = heap.malloc(64);
    const bytes = heap.bytes(p, 64);
    const ints = new Int32Array(bytes.buffer, bytes.byteOffset, 16);
    const longs = new BigUint64Array(bytes.buffer, bytes.byteOffset, 8);
    assert.ok(ints.every((v) => v === (0xaaaaaaaa | 0)));
    assert.ok(longs.every((v) => v === 0xaaaaaaaaaaaaaaaan));
    bytes.fill(0);
    heap.malloc(4096 - 128 - 64, named('fills the page')); // classic: no free tail, so p is the only free block
    heap.free(p);
    const again = heap.malloc(64); // the same block comes back, scribbled again (debug: a fresh one, scribbled)
    if (preset.debugChecks) assert.is.not(again, p, 'a freed block stays in quarantine');
    else assert.is(again, p);
    assert.ok(heap.bytes(again, 64).every((v) => v === 0xaa));
    heap.destroy();
  });

  test('scribble also covers the bytes a block gains by growing in place', () => {
    const heap = make({ scribble: true });
    // Above the fast preset's small blocks, which stay in their size class's slots.
    const a = heap.malloc(1100);
    const old = heap.usableSize(a);
    heap.bytes(a).fill(1);
    const grown = heap.realloc(a, 2000);
    if (!preset.debugChecks) assert.is(grown, a, 'grown in place'); // debug: realloc always moves
    const bytes = heap.bytes(grown, 2000);
    assert.ok(bytes.subarray(0, old).every((v) => v === 1));
    assert.ok(bytes.subarray(old).every((v) => v === 0xaa));
    heap.destroy();
  });

  test('without scribble, a reused block is not filled (debug: a freed block is not reused at once)', () => {
    const heap = make();
    const p = heap.malloc(64);
    heap.bytes(p).fill(7);
    heap.malloc(4096 - 128 - 64, named('fills the page'));
    heap.free(p);
    const q = heap.malloc(64);
    if (preset.debugChecks) {
      assert.is.not(q, p, 'a freed block stays in quarantine');
      heap.destroy();
      return;
    }
    assert.is(q, p);
    // bytes 16.. of the old data survive (the first 16 may hold free-list links)
    assert.ok(heap.bytes(q, 64).subarray(16).every((v) => v === 7));
    heap.destroy();
  });

  test('calloc zeroes, even with scribble on, small and large', () => {
    const heap = make({ scribble: true });
    for (const [count, size] of [[25, 4], [1024, 1024]] as const) {
      const p = heap.calloc(count, size);
      assert.ok(heap.bytes(p, count * size).every((v) => v === 0), `calloc(${count}, ${size})`);
      heap.free(p);
    }
    assert.is(heap.calloc(2 ** 30, 2 ** 30), 0, 'an overflowing product is refused');
    assert.ok(heap.calloc(0, 8) > 0, 'calloc of nothing still returns a unique block');
    heap.destroy();
  });

  test('a 1 MB block of random bytes reads back unchanged', () => {
    const heap = make();
    const size = 1 << 20;
    const p = heap.malloc(size, named('1 MB'));
    const original = randomFillSync(new Uint8Array(size));
    heap.bytes(p, size).set(original);
    const others = Array.from({ length: 50 }, (_, i) => heap.malloc(1000 + i * 10));
    for (const q of others) heap.bytes(q).fill(0xff);
    for (const q of others.filter((_, i) => i % 2 === 0)) heap.free(q);
    assert.ok(Buffer.compare(heap.bytes(p, size), original) === 0);
    heap.destroy();
  });

  test('addresses are real native pointers: C reads what JavaScript wrote, and the reverse', () => {
    const heap = make();
    for (const size of [64, 1 << 20]) {
      const p = heap.malloc(size, named('C string'));
      const text = 'hello from ffi-heap';
      heap.bytes(p).set(Buffer.from(text + '\0', 'utf8'));
      assert.is(strlen(p), text.length);
      memset(p, 0x41, 10);
      assert.is(Buffer.from(heap.bytes(p, 10)).toString('latin1'), 'AAAAAAAAAA');
    }
    heap.destroy();
  });

  test('addresses are 16-byte aligned, distinct, and usableSize covers the request', () => {
    const heap = make();
    const next = random(7);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const n = Math.floor(next() * 3000);
      const p = heap.malloc(n);
      assert.is(p % 16, 0);
      assert.ok(heap.usableSize(p) >= n);
      assert.not.ok(seen.has(p));
      seen.add(p);
    }
    heap.destroy();
  });

  test('malloc(0) returns a unique, freeable block', () => {
    const heap = make();
    const a = heap.malloc(0);
    const b = heap.malloc(0);
    assert.ok(a !== 0 && b !== 0 && a !== b);
    heap.free(a);
    heap.free(b);
    drain(heap);
    assert.is(heap.stats().inUse, 0);
    heap.destroy();
  });

  test('the leak report lists live blocks in address order and totals them', () => {
    const heap = make();
    const a = heap.malloc(100, named('leak A'));
    const b = heap.malloc(10, named('leak B'));
    const c = heap.malloc(1000, named('freed'));
    heap.free(c);
    const hex = (n: number): string => '0x' + n.toString(16);
    const sizeA = sizeOf(heap, a);
    const sizeB = sizeOf(heap, b);
    assert.is(heap.leakReport(),
      '-- Leak Check --\n' +
      `[BLOCK ${hex(a - preset.headerOf(100))}] ${sizeA}\t'${named('leak A') ?? ''}'\n` +
      `[BLOCK ${hex(b - preset.headerOf(10))}] ${sizeB}\t'${named('leak B') ?? ''}'\n` +
      `\n-- Summary --\n2 blocks lost (${sizeA + sizeB} bytes)\n`);
    heap.free(a);
    assert.match(heap.leakReport(), new RegExp(`\\n1 blocks lost \\(${sizeB} bytes\\)\\n$`));
    heap.free(b);
    assert.match(heap.leakReport(), /^-- Leak Check --\n\n-- Summary --\n0 blocks lost \(0 bytes\)\n$/);
    heap.destroy();
  });

  test('names show in the printout and follow a block through realloc (or, where names are refused, a TypeError)', () => {
    const heap = make();
    if (!preset.names) {
      assert.throws(() => heap.malloc(100, 'first'), (e: Error) => e instanceof TypeError && /no block names/.test(e.message));
      const p = heap.malloc(100);
      assert.throws(() => heap.realloc(p, 50, 'renamed'), (e: Error) => e instanceof TypeError);
      assert.is(heap.stats().usedBlocks, 1, 'the refused calls allocated nothing');
      heap.destroy();
      return;
    }
    const a = heap.malloc(100, 'first');
    assert.match(heap.formatMemory(), /\[USED\]\t'first'\n/);
    const b = heap.realloc(a, 50, 'renamed');
    assert.match(heap.formatMemory(), /\[USED\]\t'renamed'\n/);
    heap.malloc(100, 'pin');
    const c = heap.realloc(b, 100_000);
    assert.is(heap.snapshot().regions.flatMap((r) => r.blocks).find((x) => !x.free && x.name === 'renamed')!.size,
      sizeOf(heap, c));
    heap.destroy();
  });

  test('stats count live blocks and bytes, and peaks stay at their highest', () => {
    const heap = make();
    const sizes = [100, 5000, 10, 70_000, 3_000_000];
    const ptrs = sizes.map((n) => heap.malloc(n));
    let s = heap.stats();
    const blockBytes = ptrs.reduce((sum, p) => sum + blockSize(heap, p), 0);
    assert.is(s.usedBlocks, sizes.length);
    assert.ok(s.inUse >= sizes.reduce((a, b) => a + b, 0));
    assert.ok(s.inUse <= blockBytes, `inUse ${s.inUse} vs blocks ${blockBytes}`);
    assert.is(s.freeBytes, s.mapped - s.inUse);
    assert.is(s.blocks, s.usedBlocks + s.freeBlocks);
    assert.ok(s.mmapCalls >= 1 && s.mapped >= s.inUse);
    const peak = s.inUse;
    for (const p of ptrs) heap.free(p);
    heap.trim();
    s = heap.stats();
    assert.equal([s.inUse, s.usedBlocks, s.mapped, s.blocks, s.regions], [0, 0, 0, 0, 0]);
    assert.is(s.peakInUse, peak);
    assert.ok(s.peakMapped >= peak);
    assert.ok(s.munmapCalls >= 1);
    heap.destroy();
  });

  // Debug mode fills every freed byte and checks it as the quarantine drains: 5 rounds there, not 50.
  const rounds = preset.debugChecks ? 5 : 50;
  test(`${rounds} rounds of 10 allocations of up to 20 MB, all freed, give every byte back`, () => {
    const heap = make();
    // The fast preset reserves its address space on first use: one arena for small blocks, one for the rest.
    heap.free(heap.malloc(1));
    heap.free(heap.malloc(5000));
    heap.trim();
    const next = random(11);
    const before = virtualSize();
    let peak = before;
    for (let round = 0; round < rounds; round++) {
      const blocks: Array<[ptr: number, size: number]> = [];
      for (let i = 0; i < 10; i++) {
        const size = 1 + Math.floor(next() * 20 * 1024 * 1024);
        const p = heap.malloc(size, named(`round ${round}`));
        assert.ok(p !== 0);
        const bytes = heap.bytes(p, size);
        bytes[0] = round;
        bytes[size - 1] = i;
        blocks.push([p, size]);
      }
      peak = Math.max(peak, virtualSize());
      for (const [i, [p, size]] of blocks.entries()) {
        const bytes = heap.bytes(p, size);
        assert.equal([bytes[0], bytes[size - 1]], [round, i]);
        heap.free(p);
      }
      heap.trim();
      assert.is(heap.stats().mapped, 0);
    }
    heap.check();
    const after = virtualSize();
    assert.ok(after - before < 64 * 1024 * 1024, `virtual size grew by ${after - before} bytes`);
    assert.ok(peak - before < 400 * 1024 * 1024, `virtual size peaked ${peak - before} bytes above the start`);
    heap.destroy();
  });

  test('random workload: every live block keeps its bytes and every invariant holds', () => {
    // Every fit of the classic engine, where the preset runs it; scribble on and off everywhere.
    const variants: HeapOptions[] = preset.options.preset === 'classic' && !preset.debugChecks
      ? (['first_fit', 'best_fit', 'worst_fit'] as const).map((algorithm) => ({ algorithm, scribble: algorithm === 'best_fit' }))
      : [{ scribble: false }, { scribble: true }];
    for (const options of variants) {
      const heap = make(options);
      const next = random(42);
      const live = new Map<number, { size: number; seed: number }>();
      for (let step = 0; step < 4000; step++) {
        const roll = next();
        const ptrs = [...live.keys()];
        if (roll < 0.45 || ptrs.length === 0) {
          const size = next() < 0.9 ? Math.floor(next() * 512) : Math.floor(next() * 400_000);
          const p = roll < 0.1 ? heap.calloc(1, size) : heap.malloc(size);
          if (roll < 0.1) assert.ok(heap.bytes(p, size).every((v) => v === 0));
          fillPattern(heap, p, size, step);
          live.set(p, { size, seed: step });
        } else if (roll < 0.75) {
          const p = ptrs[Math.floor(next() * ptrs.length)]!;
          const { size, seed } = live.get(p)!;
          assert.is(checkPattern(heap, p, size, seed), -1);
          heap.free(p);
          live.delete(p);
        } else {
          const p = ptrs[Math.floor(next() * ptrs.length)]!;
          const { size, seed } = live.get(p)!;
          const grown = Math.floor(next() * 2 * size + 1);
          const q = heap.realloc(p, grown);
          assert.is(checkPattern(heap, q, Math.min(size, grown), seed), -1);
          live.delete(p);
          fillPattern(heap, q, grown, step);
          live.set(q, { size: grown, seed: step });
        }
        if (step % 100 === 0) heap.check();
      }
      heap.check();
      for (const [p, { size, seed }] of live) {
        assert.is(checkPattern(heap, p, size, seed), -1);
        heap.free(p);
      }
      heap.check();
      heap.trim();
      assert.equal([heap.stats().mapped, heap.stats().blocks, heap.stats().inUse], [0, 0, 0], JSON.stringify(options));
      heap.destroy();
    }
  });

  test.run();
}
