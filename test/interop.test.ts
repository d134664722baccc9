// Interop helpers: typed views with bounds, C strings that C reads and writes, scopes that free what
// they allocated (also when their body throws), and arenas; for every entry of PRESETS
// (./presets.ts), names given only where the preset keeps them.

import koffi from 'koffi';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap, HeapError } from '../src/index.js';
import { nameFor } from './helpers.js';
import { makeHeap, PRESETS } from './presets.js';

const libc = koffi.load('libc.so.6');
const strlen = libc.func('size_t strlen(intptr_t s)');
const strcpy = libc.func('intptr_t strcpy(intptr_t dst, intptr_t src)');
const Compare = koffi.proto('int ffi_heap_compare(const void *a, const void *b)');
const qsort = libc.func('qsort', 'void', ['intptr_t', 'size_t', 'size_t', koffi.pointer(Compare)]);
const Point = koffi.struct('ffi_heap_point', { x: 'double', y: 'int32_t', tag: 'char[8]' });
// koffi 3 returns `void *` as a BigInt: what these give back is an address inside the block passed in.
const memchr = libc.func('void *memchr(intptr_t s, int c, size_t n)');
const strtok = libc.func('void *strtok(intptr_t s, intptr_t delim)');

for (const preset of PRESETS) {
  const test = suite(`${preset.name} preset, interop`);
  const make = (): Heap => makeHeap(preset);
  const named = (name: string): string | undefined => nameFor(preset, name);
  /** Debug mode holds freed blocks in use until its quarantine is emptied; elsewhere this does nothing. */
  const drain = (heap: Heap): void => {
    if (preset.debugChecks) heap.trim();
  };

  test('C\'s BigInt results inside a block (memchr, strtok) read, write and view it, bounded by its end', () => {
    const heap = make();
    const text = heap.cstring('alpha beta gamma');
    const found = memchr(text, 'b'.charCodeAt(0), 16) as bigint;
    assert.is(typeof found, 'bigint');
    assert.is(heap.readCString(found), 'beta gamma');
    heap.bytes(found, 1)[0] = 'B'.charCodeAt(0);
    assert.is(heap.readCString(text), 'alpha Beta gamma');
    assert.is(heap.bytes(found).length, heap.usableSize(text) - 6);
    assert.throws(() => heap.bytes(found, heap.usableSize(text)), (e: Error) => e instanceof RangeError && /^bytes\(0x/.test(e.message));
    const space = heap.cstring(' ');
    const first = strtok(text, space) as bigint;
    const second = strtok(0, space) as bigint;
    assert.is(Number(first), text);
    assert.is(heap.readCString(second), 'Beta');
    assert.is(heap.readCString(strtok(0, space) as bigint), 'gamma');
    // A BigInt start frees like the Number.
    heap.free(BigInt(space));
    heap.free(first);
    drain(heap);
    assert.is(heap.stats().usedBlocks, 0);
    heap.destroy();
  });

  test('typed views cover the block, bounds-checked, for every element type', () => {
    const heap = make();
    const p = heap.malloc(800);
    const doubles = heap.view(p, Float64Array, 100);
    doubles.forEach((_, i) => (doubles[i] = i / 4));
    assert.is(new Float64Array(heap.bytes(p, 800).slice().buffer)[99], 99 / 4);
    assert.is(heap.view(p, BigInt64Array, 1)[0], new BigInt64Array(doubles.buffer, doubles.byteOffset, 1)[0]);
    assert.ok(heap.view(p, Uint32Array).length >= 200, 'by default, all the elements that fit');
    assert.throws(() => heap.view(p, Float64Array, 10_000), (e: Error) => e instanceof RangeError);
    // Inside the block: a view from there, over the same bytes.
    assert.is(heap.view(p + 16, Float64Array, 1)[0], heap.view(p, Float64Array)[2]);
    assert.throws(() => heap.view(p + 16, Float64Array, 10_000), (e: Error) => e instanceof RangeError && /^view\(0x/.test(e.message));
    assert.throws(() => heap.view(p, Array as unknown as Float64ArrayConstructor, 1), (e: Error) => e instanceof TypeError);
    heap.destroy();
  });

  test('C strings: written as UTF-8 plus NUL, read by C, and read back from what C wrote', () => {
    const heap = make();
    const text = 'héllo, wörld';
    const s = heap.cstring(text, named('greeting'));
    assert.is(strlen(s), Buffer.byteLength(text));
    assert.is(heap.readCString(s), text);
    const copy = heap.malloc(64);
    strcpy(copy, s);
    assert.is(heap.readCString(copy), text);
    assert.throws(() => heap.cstring('a\0b'), (e: Error) => e instanceof RangeError);
    const full = heap.malloc(16);
    heap.bytes(full).fill(0x41);
    assert.throws(() => heap.readCString(full), (e: Error) => e instanceof RangeError && /no NUL/.test(e.message));
    heap.destroy();
  });

  test('C types: structs and arrays allocated zeroed, written and read with bounds, and sorted by C', () => {
    const heap = make();
    const points = heap.alloc(Point, 3, named('points'));
    assert.equal(heap.decode(points, Point, 2), { x: 0, y: 0, tag: '' }, 'allocated zeroed');
    heap.encode(points, Point, { x: 1.5, y: -7, tag: 'first' }, 0);
    heap.encode(points, Point, { x: 2.5, y: 8, tag: 'third' }, 2);
    assert.equal(heap.decode(points, Point, 0), { x: 1.5, y: -7, tag: 'first' });
    assert.equal(heap.decode(points, Point, 2), { x: 2.5, y: 8, tag: 'third' });
    assert.throws(() => heap.decode(points, Point, 3), (e: Error) => e instanceof RangeError && /ends past the block/.test(e.message));
    // The second point, by its own address: a struct in the middle of the array.
    const second = points + koffi.sizeof(Point);
    heap.encode(second, Point, { x: 9.5, y: 2, tag: 'second' });
    assert.equal(heap.decode(points, Point, 1), { x: 9.5, y: 2, tag: 'second' });
    assert.equal(heap.decode(second, Point, 1), { x: 2.5, y: 8, tag: 'third' });
    assert.throws(() => heap.decode(second, Point, 2), (e: Error) => e instanceof RangeError && /^decode\(0x.*ends past the block/.test(e.message));

    const values = [3.5, -1, 10, 0.25, 7];
    const array = heap.alloc('double', values.length);
    values.forEach((v, i) => heap.encode(array, 'double', v, i));
    qsort(array, values.length, 8, (a: unknown, b: unknown) => Math.sign((koffi.decode(a, 'double') as number) - (koffi.decode(b, 'double') as number)));
    assert.equal([...heap.view(array, Float64Array, values.length)], [...values].sort((a, b) => a - b));
    heap.destroy();
  });

  test('a scope frees everything allocated in it when it ends, and only that', () => {
    const heap = make();
    const outside = heap.malloc(100);
    const before = heap.stats().usedBlocks;
    {
      using scope = heap.scope();
      const a = scope.malloc(100);
      scope.calloc(10, 10);
      scope.cstring('temporary');
      const b = scope.realloc(a, 5000);
      assert.ok(b !== 0);
      const c = scope.malloc(10);
      scope.free(c);
      assert.is(scope.size, 3);
      drain(heap);
      assert.is(heap.stats().usedBlocks, before + 3);
      assert.throws(() => scope.free(outside), (e: Error) => e instanceof HeapError && e.code === 'ERR_INVALID_POINTER');
    }
    drain(heap);
    assert.is(heap.stats().usedBlocks, before);
    heap.free(outside);
    heap.check();
    heap.destroy();
  });

  test('withScope frees the scope when its body throws, and the error comes through', () => {
    const heap = make();
    assert.throws(() => heap.withScope((scope) => {
      scope.malloc(1000);
      scope.cstring('lost?');
      throw new Error('body failed');
    }), /body failed/);
    drain(heap);
    assert.is(heap.stats().usedBlocks, 0);
    assert.is(heap.withScope((scope) => heap.readCString(scope.cstring('kept until the end'))), 'kept until the end');
    drain(heap);
    assert.is(heap.stats().usedBlocks, 0);
    const scope = heap.scope();
    scope.dispose();
    assert.throws(() => scope.malloc(10), (e: Error) => e instanceof HeapError);
    drain(heap);
    assert.is(heap.stats().usedBlocks, 0, 'a refused allocation is not leaked');
    heap.destroy();
  });

  test('an arena bump-allocates aligned pieces of one block and frees them all at once', () => {
    const heap = make();
    const used = heap.stats().usedBlocks;
    {
      using arena = heap.arena(1024);
      assert.is(heap.stats().usedBlocks, used + 1);
      const a = arena.alloc(10);
      const b = arena.alloc(10, 64);
      assert.equal([a % 16, b % 64], [0, 0]);
      assert.ok(b >= a + 10);
      assert.is(arena.alloc(2000), 0, 'past the end: 0');
      arena.reset();
      assert.is(arena.alloc(10), a, 'after reset, from the start again');
      assert.throws(() => arena.alloc(8, 3), (e: Error) => e instanceof RangeError);
    }
    drain(heap);
    assert.is(heap.stats().usedBlocks, used);
    heap.destroy();
  });

  test('arena pieces as typed views, and C types in a scope; the heap reads and writes a piece by its address', () => {
    const heap = make();
    const used = heap.stats().usedBlocks;
    {
      using arena = heap.arena(256);
      const small = arena.alloc(3);
      const doubles = arena.view(Float64Array, 4)!;
      assert.is(doubles.length, 4);
      assert.is(doubles.byteOffset % 8, 0);
      doubles.set([1, 2, 3, 4]);
      const piece = small + ((doubles.byteOffset - heap.bytes(small).byteOffset));
      assert.is(heap.view(piece, Float64Array, 4)[3], 4, 'the piece by its address');
      heap.encode(piece, 'double', 9.5, 1);
      assert.is(doubles[1], 9.5);
      assert.is(arena.view(Float64Array, 1000), null, 'past the end: null');
      assert.throws(() => arena.view(Array as unknown as Float64ArrayConstructor, 1), (e: Error) => e instanceof TypeError);
    }
    heap.withScope((scope) => {
      const points = scope.alloc(Point, 2, named('points in a scope'));
      heap.encode(points, Point, { x: 1, y: 2, tag: 'scoped' }, 1);
      assert.equal(heap.decode(points, Point, 1), { x: 1, y: 2, tag: 'scoped' });
      assert.is(scope.size, 1);
    });
    drain(heap);
    assert.is(heap.stats().usedBlocks, used);
    heap.destroy();
  });

  test.run();
}
