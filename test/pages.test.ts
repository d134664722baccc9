// The fast preset's small-object pages (src/heap/pages.ts): slots of one class a page, validation
// from JavaScript state alone, pages taken and given back, and a heap of many sizes.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import koffi from 'koffi';
import { Heap, HeapError } from '../src/index.js';
import { CLASS_OF, CLASS_RECIPROCAL, CLASS_SIZE, CLASS_SLOTS, Page } from '../src/layout/pages.js';

const PAGE = 4096;
/** Small requests come from pages once 1 MiB is in use: a fast heap holding that much in one large block. */
const BALLAST = 1 << 20;
const fast = (options: { limit?: number } = {}): Heap => {
  const heap = new Heap({ preset: 'fast', ...options });
  heap.malloc(BALLAST);
  return heap;
};
/** What the heap holds beyond the ballast. */
const held = (heap: Heap): number => heap.stats().mapped - BALLAST;

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof HeapError) return error.code;
    throw error;
  }
  return 'no error';
}

test('the class tables: every request up to 1 KiB gets the smallest class that holds it, and the reciprocal divides exactly', () => {
  for (let n = 0; n <= Page.SMALL_MAX; n++) {
    const c = CLASS_OF[(n + 15) >>> 4]!;
    assert.ok(CLASS_SIZE[c]! >= Math.max(n, 1), `class of ${n}`);
    assert.ok(c === 1 || CLASS_SIZE[c - 1]! < n, `${n} is in the smallest class that holds it`);
  }
  for (let c = 1; c <= Page.CLASSES; c++) {
    const size = CLASS_SIZE[c]!;
    assert.is(CLASS_SLOTS[c], Math.floor(PAGE / size));
    for (let rel = 0; rel < PAGE; rel++) {
      const slot = (rel * CLASS_RECIPROCAL[c]!) >>> Page.RECIPROCAL_SHIFT;
      if (rel % size === 0) assert.is(slot, rel / size, `offset ${rel} in class ${size}`);
      else assert.is.not(slot * size, rel, `offset ${rel} in class ${size} is not a slot`);
    }
  }
});

test('slots of one class fill a page in address order, and a page holds one class only', () => {
  const heap = fast();
  const a = Array.from({ length: 256 }, () => heap.malloc(16));
  for (let i = 1; i < a.length; i++) assert.is(a[i], a[i - 1]! + 16);
  assert.is(a[0]! % PAGE, 0, 'a page starts with its first slot');
  const b = heap.malloc(16);
  assert.ok(Math.floor(b / PAGE) !== Math.floor(a[0]! / PAGE), 'the 257th slot is on a new page');
  const c = heap.malloc(100);
  assert.ok(Math.floor(c / PAGE) !== Math.floor(a[0]! / PAGE) && Math.floor(c / PAGE) !== Math.floor(b / PAGE), 'another class, another page');
  heap.check();
  heap.destroy();
});

test('free and usableSize accept only the first byte of a slot in use: interior, unaligned and page-edge addresses are refused', () => {
  const heap = fast();
  const p = heap.malloc(100); // a 112-byte slot
  const q = heap.malloc(100);
  assert.is(q - p, 112);
  for (const bad of [p + 16, p + 1, p + 111, p - 16, p + PAGE, p + 36 * 112 + 16]) {
    assert.is(code(() => heap.free(bad)), 'ERR_INVALID_POINTER', `free(${bad - p} past p)`);
    assert.is(code(() => heap.usableSize(bad)), 'ERR_INVALID_POINTER');
  }
  heap.free(p);
  assert.is(code(() => heap.free(p)), 'ERR_DOUBLE_FREE');
  assert.is(code(() => heap.realloc(p, 10)), 'ERR_DOUBLE_FREE');
  assert.is(code(() => heap.bytes(p)), 'ERR_DOUBLE_FREE');
  heap.check();
  heap.destroy();
});

test('the metadata of small blocks is out of native reach: writes after free into every byte of a freed slot change nothing', () => {
  const heap = fast();
  const live = Array.from({ length: 30 }, (_, i) => heap.malloc(48 + (i % 3) * 16));
  for (const p of live) heap.bytes(p).fill(0x5c);
  const freed = live.splice(10, 5);
  for (const p of freed) heap.free(p);
  const before = heap.stats();
  for (const p of freed) new Uint8Array(koffi.view(p, 48) as ArrayBuffer).fill(0xff);
  heap.check();
  assert.equal(heap.stats(), before);
  const again = freed.map(() => heap.malloc(48));
  assert.equal(new Set([...again, ...live]).size, again.length + live.length, 'no slot handed out twice');
  for (const p of live) assert.ok(heap.bytes(p).every((v) => v === 0x5c));
  heap.destroy();
});

