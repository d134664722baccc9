// Large blocks of a shared heap: each in a mapping of its own, recorded where every thread finds
// it. Read, freed and resized from any thread; freed ranges kept as read-only zero pages (a view
// another thread kept reads zeros) and used again; past the reservation's size; unmapped when the
// last heap over a destroyed heap closes.

import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap, HeapError } from '../src/index.js';
import { SCRIBBLE_BYTE } from '../src/heap/fast.js';
import { LARGE_MIN } from '../src/heap/shared-large.js';
import { ControlLayout } from '../src/heap/shared-control.js';
import { inWorker } from './helpers.js';

const MiB = 1024 * 1024;
const large = suite('shared heap: large blocks');

const code = (e: unknown): string => (e instanceof HeapError ? e.code : String(e));

/** The kernel's mapping that starts at `address`, as its permissions (`rw-p`...), or '' when none starts there. */
function mappingAt(address: number): string {
  const line = readFileSync('/proc/self/maps', 'latin1').split('\n').find((l) => parseInt(l.slice(0, l.indexOf('-')), 16) === address);
  return line === undefined ? '' : line.split(' ')[1]!;
}

/** Whether [address, address + size) lies outside the shared heap's arenas (its first region and the pages after). */
function outsideArenas(heap: Heap, address: number): boolean {
  return !heap.snapshot().regions.some((r) => r.size < LARGE_MIN && address >= r.address && address < r.address + r.size);
}

large('a block of LARGE_MIN bytes has a mapping of its own: written here, read and freed in a worker; its range stays, read as zeros, and serves the next block', async () => {
  const heap = new Heap({ shared: true });
  const p = heap.malloc(LARGE_MIN);
  assert.ok(p !== 0 && outsideArenas(heap, p));
  assert.is(heap.usableSize(p), LARGE_MIN);
  const view = heap.bytes(p);
  view[0] = 1;
  view[LARGE_MIN / 2] = 2;
  view[LARGE_MIN - 1] = 3;
  let stats = heap.stats();
  assert.is(stats.inUse, LARGE_MIN);
  assert.ok(stats.mapped >= LARGE_MIN);
  heap.check();
  const out = await inWorker<{ read: number[]; inUse: number; again: string }>(heap.handle(), `
    const b = heap.bytes(workerData.p);
    const read = [b[0], b[b.length / 2], b[b.length - 1]];
    heap.free(workerData.p);
    let again = '';
    try { heap.free(workerData.p); } catch (e) { again = e.code; }
    const inUse = heap.stats().inUse;
    heap.close();
    return { read, inUse, again };`, { p });
  assert.equal(out.read, [1, 2, 3], 'the worker reads what the main thread wrote');
  assert.is(out.again, 'ERR_DOUBLE_FREE');
  assert.is(out.inUse, 0);
  assert.ok(view.every((b) => b === 0), 'the view kept here reads zeros: the pages went back to the kernel, the range stayed mapped');
  assert.is(mappingAt(p), 'r--p', 'read-only until a block takes it again');
  assert.throws(() => heap.free(p), (e: unknown) => code(e) === 'ERR_DOUBLE_FREE');
  assert.throws(() => heap.bytes(p), (e: unknown) => code(e) === 'ERR_DOUBLE_FREE');
  stats = heap.stats();
  assert.is(stats.inUse, 0);
  assert.ok(stats.mapped < LARGE_MIN, 'a freed range is not counted as mapped');
  const calls = stats.mmapCalls;
  const q = heap.calloc(1, LARGE_MIN);
  assert.is(q, p, 'the freed range serves the next block of its size');
  assert.ok(heap.bytes(q).every((b) => b === 0), 'calloc over a range used before: zeros');
  assert.is(heap.stats().mmapCalls, calls + 1, 'one call, to make it read-write again');
  heap.free(q);
  heap.check();
  heap.destroy();
});

large('a block no other heap made a view of is unmapped at free, with the address space kept after it', async () => {
  const heap = new Heap({ shared: true });
  const p = heap.malloc(LARGE_MIN);
  heap.bytes(p, 16).fill(1);
  assert.is(mappingAt(p), 'rw-p');
  const calls = heap.stats().munmapCalls;
  heap.free(p);
  assert.is(mappingAt(p), '', 'unmapped: only this heap had a view, and that view is this thread\'s');
  assert.is(mappingAt(p + LARGE_MIN), '', 'and the range reserved after it for growth');
  assert.ok(heap.stats().munmapCalls >= calls + 2);
  // Freed in a worker that made no view of it, after this thread did: the same.
  const q = heap.malloc(LARGE_MIN);
  heap.bytes(q, 16).fill(2);
  const out = await inWorker<{ inUse: number }>(heap.handle(), `
    heap.free(workerData.q);
    const inUse = heap.stats().inUse;
    heap.close();
    return { inUse };`, { q });
  assert.is(out.inUse, 0);
  assert.is(mappingAt(q), 'r--p', 'another heap (this one) viewed it: its range stays mapped, read-only');
  heap.check();
  heap.destroy();
});

