// Bad input is refused with a clear error and changes nothing: the contract cases run for every
// entry of PRESETS (./presets.ts); the damaged-metadata cases at the end write into one engine's
// own header layout, so they name their preset.

import koffi from 'koffi';
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClassicHeap, DebugHeap, FastHeap, Heap, HeapError, SharedHeap, type Preset } from '../src/index.js';
import { checkPattern, fillPattern, nameFor } from './helpers.js';
import { makeHeap, PRESETS, type TestPreset } from './presets.js';

/** Records the heap's layout now; the returned function proves nothing has changed since. */
function capture(heap: Heap, live: readonly number[]): () => void {
  const layout = heap.formatMemory();
  return () => {
    for (const p of live) assert.is(checkPattern(heap, p, heap.usableSize(p), p), -1, `block 0x${p.toString(16)} changed`);
    assert.is(heap.formatMemory(), layout);
    heap.check();
  };
}

/** A heap with a few live blocks, each filled with a pattern seeded by its address. */
function populated(preset: TestPreset | Preset): { heap: Heap; ptrs: number[]; intact: () => void } {
  const heap = typeof preset === 'string' ? new Heap({ preset }) : makeHeap(preset);
  const ptrs = [100, 10, 3000, 100].map((n, i) => heap.malloc(n, typeof preset === 'string' ? `live ${i}` : nameFor(preset, `live ${i}`)));
  for (const p of ptrs) fillPattern(heap, p, heap.usableSize(p), p);
  return { heap, ptrs, intact: capture(heap, ptrs) };
}

function throwsCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, HeapError);
    assert.is((error as HeapError).code, code);
    assert.match((error as HeapError).message, /0x[0-9a-f]+/, 'the message names the address');
    return;
  }
  assert.unreachable(`expected HeapError ${code}`);
}

