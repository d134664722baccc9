// Worker side of test/shared.test.ts (run by its tests, not a suite itself): opens the shared heap
// from its handle and runs one of the roles below, posting what it saw.

import { parentPort, workerData } from 'node:worker_threads';
import { Heap, type SharedHeap, type SharedHeapHandle } from '../src/index.js';
import { random } from '../src/debug/random.js';

/** The byte every block is filled with: from its address and size, so a mix-up shows. */
export function tag(ptr: number, size: number): number {
  return ((ptr / 16) ^ size ^ 0x5a) & 0xff;
}

/** Slot tables shared by the stress workers: where each block is, and who holds it. */
export interface Slots {
  readonly address: Float64Array;
  readonly size: Int32Array;
  /** 0 empty, 1 holds a block, 2 taken by a worker for the moment. */
  readonly state: Int32Array;
}

export function slots(buffer: SharedArrayBuffer, count: number): Slots {
  return {
    address: new Float64Array(buffer, 0, count),
    size: new Int32Array(buffer, 8 * count, count),
    state: new Int32Array(buffer, 12 * count, count),
  };
}

export const EMPTY = 0;
export const FULL = 1;
export const BUSY = 2;

interface StressJob {
  role: 'stress';
  handle: SharedHeapHandle;
  slots: SharedArrayBuffer;
  index: number;
  workers: number;
  perWorker: number;
  ops: number;
  seed: number;
}

interface RoundsJob {
  role: 'rounds';
  handle: SharedHeapHandle;
  rounds: number;
  blocks: number;
  seed: number;
}

function filledRight(bytes: Uint8Array, byte: number): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== byte) return false;
  return true;
}

/** Random malloc, free and realloc; a quarter of the frees take another worker's block. */
function stress(job: StressJob): object {
  const heap = Heap.attach(job.handle);
  const table = slots(job.slots, job.workers * job.perWorker);
  const next = random(job.seed);
  const own = job.index * job.perWorker;
  let frees = 0;
  let crossFrees = 0;
  let reallocs = 0;
  let errors = 0;
  let firstError = '';
  const fail = (what: string): void => {
    if (errors++ === 0) firstError = what;
  };
  const sizeOf = (): number => (next() < 0.02 ? 4096 + Math.floor(next() * 60_000) : 1 + Math.floor(next() * 1024));
  for (let op = 0; op < job.ops; op++) {
    const r = next();
    if (r < 0.45) {
      const s = own + Math.floor(next() * job.perWorker);
      if (Atomics.compareExchange(table.state, s, EMPTY, BUSY) !== EMPTY) continue;
      const size = sizeOf();
      const p = heap.malloc(size);
      if (p === 0) {
        fail(`malloc(${size}) returned 0`);
        Atomics.store(table.state, s, EMPTY);
        continue;
      }
      heap.bytes(p, size).fill(tag(p, size));
      table.address[s] = p;
      table.size[s] = size;
      Atomics.store(table.state, s, FULL);
    } else if (r < 0.9) {
      // Every fourth free takes a block of another worker's, looking a little for one.
      const other = job.workers > 1 && frees % 4 === 3;
      let s = -1;
      for (let attempt = 0; attempt < (other ? 64 : 1) && s < 0; attempt++) {
        const w = other ? (job.index + 1 + Math.floor(next() * (job.workers - 1))) % job.workers : job.index;
        const at = w * job.perWorker + Math.floor(next() * job.perWorker);
        if (Atomics.compareExchange(table.state, at, FULL, BUSY) === FULL) s = at;
      }
      if (s < 0) continue;
      const p = table.address[s]!;
      const size = table.size[s]!;
      if (!filledRight(heap.bytes(p, size), tag(p, size))) fail(`block at ${p} (${size} bytes) lost its pattern before free`);
      heap.free(p);
      frees++;
      if (other) crossFrees++;
      Atomics.store(table.state, s, EMPTY);
    } else {
      const s = own + Math.floor(next() * job.perWorker);
      if (Atomics.compareExchange(table.state, s, FULL, BUSY) !== FULL) continue;
      const p = table.address[s]!;
      const size = table.size[s]!;
      const grown = sizeOf();
      const q = heap.realloc(p, grown);
      if (q === 0) {
        fail(`realloc(${grown}) returned 0`);
        Atomics.store(table.state, s, FULL);
        continue;
      }
      if (!filledRight(heap.bytes(q, Math.min(size, grown)), tag(p, size))) fail(`realloc lost the bytes of the block at ${p}`);
      heap.bytes(q, grown).fill(tag(q, grown));
      table.address[s] = q;
      table.size[s] = grown;
      reallocs++;
      Atomics.store(table.state, s, FULL);
    }
  }
  heap.close();
  return { frees, crossFrees, reallocs, errors, firstError };
}

