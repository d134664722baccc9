// What a user of malloc relies on, whatever the layout: scribbling, calloc, data integrity, leak
// totals, stats, addresses that C accepts, and memory that goes back to the kernel.

import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import koffi from 'koffi';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap } from '../src/index.js';
import { checkPattern, fillPattern, random } from './helpers.js';

const libc = koffi.load('libc.so.6');
const strlen = libc.func('size_t strlen(intptr_t s)');
const memset = libc.func('intptr_t memset(intptr_t s, int c, size_t n)');

test('scribble fills every new allocation with 0xAA, read as ints and longs', () => {
  const heap = new Heap({ scribble: true });
  const p = heap.malloc(64);
  const bytes = heap.bytes(p, 64);
  const ints = new Int32Array(bytes.buffer, bytes.byteOffset, 16);
  const longs = new BigUint64Array(bytes.buffer, bytes.byteOffset, 8);
  assert.ok(ints.every((v) => v === (0xaaaaaaaa | 0)));
  assert.ok(longs.every((v) => v === 0xaaaaaaaaaaaaaaaan));
  bytes.fill(0);
  heap.malloc(4096 - 128 - 64, 'fills the page'); // no free tail: p will be the only free block
  heap.free(p);
  const again = heap.malloc(64); // first fit hands the same block back: scribbled again
  assert.is(again, p);
  assert.ok(heap.bytes(again, 64).every((v) => v === 0xaa));
  heap.destroy();
});

test('scribble also covers the bytes a block gains by growing in place', () => {
  const heap = new Heap({ scribble: true });
  const a = heap.malloc(16);
  heap.bytes(a).fill(1);
  assert.is(heap.realloc(a, 1000), a);
  const bytes = heap.bytes(a, 1000);
  assert.ok(bytes.subarray(0, 16).every((v) => v === 1));
  assert.ok(bytes.subarray(16).every((v) => v === 0xaa));
  heap.destroy();
});

test('without scribble, new blocks are not filled', () => {
  const heap = new Heap();
  const p = heap.malloc(64);
  heap.bytes(p).fill(7);
  heap.malloc(4096 - 128 - 64, 'fills the page');
  heap.free(p);
  const q = heap.malloc(64);
  assert.is(q, p);
  // bytes 16.. of the old data survive (the first 16 held free-list links)
  assert.ok(heap.bytes(q, 64).subarray(16).every((v) => v === 7));
  heap.destroy();
});

test('calloc zeroes, even with scribble on', () => {
  const heap = new Heap({ scribble: true });
  const p = heap.calloc(25, 4);
  assert.ok(heap.bytes(p, 100).every((v) => v === 0));
  heap.free(p);
  assert.is(heap.calloc(2 ** 30, 2 ** 30), 0, 'an overflowing product is refused');
  assert.is(heap.calloc(0, 8) > 0, true, 'calloc of nothing still returns a unique block');
  heap.destroy();
});

test('a 1 MB block of random bytes reads back unchanged', () => {
  const heap = new Heap();
  const size = 1 << 20;
  const p = heap.malloc(size, '1 MB');
  const original = randomFillSync(new Uint8Array(size));
  heap.bytes(p, size).set(original);
  const others = Array.from({ length: 50 }, (_, i) => heap.malloc(1000 + i * 10));
  for (const q of others) heap.bytes(q).fill(0xff);
  for (const q of others.filter((_, i) => i % 2 === 0)) heap.free(q);
  assert.ok(Buffer.compare(heap.bytes(p, size), original) === 0);
  heap.destroy();
});

test('addresses are real native pointers: C reads what JavaScript wrote, and the reverse', () => {
  const heap = new Heap();
  const p = heap.malloc(64, 'C string');
  const text = 'hello from ffi-heap';
  const bytes = heap.bytes(p);
  bytes.set(Buffer.from(text + '\0', 'utf8'));
  assert.is(strlen(p), text.length);
  memset(p, 0x41, 10);
  assert.is(Buffer.from(heap.bytes(p, 10)).toString('latin1'), 'AAAAAAAAAA');
  heap.destroy();
});