large('a second free of a large block is ERR_DOUBLE_FREE also once its range has merged into the freed range before it', async () => {
  const heap = new Heap({ shared: true });
  const a = heap.malloc(LARGE_MIN);
  const b = heap.malloc(LARGE_MIN);
  assert.is(b, a + LARGE_MIN, 'the second block is made in the room reserved after the first');
  // Viewed here and freed in a worker: both ranges stay mapped, and b's joins a's when freed.
  heap.bytes(a, 16).fill(1);
  heap.bytes(b, 16).fill(2);
  const out = await inWorker<{ again: string[] }>(heap.handle(), `
    heap.free(workerData.a);
    heap.free(workerData.b);
    const again = [];
    for (const p of [workerData.b, workerData.a]) {
      try { heap.free(p); again.push('freed'); } catch (e) { again.push(e.code); }
    }
    heap.close();
    return { again };`, { a, b });
  assert.equal(out.again, ['ERR_DOUBLE_FREE', 'ERR_DOUBLE_FREE'], 'in the thread that freed them');
  assert.is(mappingAt(a), 'r--p', 'the ranges stayed mapped');
  for (const p of [b, a]) {
    assert.throws(() => heap.free(p), (e: unknown) => code(e) === 'ERR_DOUBLE_FREE', `free(${p === a ? 'a' : 'b'}) here`);
    assert.throws(() => heap.realloc(p, 100), (e: unknown) => code(e) === 'ERR_DOUBLE_FREE');
  }
  // An address in the freed range that no block began at is no block's.
  assert.throws(() => heap.free(a + LARGE_MIN / 2), (e: unknown) => code(e) === 'ERR_INVALID_POINTER');
  assert.is(heap.stats().inUse, 0);
  heap.check();
  heap.destroy();
});

large('blocks past the reservation\'s size (1.25 GiB); more than one view can hold is out of memory', () => {
  const heap = new Heap({ shared: true });
  const size = 3 * 1024 * MiB;
  const p = heap.malloc(size);
  assert.ok(p !== 0, 'a 3 GiB block');
  const last = heap.bytes(p + size - 1, 1);
  last[0] = 0x5a;
  assert.is(heap.bytes(p + size - 1)[0], 0x5a);
  assert.is(heap.stats().inUse, size);
  assert.throws(() => heap.bytes(p + size - 1, 2), RangeError, 'bounds-checked against the block');
  assert.is(heap.malloc(2 ** 32 + 1), 0);
  assert.throws(() => new Heap({ shared: true, throwOnOutOfMemory: true }).malloc(2 ** 32 + 1),
    (e: unknown) => code(e) === 'ERR_OUT_OF_MEMORY');
  heap.free(p);
  assert.is(heap.stats().inUse, 0);
  heap.check();
  heap.destroy();
});

large('realloc grows a large block where it lies, shrinks it giving its tail back, and moves blocks between arenas and mappings', () => {
  const heap = new Heap({ shared: true });
  const p = heap.malloc(LARGE_MIN);
  heap.bytes(p)[LARGE_MIN - 1] = 7;
  const grown = heap.realloc(p, LARGE_MIN * 2);
  assert.is(grown, p, 'grown over the address space kept after it');
  assert.is(heap.usableSize(p), LARGE_MIN * 2);
  assert.is(heap.bytes(p)[LARGE_MIN - 1], 7);
  heap.bytes(p)[LARGE_MIN * 2 - 1] = 8;
  heap.check();
  const mapped = heap.stats().mapped;
  const shrunk = heap.realloc(p, LARGE_MIN / 2 + LARGE_MIN / 4);
  assert.is(shrunk, p, 'shrunk where it lies');
  assert.is(heap.usableSize(p), LARGE_MIN / 2 + LARGE_MIN / 4);
  assert.is(heap.stats().mapped, mapped - LARGE_MIN * 2 + heap.usableSize(p), 'its tail went back');
  assert.is(heap.realloc(p, LARGE_MIN / 2 + LARGE_MIN / 4 - 4096 * 3), p, 'a little smaller: kept as it is');
  // Down to an arena's block, and up to a mapping again, the bytes kept each way.
  heap.bytes(p, 1000).fill(4);
  const small = heap.realloc(p, 1000);
  assert.ok(!outsideArenas(heap, small), 'a block of 1000 bytes comes from an arena');
  assert.ok(heap.bytes(small).subarray(0, 1000).every((b) => b === 4));
  assert.throws(() => heap.usableSize(p), (e: unknown) => code(e) === 'ERR_DOUBLE_FREE', 'the large block was freed by the move');
  const back = heap.realloc(small, LARGE_MIN + 1);
  assert.ok(outsideArenas(heap, back), 'grown past LARGE_MIN: a mapping of its own');
  assert.ok(heap.bytes(back, 1000).every((b) => b === 4));
  assert.is(heap.usableSize(back), LARGE_MIN + 4096);
  heap.check();
  heap.free(back);
  assert.is(heap.stats().inUse, 0);
  heap.destroy();
});