/** The course design's shape: rounds of allocate, write, check, free. */
function rounds(job: RoundsJob): object {
  const heap = Heap.attach(job.handle);
  const next = random(job.seed);
  let errors = 0;
  const held: number[] = [];
  const sizes: number[] = [];
  for (let round = 0; round < job.rounds; round++) {
    for (let i = 0; i < job.blocks; i++) {
      const size = 1 + Math.floor(next() * 1024);
      const p = heap.malloc(size);
      if (p === 0) {
        errors++;
        continue;
      }
      heap.bytes(p, size).fill(tag(p, size));
      held.push(p);
      sizes.push(size);
    }
    while (held.length > 0) {
      const p = held.pop()!;
      const size = sizes.pop()!;
      if (!filledRight(heap.bytes(p, size), tag(p, size))) errors++;
      heap.free(p);
    }
  }
  heap.close();
  return { errors };
}

interface LoopJob {
  role: 'loop';
  handle: SharedHeapHandle;
  slots: SharedArrayBuffer;
  index: number;
  workers: number;
  perWorker: number;
  seed: number;
  /** One Int32 per worker: the calls it has made, for the main thread to see it go on. */
  progress: SharedArrayBuffer;
}

/**
 * Random malloc, calloc, free and realloc with patterns checked, until the worker is terminated.
 * Every block is recorded in the slot table (state FULL) as soon as its call returns, so that the
 * main thread can free what the worker held when it died. A pattern found wrong is posted at once.
 */
function loop(job: LoopJob): void {
  const heap = Heap.attach(job.handle);
  const table = slots(job.slots, job.workers * job.perWorker);
  const next = random(job.seed);
  const own = job.index * job.perWorker;
  const sizeOf = (): number => {
    const r = next();
    return r < 0.01 ? 1_000_000 + Math.floor(next() * 3_000_000) : r < 0.05 ? 4096 + Math.floor(next() * 200_000) : 1 + Math.floor(next() * 2048);
  };
  const progress = new Int32Array(job.progress);
  parentPort!.postMessage({ ready: true });
  for (;;) {
    Atomics.add(progress, job.index, 1);
    const s = own + Math.floor(next() * job.perWorker);
    const r = next();
    if (table.state[s] === EMPTY) {
      const size = sizeOf();
      Atomics.store(table.state, s, BUSY);
      const p = r < 0.2 ? heap.calloc(1, size) : heap.malloc(size);
      if (p === 0) {
        parentPort!.postMessage({ error: `malloc(${size}) returned 0` });
        Atomics.store(table.state, s, EMPTY);
        continue;
      }
      if (r < 0.2 && !filledRight(heap.bytes(p, size), 0)) parentPort!.postMessage({ error: `calloc(${size}) gave bytes that are not zero` });
      heap.bytes(p, size).fill(tag(p, size));
      table.address[s] = p;
      table.size[s] = size;
      Atomics.store(table.state, s, FULL);
    } else {
      const p = table.address[s]!;
      const size = table.size[s]!;
      Atomics.store(table.state, s, BUSY);
      if (!filledRight(heap.bytes(p, size), tag(p, size))) parentPort!.postMessage({ error: `block at ${p} (${size} bytes) lost its pattern` });
      if (r < 0.7) {
        heap.free(p);
        Atomics.store(table.state, s, EMPTY);
      } else {
        const grown = sizeOf();
        const q = heap.realloc(p, grown);
        if (q === 0) {
          Atomics.store(table.state, s, FULL);
          continue;
        }
        if (!filledRight(heap.bytes(q, Math.min(size, grown)), tag(p, size))) parentPort!.postMessage({ error: `realloc lost the bytes of the block at ${p}` });
        heap.bytes(q, grown).fill(tag(q, grown));
        table.address[s] = q;
        table.size[s] = grown;
        Atomics.store(table.state, s, FULL);
      }
    }
  }
}

interface ShortJob {
  role: 'short';
  handle: SharedHeapHandle;
  blocks: number;
  seed: number;
  /** Post the blocks' addresses and end without freeing them, instead of freeing them. */
  keep: boolean;
  /** With keep: free every other block first (into the caches), and post the rest. */
  freeHalf?: boolean;
}