test('a page whose slots are all free goes back to the pool for any class, and trim() gives every free page back', () => {
  const heap = fast();
  const a = Array.from({ length: 768 }, () => heap.malloc(16)); // three pages of the 16-byte class
  const secondPage = Math.floor(a[256]! / PAGE) * PAGE;
  heap.free(a[600]!); // the third page has room
  for (const p of a.slice(256, 512)) heap.free(p); // the second page empties: not its class's only page with room
  const big = heap.malloc(1000); // another class takes the pooled page
  assert.is(Math.floor(big / PAGE) * PAGE, secondPage);
  for (const p of [...a.slice(0, 256), ...a.slice(512)]) if (p !== a[600]) heap.free(p);
  heap.free(big);
  heap.check();
  assert.ok(held(heap) > 0, 'each class keeps its last page until trim()');
  heap.trim();
  const s = heap.stats();
  assert.equal([s.mapped, s.inUse, s.blocks, s.regions], [BALLAST, BALLAST, 1, 1]);
  heap.check();
  const again = heap.malloc(16); // a page given back is committed again when needed
  heap.bytes(again).fill(1);
  heap.free(again);
  heap.destroy();
});

test('a heap of many sizes with few blocks each pays, for each class it uses, only the pages its blocks fill', () => {
  const heap = fast();
  const ptrs: number[] = [];
  const perClass = new Map<number, number>();
  for (let n = 1; n <= Page.SMALL_MAX; n += 7) {
    ptrs.push(heap.malloc(n));
    const c = CLASS_OF[(n + 15) >>> 4]!;
    perClass.set(c, (perClass.get(c) ?? 0) + 1);
  }
  let pages = 0;
  for (const [c, count] of perClass) pages += Math.ceil(count / CLASS_SLOTS[c]!);
  assert.is(held(heap), pages * PAGE, `${ptrs.length} blocks in ${perClass.size} classes`);
  assert.ok(pages <= perClass.size + 16, 'most classes fit their blocks in one page');
  assert.ok(heap.stats().inUse - BALLAST >= ptrs.length * 16);
  for (const p of ptrs) heap.free(p);
  heap.trim();
  assert.is(held(heap), 0);
  heap.destroy();
});

test('pages are committed in long steps but counted only once handed out', () => {
  const heap = fast();
  const calls = heap.stats().mmapCalls;
  heap.malloc(16);
  const s = heap.stats();
  assert.is(held(heap), PAGE, 'one page handed out is one page held');
  assert.is(s.mmapCalls - calls, 2, 'one reservation and one commit');
  const more = Array.from({ length: 10_000 }, () => heap.malloc(16));
  assert.ok(heap.stats().mmapCalls - calls <= 6, `${heap.stats().mmapCalls - calls} mmap calls for ${(held(heap) / 1024).toFixed(0)} KiB`);
  for (const p of more) heap.free(p);
  heap.destroy();
});

test('the limit option counts small pages: past it, malloc returns 0 and the heap is unchanged', () => {
  const heap = fast({ limit: BALLAST + 8 * PAGE });
  const ptrs: number[] = [];
  for (;;) {
    const p = heap.malloc(16);
    if (p === 0) break;
    ptrs.push(p);
  }
  assert.ok(heap.stats().mapped <= BALLAST + 8 * PAGE);
  assert.ok(ptrs.length >= 7 * 256);
  heap.check();
  for (const p of ptrs) heap.free(p);
  heap.destroy();
});

test('below 1 MiB in use, small requests are blocks of the medium lists: a small heap pays no page a class', () => {
  const heap = new Heap({ preset: 'fast' });
  const ptrs = [16, 100, 500, 1000].map((n) => heap.malloc(n));
  assert.equal(ptrs.map((p) => heap.usableSize(p)), [24, 104, 504, 1000]);
  assert.is(heap.snapshot().regions.length, 1, 'one arena, no pages');
  heap.malloc(BALLAST);
  const paged = heap.malloc(100);
  assert.is(heap.usableSize(paged), 112, 'past 1 MiB in use, a slot of its class');
  for (const p of ptrs) heap.free(p);
  heap.free(paged);
  heap.check();
  heap.destroy();
});

test.run();
