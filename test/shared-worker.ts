// Worker side of test/shared.test.ts (run by its tests, not a suite itself): opens the shared heap
// from its handle and runs one of the roles below, posting what it saw.

import { parentPort, workerData } from 'node:worker_threads';
import { Heap, type SharedHeapHandle } from '../src/index.js';
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
  const sizeOf = (): number => (next() < 0.02 ? 4096 + Math.floor(next() * 60_000) : 1 + Math.floor(next() * 512));
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

if (parentPort !== null) {
  const job = workerData as StressJob | RoundsJob;
  parentPort.postMessage(job.role === 'stress' ? stress(job) : rounds(job));
}