/** Attaches, allocates, frees (or keeps and posts), and ends without close(). */
function short(job: ShortJob): object {
  const heap = Heap.attach(job.handle);
  const next = random(job.seed);
  const held: number[] = [];
  const sizes: number[] = [];
  for (let i = 0; i < job.blocks; i++) {
    const size = 1 + Math.floor(next() * 3000);
    const p = heap.malloc(size);
    heap.bytes(p, size).fill(tag(p, size));
    held.push(p);
    sizes.push(size);
  }
  if (job.keep && job.freeHalf === true) {
    for (let i = 0; i < held.length; i += 2) heap.free(held[i]!);
    return { held: held.filter((_, i) => i % 2 === 1), sizes: sizes.filter((_, i) => i % 2 === 1) };
  }
  if (job.keep) return { held, sizes };
  for (const p of held) heap.free(p);
  return { held: [] };
}

interface LongCallJob {
  role: 'long-call';
  handle: SharedHeapHandle;
  bytes: number;
}

/** Says it is about to, then makes one call that holds the lock for long: a calloc of many fresh pages. */
function longCall(job: LongCallJob): object {
  const heap = Heap.attach(job.handle);
  parentPort!.postMessage({ ready: true });
  const p = heap.calloc(1, job.bytes);
  return { done: p };
}

interface MoveJob {
  role: 'move';
  handle: SharedHeapHandle;
  /** One Float64: the block this worker holds now (0 for none), written as soon as it has it. */
  current: SharedArrayBuffer;
}

/**
 * Says it is ready, then, until it is terminated: a 7 MiB block of its home arena, reallocated to
 * 40 MiB (a large block, so it moves to a mapping of its own outside any lock), freed.
 */
function move(job: MoveJob): void {
  const heap = Heap.attach(job.handle);
  const current = new Float64Array(job.current);
  parentPort!.postMessage({ ready: true });
  for (;;) {
    const p = heap.malloc(7 << 20);
    current[0] = p;
    const q = heap.realloc(p, 40 << 20);
    current[0] = q;
    heap.free(q);
    current[0] = 0;
  }
}

interface ReallocJob {
  role: 'realloc';
  handle: SharedHeapHandle;
  /** The two sizes the block is reallocated between. */
  sizes: [number, number];
  /** One Float64: the block this worker holds now, written as soon as it has it. */
  current: SharedArrayBuffer;
}

/**
 * Says it is ready, then, until it is terminated: one block reallocated from one size to the
 * other and back, each step a move (between slots of two classes, a slot and a block of the
 * arena) or a change in place (a block of the arena shrunk, its tail freed, and grown again).
 */
function reallocs(job: ReallocJob): void {
  const heap = Heap.attach(job.handle);
  const current = new Float64Array(job.current);
  const [a, b] = job.sizes;
  let p = heap.malloc(a);
  current[0] = p;
  parentPort!.postMessage({ ready: true });
  for (;;) {
    p = heap.realloc(p, b);
    current[0] = p;
    p = heap.realloc(p, a);
    current[0] = p;
  }
}

interface ReclaimJob {
  role: 'reclaim';
  handle: SharedHeapHandle;
  /** Int32 0: set by the main thread to let it attach; Int32 1: set here just before attaching. */
  go: SharedArrayBuffer;
}

/**
 * Loads the heap's code, says it is ready, waits for the word to go, then attaches (which reclaims
 * the heaps of ended threads) and asks again, until it is terminated.
 */
function reclaim(job: ReclaimJob): void {
  new Heap().destroy();
  const go = new Int32Array(job.go);
  parentPort!.postMessage({ ready: true });
  Atomics.wait(go, 0, 0);
  Atomics.store(go, 1, 1);
  const heap = Heap.attach(job.handle) as SharedHeap;
  for (;;) heap.threads();
}

if (parentPort !== null) {
  const job = workerData as StressJob | RoundsJob | LoopJob | ShortJob | LongCallJob | MoveJob | ReallocJob | ReclaimJob;
  if (job.role === 'move') move(job);
  else if (job.role === 'realloc') reallocs(job);
  else if (job.role === 'reclaim') reclaim(job);
  else if (job.role === 'loop') loop(job);
  else if (job.role === 'short') parentPort.postMessage(short(job));
  else if (job.role === 'long-call') parentPort.postMessage(longCall(job));
  else parentPort.postMessage(job.role === 'stress' ? stress(job) : rounds(job));
}