for (const preset of PRESETS) {
  const test = suite(`${preset.name} preset`);

  test('free(0) does nothing', () => {
    const { heap, intact } = populated(preset);
    heap.free(0);
    intact();
    heap.destroy();
  });

  test('sizes that are not non-negative safe integers are TypeError or RangeError', () => {
    const { heap, intact } = populated(preset);
    const wrongType: unknown[] = ['100', 100n, null, undefined, {}, true];
    const outOfRange: unknown[] = [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53];
    for (const size of wrongType) {
      assert.throws(() => heap.malloc(size as number), (e: Error) => e instanceof TypeError, `malloc(${String(size)})`);
      assert.throws(() => heap.calloc(1, size as number), (e: Error) => e instanceof TypeError);
      assert.throws(() => heap.realloc(0, size as number), (e: Error) => e instanceof TypeError);
    }
    for (const size of outOfRange) {
      assert.throws(() => heap.malloc(size as number), (e: Error) => e instanceof RangeError, `malloc(${String(size)})`);
      assert.throws(() => heap.calloc(size as number, 1), (e: Error) => e instanceof RangeError);
      assert.throws(() => heap.realloc(0, size as number), (e: Error) => e instanceof RangeError);
    }
    assert.throws(() => heap.malloc(10, 42 as unknown as string), (e: Error) => e instanceof TypeError);
    // Each names the call the program made, not the one it makes inside.
    assert.throws(() => heap.cstring('x', 42 as unknown as string), (e: Error) => e instanceof TypeError && /^cstring: /.test(e.message));
    assert.throws(() => heap.alloc('double', 1, 42 as unknown as string), (e: Error) => e instanceof TypeError && /^alloc: /.test(e.message));
    intact();
    heap.destroy();
  });

  test('addresses of the wrong kind are TypeError or RangeError', () => {
    const { heap, ptrs, intact } = populated(preset);
    assert.throws(() => heap.free(String(ptrs[0]) as unknown as number), (e: Error) => e instanceof TypeError);
    assert.throws(() => heap.free({} as unknown as number), (e: Error) => e instanceof TypeError);
    assert.throws(() => heap.free(-16), (e: Error) => e instanceof RangeError);
    // BigInts are addresses too, when they convert exactly.
    assert.throws(() => heap.free(-16n), (e: Error) => e instanceof RangeError && /^free: /.test(e.message));
    assert.throws(() => heap.free(2n ** 53n), (e: Error) => e instanceof RangeError);
    assert.throws(() => heap.bytes(2n ** 64n + BigInt(ptrs[0]!)), (e: Error) => e instanceof RangeError && /^bytes: /.test(e.message));
    assert.throws(() => heap.free(ptrs[0]! + 0.5), (e: Error) => e instanceof RangeError);
    assert.throws(() => heap.bytes(ptrs[0]!, -1), (e: Error) => e instanceof RangeError);
    assert.throws(() => heap.bytes(ptrs[0]!, 10_000), (e: Error) => e instanceof RangeError);
    intact();
    heap.destroy();
  });

  test('an address inside a block is found afresh after the block is freed and its memory taken by others', () => {
    const heap = makeHeap(preset);
    const keep = heap.malloc(16); // the region stays
    const p = heap.malloc(60_000);
    const inside = p + 50_000;
    assert.is(heap.bytes(inside).length, heap.usableSize(p) - 50_000);
    assert.is(heap.bytes(inside + 16).length, heap.usableSize(p) - 50_016, 'the same block again');
    heap.free(p);
    if (preset.debugChecks) heap.trim();
    throwsCode(() => heap.bytes(inside), 'ERR_INVALID_POINTER');
    const parts = [heap.malloc(20_000), heap.malloc(20_000), heap.malloc(20_000)];
    // Wherever `inside` falls now, bytes() reaches exactly to the end of the live block holding it.
    const holder = parts.find((q) => q <= inside && inside < q + heap.usableSize(q));
    if (holder === undefined) throwsCode(() => heap.bytes(inside), 'ERR_INVALID_POINTER');
    else assert.is(heap.bytes(inside).length, holder + heap.usableSize(holder) - inside);
    for (const q of [...parts, keep]) heap.free(q);
    heap.destroy();
  });

  test('a second free of a block whose memory went back to the kernel is still ERR_DOUBLE_FREE', () => {
    const heap = makeHeap(preset);
    // 32 MiB: a mapping of its own in the fast preset, a region of its own in the classic one.
    const big = heap.malloc(32 << 20);
    assert.ok(big !== 0);
    heap.free(big);
    throwsCode(() => heap.free(big), 'ERR_DOUBLE_FREE');
    throwsCode(() => heap.realloc(big, 10), 'ERR_DOUBLE_FREE');
    throwsCode(() => heap.usableSize(big), 'ERR_DOUBLE_FREE');
    throwsCode(() => heap.bytes(big), 'ERR_DOUBLE_FREE');
    // Memory mapped again is the heap's again: a new block there is live.
    const again = heap.malloc(32 << 20);
    heap.bytes(again, 8).fill(7);
    heap.free(again);
    heap.destroy();
  });

  test('any address inside a live block reads and writes it, up to the block\'s end; BigInt addresses alike', () => {
    const { heap, ptrs, intact } = populated(preset);
    for (const p of ptrs) {
      const size = heap.usableSize(p);
      for (const offset of [1, 8, size - 1]) {
        const q = p + offset;
        const view = heap.bytes(q);
        assert.is(view.length, size - offset, `bytes(p + ${offset}) reaches the block's end`);
        assert.is(view[0], heap.bytes(p)[offset]);
        assert.equal([...heap.bytes(BigInt(q), 1)], [view[0]]);
        assert.throws(() => heap.bytes(q, size - offset + 1),
          (e: Error) => e instanceof RangeError && e.message.startsWith(`bytes(0x${q.toString(16)}, ${size - offset + 1})`));
      }
      // free, realloc and usableSize still want the start.
      throwsCode(() => heap.usableSize(p + 1), 'ERR_INVALID_POINTER');
    }
    intact();
    const p = ptrs[2]!; // 3000 bytes
    const size = heap.usableSize(p);
    heap.bytes(p).set(new TextEncoder().encode('first\0second\0'));
    assert.is(heap.readCString(p + 6), 'second');
    assert.is(heap.readCString(BigInt(p + 6)), 'second');
    heap.view(p + 16, Float64Array, 2)[1] = 1.5;
    assert.is(heap.view(p, Float64Array)[3], 1.5);
    assert.is(heap.view(BigInt(p + 16), Float64Array).length, Math.floor((size - 16) / 8));
    assert.throws(() => heap.view(p + 4, Float64Array), (e: Error) => e instanceof RangeError && /^view\(.*not a multiple of 8/.test(e.message));
    assert.throws(() => heap.view(p + 16, Float64Array, size), (e: Error) => e instanceof RangeError && /^view\(/.test(e.message));
    heap.encode(p + 32, 'int32_t', -7, 1);
    assert.is(heap.view(p, Int32Array)[9], -7);
    assert.is(heap.decode<number>(BigInt(p + 36), 'int32_t'), -7);
    assert.throws(() => heap.decode(p + size - 2, 'int32_t'), (e: Error) => e instanceof RangeError && /^decode\(/.test(e.message));
    heap.bytes(p + size - 3).fill(65);
    assert.throws(() => heap.readCString(p + size - 3), (e: Error) => e instanceof RangeError && /^readCString\(/.test(e.message));
    // A freed block's bytes are no one's, wherever the address falls in them.
    const freed = ptrs[3]!;
    heap.free(freed);
    throwsCode(() => heap.bytes(freed), 'ERR_DOUBLE_FREE');
    throwsCode(() => heap.bytes(freed + 8), 'ERR_INVALID_POINTER');
    throwsCode(() => heap.readCString(freed + 8), 'ERR_INVALID_POINTER');
    heap.destroy();
  });

  test('double free is ERR_DOUBLE_FREE and changes nothing', () => {
    const { heap, ptrs } = populated(preset);
    const freed = ptrs[1]!;
    heap.free(freed);
    const intact = capture(heap, ptrs.filter((p) => p !== freed));
    throwsCode(() => heap.free(freed), 'ERR_DOUBLE_FREE');
    throwsCode(() => heap.realloc(freed, 10), 'ERR_DOUBLE_FREE');
    intact();
    heap.destroy();
  });

  test('interior, misaligned, foreign and never-allocated addresses are ERR_INVALID_POINTER', () => {
    const { heap, ptrs, intact } = populated(preset);
    const other = makeHeap(preset);
    const foreign = other.malloc(100);
    const region = heap.snapshot().regions[0]!;
    const cases = [
      ptrs[0]! + 16, // inside a block, 16-aligned
      ptrs[0]! + 1, // misaligned
      ptrs[0]! - Math.max(16, preset.headerOf(100)), // before the data: the block's start as reports show it, or the slot before
      region.address + region.size - 16, // inside the free tail
      foreign, // another heap's block
      8, // never mapped
      0x7fff_0000_0000, // far away
    ];
    for (const p of cases) {
      throwsCode(() => heap.free(p), 'ERR_INVALID_POINTER');
      throwsCode(() => heap.realloc(p, 10), 'ERR_INVALID_POINTER');
      throwsCode(() => heap.usableSize(p), 'ERR_INVALID_POINTER');
    }
    // Reads and writes take any address inside a live block (the first two); nothing else.
    for (const p of cases.slice(3)) throwsCode(() => heap.bytes(p), 'ERR_INVALID_POINTER');
    intact();
    other.free(foreign);
    other.destroy();
    heap.destroy();
  });

  test('a destroyed heap refuses every call with ERR_HEAP_DESTROYED', () => {
    const heap = makeHeap(preset);
    const p = heap.malloc(10);
    heap.destroy();
    throwsCodeNoAddress(() => heap.stats(), 'ERR_HEAP_DESTROYED');
    throwsCodeNoAddress(() => heap.malloc(10), 'ERR_HEAP_DESTROYED');
    throwsCodeNoAddress(() => heap.free(p), 'ERR_HEAP_DESTROYED');
    throwsCodeNoAddress(() => heap.check(), 'ERR_HEAP_DESTROYED');
    heap.destroy(); // twice is harmless
  });

  function throwsCodeNoAddress(fn: () => unknown, code: string): void {
    assert.throws(fn, (e: Error) => e instanceof HeapError && e.code === code);
  }

  test('bad options are refused when the heap is made', () => {
    assert.throws(() => new Heap({ algorithm: 'next_fit' as 'first_fit' }), (e: Error) => e instanceof RangeError && /first_fit/.test(e.message));
    assert.throws(() => new Heap({ preset: 'turbo' as 'classic' }), (e: Error) => e instanceof RangeError);
    assert.throws(() => new Heap({ scribble: 1 as unknown as boolean }), (e: Error) => e instanceof TypeError);
    assert.throws(() => new Heap({ scribbel: true } as never), (e: Error) => e instanceof TypeError && /scribbel/.test(e.message));
  });

  test('requests too large for any mapping return 0', () => {
    const { heap, intact } = populated(preset);
    assert.is(heap.malloc(2 ** 40), 0);
    assert.is(heap.calloc(2 ** 20, 2 ** 30), 0);
    intact();
    heap.destroy();
  });

  test.run();
}

test('the preset classes are for instanceof: constructing one directly is a TypeError that says how', () => {
  for (const Class of [FastHeap, ClassicHeap, DebugHeap, SharedHeap]) {
    assert.throws(() => new (Class as unknown as new () => Heap)(),
      (e: Error) => e instanceof TypeError && e.message.startsWith(`new ${Class.name}(): make heaps with new Heap(options)`));
  }
  const heap = new Heap({ preset: 'classic', debug: true });
  const kinds = [DebugHeap, Heap, FastHeap, ClassicHeap].map((Class) => heap instanceof Class);
  assert.equal(kinds, [true, true, false, false]);
  heap.destroy();
});

// Damaged metadata: each preset's own header layout.

test('classic: a damaged header is ERR_HEAP_CORRUPTED, from free and from check(), and other blocks keep their bytes', () => {
  const { heap, ptrs } = populated('classic');
  const victim = ptrs[1]!;
  // Write garbage over the header's size field through a raw view, as a buffer underflow would.
  const header = new Uint8Array(koffi.view(victim - 64, 64) as ArrayBuffer);
  const saved = header.slice();
  header.fill(0x5a, 40, 48);
  throwsCode(() => heap.check(), 'ERR_HEAP_CORRUPTED');
  throwsCode(() => heap.free(victim), 'ERR_HEAP_CORRUPTED');
  for (const p of ptrs) {
    if (p !== victim) assert.is(checkPattern(heap, p, heap.usableSize(p), p), -1);
  }
  header.set(saved);
  heap.check();
  heap.free(victim);
  heap.destroy();
});

test('classic: a damaged link is caught by check() without reading outside the heap', () => {
  const { heap, ptrs } = populated('classic');
  const header = new Uint32Array(koffi.view(ptrs[2]! - 64, 64) as ArrayBuffer);
  const saved = header.slice();
  header[48 / 4] = 0x1000; // next link: a low address nothing maps
  header[48 / 4 + 1] = 0;
  throwsCode(() => heap.check(), 'ERR_HEAP_CORRUPTED');
  throwsCode(() => heap.formatMemory(), 'ERR_HEAP_CORRUPTED');
  header.set(saved);
  heap.check();
  heap.destroy();
});

/** A fast heap of medium blocks, which have headers (blocks of up to 1 KiB are in pages, without). */
function populatedMedium(): { heap: Heap; ptrs: number[] } {
  const heap = new Heap({ preset: 'fast' });
  const ptrs = [1100, 1040, 3000, 1100].map((n, i) => heap.malloc(n, `live ${i}`));
  for (const p of ptrs) fillPattern(heap, p, heap.usableSize(p), p);
  return { heap, ptrs };
}

test('fast: a damaged size word is ERR_HEAP_CORRUPTED, from free and from check(), and other blocks keep their bytes', () => {
  const { heap, ptrs } = populatedMedium();
  const victim = ptrs[1]!;
  const header = new Uint32Array(koffi.view(victim - 8, 8) as ArrayBuffer);
  const saved = header.slice();
  header[1] = 0x5a5a5a50; // a size far past the heap's end
  throwsCode(() => heap.check(), 'ERR_HEAP_CORRUPTED');
  throwsCode(() => heap.free(victim), 'ERR_HEAP_CORRUPTED');
  throwsCode(() => heap.realloc(victim, 1), 'ERR_HEAP_CORRUPTED');
  for (const p of ptrs) {
    if (p !== victim) assert.is(checkPattern(heap, p, heap.usableSize(p), p), -1);
  }
  header.set(saved);
  heap.check();
  const before = heap.stats();
  heap.free(victim);
  assert.is(heap.stats().usedBlocks, before.usedBlocks - 1, 'the failed frees changed no counter');
  heap.destroy();
});

test('fast: a write after free into a cached block is caught, not followed', () => {
  const { heap, ptrs } = populatedMedium();
  const freed = ptrs[0]!;
  heap.free(freed); // a medium block of up to 2 KiB: parked in its size's cache, its first word the cache link
  new Uint32Array(koffi.view(freed, 4) as ArrayBuffer)[0] = 0x7fff_fff0; // a stale pointer writes
  throwsCode(() => heap.check(), 'ERR_HEAP_CORRUPTED');
  throwsCode(() => heap.malloc(1100), 'ERR_HEAP_CORRUPTED');
  for (const p of ptrs.slice(1)) assert.is(checkPattern(heap, p, heap.usableSize(p), p), -1);
  heap.destroy();
});

test('classic: a damaged block-list link of the free block a shrinking realloc would merge with is refused before any write', () => {
  const heap = new Heap({ preset: 'classic' });
  const live = heap.malloc(8134);
  fillPattern(heap, live, 8134, 5);
  const free = heap.snapshot().regions[0]!.blocks[1]!; // the free rest of the region, after the live block
  assert.ok(free.free);
  const next = new Uint32Array(koffi.view(free.address + 48, 8) as ArrayBuffer); // its block-list next link
  next[0] = 0x2f000000;
  next[1] = 0x28a35f;
  const before = heap.stats();
  throwsCode(() => heap.realloc(live, 138), 'ERR_HEAP_CORRUPTED');
  assert.is(checkPattern(heap, live, 8134, 5), -1, 'the live block kept every byte');
  assert.equal(heap.stats(), before);
  next[0] = 0;
  next[1] = 0;
  heap.check();
  heap.destroy();
});

test('fast: a write after free into a listed block is caught, not followed', () => {
  const heap = new Heap({ preset: 'fast' });
  const a = heap.malloc(150_000);
  heap.malloc(150_000, 'pin');
  // The wide cache, full first (four blocks kept apart by named ones): a is merged and filed on a free list.
  const held = Array.from({ length: 4 }, () => [heap.malloc(8000), heap.malloc(300, 'pin')] as const);
  for (const [p] of held) heap.free(p);
  heap.free(a);
  const links = new Uint32Array(koffi.view(a, 8) as ArrayBuffer);
  links[0] = 0x7fff_fff0;
  throwsCode(() => heap.check(), 'ERR_HEAP_CORRUPTED');
  throwsCode(() => heap.malloc(60_000), 'ERR_HEAP_CORRUPTED');
  links[0] = 0;
  heap.check();
  heap.destroy();
});

test.run();