large('bad addresses near large blocks are errors that change nothing', () => {
  const heap = new Heap({ shared: true });
  const p = heap.malloc(LARGE_MIN);
  for (const bad of [p + 16, p + 4096, p + LARGE_MIN]) {
    assert.throws(() => heap.free(bad), (e: unknown) => code(e) === 'ERR_INVALID_POINTER', `free(p + ${bad - p})`);
    assert.throws(() => heap.realloc(bad, 10), (e: unknown) => code(e) === 'ERR_INVALID_POINTER');
    assert.throws(() => heap.usableSize(bad), (e: unknown) => code(e) === 'ERR_INVALID_POINTER');
  }
  assert.throws(() => heap.free(p + 0.5), TypeError);
  assert.is(heap.bytes(p + 4096, 16).length, 16, 'bytes() takes any address inside a live block');
  assert.is(heap.stats().inUse, LARGE_MIN);
  heap.check();
  heap.free(p);
  heap.destroy();
});

large('bad sizes are refused on the large path too, and nothing is allocated', () => {
  const heap = new Heap({ shared: true });
  for (const bad of ['40000000', [40000000], LARGE_MIN + 0.5, -LARGE_MIN]) {
    assert.throws(() => heap.malloc(bad as number), (e: unknown) => e instanceof TypeError || e instanceof RangeError, `malloc(${String(bad)})`);
  }
  assert.is(heap.stats().inUse, 0);
  heap.check();
  heap.destroy();
});