test('addresses are 16-byte aligned and usableSize covers the request', () => {
  const heap = new Heap();
  const next = random(7);
  for (let i = 0; i < 500; i++) {
    const n = Math.floor(next() * 3000);
    const p = heap.malloc(n);
    assert.is(p % 16, 0);
    assert.ok(heap.usableSize(p) >= n);
  }
  heap.destroy();
});

test('the leak report lists live blocks and totals them', () => {
  const heap = new Heap();
  const a = heap.malloc(100, 'leak A');
  heap.malloc(10, 'leak B');
  const c = heap.malloc(1000, 'freed');
  heap.free(c);
  const base = heap.snapshot().regions[0]!.address;
  const hex = (n: number): string => '0x' + n.toString(16);
  assert.is(heap.leakReport(),
    '-- Leak Check --\n' +
    `[BLOCK ${hex(base)}] 176\t'leak A'\n` +
    `[BLOCK ${hex(base + 176)}] 80\t'leak B'\n` +
    '\n-- Summary --\n2 blocks lost (256 bytes)\n');
  heap.free(a);
  assert.match(heap.leakReport(), /\n1 blocks lost \(80 bytes\)\n$/);
  heap.destroy();
});

test('stats count bytes, blocks and kernel calls, and peaks stay at their highest', () => {
  const heap = new Heap();
  const a = heap.malloc(100);
  const b = heap.malloc(5000);
  let s = heap.stats();
  assert.equal([s.mapped, s.inUse, s.blocks, s.usedBlocks, s.freeBlocks, s.regions, s.mmapCalls],
    [4096 + 8192, 176 + 5072, 4, 2, 2, 2, 2]);
  assert.is(s.freeBytes, s.mapped - s.inUse);
  heap.free(b);
  heap.free(a);
  s = heap.stats();
  assert.equal([s.mapped, s.inUse, s.blocks, s.regions, s.munmapCalls, s.peakMapped, s.peakInUse],
    [0, 0, 0, 0, 2, 12288, 5248]);
  heap.destroy();
});

function virtualSize(): number {
  const match = /VmSize:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(match![1]) * 1024;
}

test('50 rounds of 10 allocations of up to 20 MB, all freed, give every byte back', () => {
  const heap = new Heap();
  const next = random(11);
  const before = virtualSize();
  let peak = before;
  for (let round = 0; round < 50; round++) {
    const ptrs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const size = 1 + Math.floor(next() * 20 * 1024 * 1024);
      const p = heap.malloc(size, `round ${round}`);
      assert.ok(p !== 0);
      const bytes = heap.bytes(p, size);
      bytes[0] = round;
      bytes[size - 1] = i;
      ptrs.push(p);
    }
    peak = Math.max(peak, virtualSize());
    for (const p of ptrs) {
      assert.is(heap.bytes(p)[0], round);
      heap.free(p);
    }
    assert.is(heap.stats().mapped, 0);
  }
  const after = virtualSize();
  assert.ok(after - before < 64 * 1024 * 1024, `virtual size grew by ${after - before} bytes`);
  assert.ok(peak - before < 400 * 1024 * 1024, `virtual size peaked ${peak - before} bytes above the start`);
  heap.destroy();
});

test('random workload: every live block keeps its bytes and every invariant holds', () => {
  for (const algorithm of ['first_fit', 'best_fit', 'worst_fit'] as const) {
    const heap = new Heap({ algorithm, scribble: algorithm === 'best_fit' });
    const next = random(42);
    const live = new Map<number, { size: number; seed: number }>();
    for (let step = 0; step < 3000; step++) {
      const roll = next();
      const ptrs = [...live.keys()];
      if (roll < 0.45 || ptrs.length === 0) {
        const size = next() < 0.9 ? Math.floor(next() * 512) : Math.floor(next() * 40000);
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
    assert.equal([heap.stats().mapped, heap.stats().blocks], [0, 0], algorithm);
    heap.destroy();
  }
});

test.run();
