// zlib allocating from the heap: round trips of random data with every byte of zlib's state in the
// heap, cross-checked against Node's own zlib; failures that free everything; the allocator's
// fields in a z_stream that C reads.

import { deflateSync as nodeDeflate, inflateSync as nodeInflate } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap } from '../src/index.js';
import { random } from '../src/debug/random.js';
import { ZStream, deflateInHeap, inflateInHeap, loadZlib, zlibAllocator, Z_FINISH, Z_OK, Z_STREAM_END } from '../src/interop/zlib.js';

const zlib = loadZlib();

/** `length` bytes: random, or words from a small vocabulary (which compress well). */
function data(length: number, seed: number, compressible: boolean): Uint8Array {
  const next = random(seed);
  const out = new Uint8Array(length);
  const words = ['heap ', 'block ', 'free ', 'malloc ', 'zlib ', 'koffi ', '\n'];
  for (let i = 0; i < length;) {
    if (!compressible) {
      out[i++] = Math.floor(next() * 256);
      continue;
    }
    for (const c of words[Math.floor(next() * words.length)]!) if (i < length) out[i++] = c.charCodeAt(0);
  }
  return out;
}

for (const preset of ['fast', 'classic'] as const) {
  const test = suite(`zlib allocating from the ${preset} heap`);

  test('round trips of random and compressible data of many sizes, readable by Node\'s zlib', () => {
    const heap = new Heap({ preset });
    const allocator = zlibAllocator(heap);
    const cases = [[0, false], [1, false], [100, true], [65_537, false], [300_000, true], [2_000_000, false]] as const;
    cases.forEach(([length, compressible], i) => {
      const input = data(length, i + 1, compressible);
      for (const level of [1, 6, 9]) {
        const packed = deflateInHeap(zlib, allocator, input, level);
        assert.equal(new Uint8Array(nodeInflate(packed)), input, `${length} bytes at level ${level}, inflated by Node`);
        assert.equal(inflateInHeap(zlib, allocator, packed), input, `${length} bytes at level ${level}, inflated in the heap`);
      }
      assert.equal(inflateInHeap(zlib, allocator, new Uint8Array(nodeDeflate(input))), input, 'Node\'s deflate, inflated in the heap');
      if (compressible && length > 1000) assert.ok(deflateInHeap(zlib, allocator, input).length < length / 2, 'it really compresses');
    });
    assert.is(allocator.error, undefined);
    assert.is(heap.stats().inUse, 0, 'every block of the streams and of zlib was freed');
    heap.check();
    allocator.release();
    heap.destroy();
  });

  test('zlib\'s state lives in the heap while a stream is open, and leaves with deflateEnd', () => {
    const heap = new Heap({ preset });
    const allocator = zlibAllocator(heap);
    const stream = heap.alloc(ZStream);
    allocator.install(stream);
    const fields = heap.decode(stream, ZStream) as { zalloc: unknown; zfree: unknown; opaque: unknown };
    assert.is(Number(fields.zalloc), allocator.zalloc, 'z_stream.zalloc, as C reads it');
    assert.is(Number(fields.zfree), allocator.zfree);
    const before = heap.stats();
    assert.is(zlib.deflateInit(stream, 9), Z_OK);
    const open = heap.stats();
    assert.ok(open.usedBlocks >= before.usedBlocks + 3, `zlib allocated its state here: ${open.usedBlocks - before.usedBlocks} blocks`);
    assert.ok(open.inUse - before.inUse > 200_000, `deflate's window and tables: ${open.inUse - before.inUse} bytes`);
    heap.check();

    const input = data(50_000, 9, true);
    const src = heap.malloc(input.length);
    heap.bytes(src).set(input);
    const dst = heap.malloc(100_000);
    heap.encode(stream, ZStream, { ...(heap.decode(stream, ZStream) as object), next_in: src, avail_in: input.length, next_out: dst, avail_out: 100_000 });
    assert.is(zlib.deflate(stream, Z_FINISH), Z_STREAM_END);
    const produced = Number((heap.decode(stream, ZStream) as { total_out: number }).total_out);
    assert.equal(new Uint8Array(nodeInflate(heap.bytes(dst, produced))), input);
    assert.is(zlib.deflateEnd(stream), Z_OK);
    assert.is(heap.stats().usedBlocks, before.usedBlocks + 2, 'deflateEnd gave every block back: only our two buffers are added');
    heap.free(src);
    heap.free(dst);
    assert.is(heap.stats().inUse, before.inUse, 'deflateEnd gave every block back');
    heap.free(stream);
    allocator.release();
    heap.destroy();
  });

  test('bad input and a heap too small for zlib: clear errors, and nothing is left allocated', () => {
    const heap = new Heap({ preset });
    const allocator = zlibAllocator(heap);
    const packed = deflateInHeap(zlib, allocator, data(10_000, 3, true));
    assert.throws(() => inflateInHeap(zlib, allocator, packed.subarray(0, packed.length - 10)), /ends before the end/);
    assert.throws(() => inflateInHeap(zlib, allocator, data(1000, 4, false)), /Z_DATA_ERROR/);
    assert.throws(() => deflateInHeap(zlib, allocator, 'text' as unknown as Uint8Array), (e: Error) => e instanceof TypeError);
    assert.is(heap.stats().inUse, 0);
    heap.check();
    allocator.release();
    assert.throws(() => allocator.install(heap.malloc(200)), /after release/);
    heap.destroy();

    const small = new Heap({ preset, limit: 160 * 1024 });
    const starved = zlibAllocator(small);
    assert.throws(() => deflateInHeap(zlib, starved, data(1000, 5, true), 9), /Z_MEM_ERROR/);
    assert.is(small.stats().inUse, 0, 'the failed stream freed what it had');
    assert.equal(inflateInHeap(zlib, starved, packed), data(10_000, 3, true), 'inflate needs less, and fits');
    small.check();
    starved.release();
    small.destroy();
  });

  test.run();
}
