// Worker side of the shared-heap double-free race (attacks/shared.ts): attaches to the heap, fills
// its own cache for 40-byte blocks when told to (so that its frees of that size take the locked
// path), then frees the same blocks as its twin, in lockstep, and posts what happened.

import { parentPort, workerData } from 'node:worker_threads';
import { Heap, HeapError, type SharedHeapHandle } from '../../src/index.js';

interface Job {
  handle: SharedHeapHandle;
  blocks: number[];
  barrier: SharedArrayBuffer;
  fillCache: boolean;
  /** Take back, by malloc, a block this worker's cache got from winning a race. */
  drain: boolean;
}

const job = workerData as Job;
const heap = Heap.attach(job.handle);
const held: number[] = [];
if (job.fillCache) {
  const mine = Array.from({ length: 8 }, () => heap.malloc(40));
  for (const p of mine) heap.free(p); // 8 blocks: this thread's cache for the size is full
}
const barrier = new Int32Array(job.barrier);
const outcomes: string[] = [];
/** Waits until both workers have reached `point` (two points a round: before the free, after it). */
const meet = (point: number): void => {
  Atomics.add(barrier, 0, 1);
  while (Atomics.load(barrier, 0) < 2 * point);
};
job.blocks.forEach((p, i) => {
  meet(2 * i + 1);
  let freed = false;
  try {
    heap.free(p);
    freed = true;
    outcomes.push('freed');
  } catch (e) {
    outcomes.push(e instanceof HeapError ? e.code : `${(e as Error).name}: ${(e as Error).message}`);
  }
  // Only once the twin's free of p is over: a block taken back sooner could be p itself, live
  // again, and the twin's free of it would then rightly succeed.
  meet(2 * i + 2);
  if (freed && job.drain) held.push(heap.malloc(40));
});
let after = '';
try {
  for (const p of held) heap.free(p);
  for (let i = 0; i < 20; i++) heap.free(heap.malloc(40));
} catch (e) {
  after = `${(e as Error).name} ${String((e as { code?: unknown }).code)}: ${(e as Error).message}`;
}
heap.close();
parentPort!.postMessage({ outcomes, after });