large('a range another heap viewed stays mapped through every later block made over it', async () => {
  const heap = new Heap({ shared: true });
  const p = heap.malloc(LARGE_MIN);
  heap.bytes(p)[0] = 9;
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)}).then(({ Heap }) => {
      const heap = Heap.attach(workerData.handle);
      const view = heap.bytes(workerData.p);
      parentPort.postMessage(view[0]);
      parentPort.once('message', () => parentPort.postMessage(view[0] + view[view.length - 1]));
    });`, { eval: true, workerData: { handle: heap.handle(), p } });
  assert.is(await new Promise((r) => worker.once('message', r)), 9);
  heap.free(p);
  const q = heap.malloc(LARGE_MIN);
  assert.is(q, p, 'the kept range serves the next block');
  heap.bytes(q, 1)[0] = 5;
  heap.free(q);
  assert.is(mappingAt(p), 'r--p', 'freed again, by the only heap that viewed the new block: still kept, for the worker\'s view of the old one');
  worker.postMessage('read');
  assert.is(await new Promise((r) => worker.once('message', r)), 0, 'the worker\'s view reads zeros');
  await worker.terminate();
  heap.check();
  heap.destroy();
});

large('a realloc moving a large block and a free of it in another thread: one wins, the other is an error, nothing crashes', async () => {
  const heap = new Heap({ shared: true });
  const sync = new Int32Array(new SharedArrayBuffer(16));
  const source = (me: number): string => `
    const { parentPort, workerData } = require('node:worker_threads');
    import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)}).then(({ Heap }) => {
      const heap = Heap.attach(workerData.handle);
      const sync = new Int32Array(workerData.sync);
      parentPort.on('message', ({ p, round }) => {
        while (Atomics.load(sync, 0) !== round);
        let result = 0;
        try {
          result = ${me === 0 ? 'heap.realloc(p, ' + LARGE_MIN / 4 + ')' : '(heap.free(p), 1)'};
        } catch (e) { result = e.code; }
        parentPort.postMessage(result);
      });
    });`;
  const workers = [0, 1].map((me) => new Worker(source(me), { eval: true, workerData: { handle: heap.handle(), sync: sync.buffer } }));
  for (let round = 1; round <= 30; round++) {
    const p = heap.malloc(LARGE_MIN * 2);
    heap.bytes(p, 8).fill(3);
    const results = workers.map((w) => new Promise<number | string>((r) => w.once('message', r)));
    for (const w of workers) w.postMessage({ p, round });
    Atomics.store(sync, 0, round);
    const [moved, freed] = await Promise.all(results);
    const errors = [moved, freed].filter((x) => typeof x === 'string');
    assert.is(errors.length, 1, `round ${round}: ${String(moved)} / ${String(freed)}`);
    assert.ok(errors[0] === 'ERR_DOUBLE_FREE' || errors[0] === 'ERR_INVALID_POINTER');
    if (typeof moved === 'number') {
      assert.ok(heap.bytes(moved, 8).every((b) => b === 3), 'the move kept the bytes');
      heap.free(moved);
    }
    assert.is(heap.stats().inUse, 0);
  }
  await Promise.all(workers.map((w) => w.terminate()));
  heap.check();
  heap.destroy();
});

large('a free left half done by a thread that died holding the lock is finished by the next thread to take it', () => {
  const heap = new Heap({ shared: true });
  const p = heap.malloc(LARGE_MIN);
  const control = heap.handle().control;
  const ints = new Int32Array(control, 0, 16);
  const floats = new Float64Array(control, 4 * 16, 24);
  // As a thread stopped right after it recorded its intent to free p: the lock is held by a thread
  // id no thread has (below 2^22, so /proc is asked), and the cut is recorded.
  floats[21] = 0;
  floats[22] = 0;
  floats[20] = p;
  ints[1] = 4_000_000;
  const stats = heap.stats();
  assert.is(stats.inUse, 0, 'the free was finished');
  assert.is(mappingAt(p), '');
  assert.throws(() => heap.free(p), (e: unknown) => code(e) === 'ERR_DOUBLE_FREE');
  heap.check();
  heap.destroy();
});

large('the limit counts large blocks; scribbling fills them', () => {
  const limited = new Heap({ shared: true, limit: LARGE_MIN / 2 });
  assert.is(limited.malloc(LARGE_MIN), 0, 'past the limit');
  const p4 = limited.malloc(LARGE_MIN / 4);
  assert.ok(p4 !== 0 && limited.stats().mapped <= LARGE_MIN / 2);
  assert.is(limited.malloc(LARGE_MIN / 4 + LARGE_MIN / 8), 0, 'the two would pass the limit');
  limited.destroy();
  const heap = new Heap({ shared: true, scribble: true });
  const p = heap.malloc(LARGE_MIN);
  const b = heap.bytes(p);
  assert.is(b[0], SCRIBBLE_BYTE);
  assert.is(b[LARGE_MIN - 1], SCRIBBLE_BYTE);
  const z = heap.calloc(LARGE_MIN, 1);
  assert.ok(heap.bytes(z).every((x) => x === 0), 'calloc is zeros, scribbling or not');
  heap.free(p);
  heap.free(z);
  heap.destroy();
});

large('a worker terminated while it holds large blocks: they stay, and any thread frees them', async () => {
  const heap = new Heap({ shared: true });
  const entry = new URL('../src/index.js', import.meta.url).href;
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    import(${JSON.stringify(entry)}).then(({ Heap }) => {
      const heap = Heap.attach(workerData.handle);
      const blocks = [heap.malloc(${LARGE_MIN}), heap.malloc(${LARGE_MIN * 2})];
      heap.bytes(blocks[1]).fill(6);
      parentPort.postMessage(blocks);
      setInterval(() => {}, 1000);
    });`, { eval: true, workerData: { handle: heap.handle() } });
  const blocks = await new Promise<number[]>((resolve) => worker.once('message', resolve));
  await worker.terminate();
  assert.is(heap.stats().inUse, LARGE_MIN * 3);
  assert.ok(heap.bytes(blocks[1]!).every((b) => b === 6));
  for (const p of blocks) heap.free(p);
  assert.is(heap.stats().inUse, 0);
  heap.check();
  heap.destroy();
});

large('check() finds a damaged table of large blocks', () => {
  const heap = new Heap({ shared: true });
  const p = heap.malloc(LARGE_MIN);
  const control = heap.handle().control;
  const floats = new Float64Array(control, 4 * 16, 24);
  const table = new Float64Array(control, new ControlLayout(floats[1]!, floats[12]!).largeAt, 16);
  assert.is(table[0], p, 'entry 0 is the block');
  table[1] = LARGE_MIN + 4096;
  assert.throws(() => heap.check(), (e: unknown) => code(e) === 'ERR_HEAP_CORRUPTED');
  table[1] = LARGE_MIN;
  heap.check();
  heap.free(p);
  heap.destroy();
});

large('the last heap closed over a destroyed heap unmaps its large blocks and freed ranges', async () => {
  const heap = new Heap({ shared: true });
  const kept = heap.malloc(LARGE_MIN);
  const freed = heap.malloc(LARGE_MIN);
  heap.free(freed);
  const attached = Heap.attach(heap.handle());
  heap.destroy();
  assert.is(mappingAt(kept), 'rw-p', 'a heap is still open over it');
  attached.close();
  assert.is(mappingAt(kept), '');
  assert.is(mappingAt(freed), '');
});

large.run();
