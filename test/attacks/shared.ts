// Attacks on the shared preset alone: a handle whose control block was tampered with, calls after
// close() (the lock-free paths too), and two threads freeing one block while one thread's cache
// for its size is full.

import { Worker } from 'node:worker_threads';
import { Heap, HeapError, type SharedHeapHandle } from '../../src/index.js';
import type { TestPreset } from '../presets.js';
import { Broken, type AttackCase, type CaseGroup } from './case.js';
import { World } from './world.js';

// The control block's layout (src/heap/shared.ts): 16 Int32 slots, then Float64 slots from byte 64.
const FLOATS_AT = 64;
const F_ADDRESS = 0;
const F_SIZE = 1;
const F_TOP = 2;

function floats(handle: SharedHeapHandle): Float64Array {
  return new Float64Array(handle.control, FLOATS_AT, 16);
}

function isCorrupted(error: unknown): boolean {
  return error instanceof HeapError && error.code === 'ERR_HEAP_CORRUPTED';
}

/** After tampering: each call works or throws ERR_HEAP_CORRUPTED; live blocks of `world` intact. */
function useAfterTamper(world: World, heap: Heap): void {
  const calls: [string, () => unknown][] = [['malloc(40)', () => heap.malloc(40)], ['malloc(5000)', () => heap.malloc(5000)],
    ['malloc(200000)', () => heap.malloc(200_000)], ['check()', () => heap.check()], ['trim()', () => heap.trim()]];
  for (const [what, call] of calls) {
    const p = world.attempt(`${what} on the tampered heap`, call);
    if (typeof p === 'number' && p !== 0) world.adopt(p, what === 'malloc(40)' ? 40 : what === 'malloc(5000)' ? 5000 : 200_000, what);
  }
}

function tamperCases(): AttackCase[] {
  const edits: [string, number, (f: Float64Array) => number][] = [
    ['top far past the arena', F_TOP, (f) => f[F_SIZE]! + 2 ** 20],
    ['top one page past the arena', F_TOP, (f) => f[F_SIZE]! + 4096],
    ['top NaN', F_TOP, () => NaN],
    ['top negative', F_TOP, () => -4096],
    ['top fractional', F_TOP, (f) => f[F_TOP]! + 0.5],
    ['the arena address moved by a page', F_ADDRESS, (f) => f[F_ADDRESS]! + 4096],
    ['the arena address at 0x1000', F_ADDRESS, () => 0x1000],
    ['the arena address NaN', F_ADDRESS, () => NaN],
    ['the arena size 2^40', F_SIZE, () => 2 ** 40],
  ];
  const cases: AttackCase[] = [];
  for (const [label, index, value] of edits) {
    cases.push({
      id: `control block tampered before attach: ${label}`,
      test: 'a tampered control block: attach throws TypeError or the heap reports ERR_HEAP_CORRUPTED, never a crash',
      run() {
        const world = new World({ shared: true });
        world.alloc(40);
        world.alloc(5000);
        const handle = world.heap.handle();
        const f = floats(handle);
        f[index] = value(f);
        let attached: Heap;
        try {
          attached = Heap.attach(handle);
        } catch (error) {
          if (error instanceof TypeError || isCorrupted(error)) return;
          throw new Broken(`attach threw ${String(error)}`);
        }
        useAfterTamper(world, attached);
      },
    });
    cases.push({
      id: `control block tampered after attach, before the next call: ${label}`,
      test: 'a tampered control block: attach throws TypeError or the heap reports ERR_HEAP_CORRUPTED, never a crash',
      run() {
        const world = new World({ shared: true });
        world.alloc(40);
        const handle = world.heap.handle();
        const attached = Heap.attach(handle);
        const p = attached.malloc(5000); // the attached heap now holds the lock's state
        if (p !== 0) world.adopt(p, 5000, 'attached malloc');
        const f = floats(handle);
        f[index] = value(f);
        useAfterTamper(world, world.heap); // this heap reloads the state the other stored
      },
    });
  }
  return cases;
}

function closedCases(): AttackCase[] {
  const calls: [string, (h: Heap, small: number, big: number) => unknown][] = [
    ['malloc(40)', (h) => h.malloc(40)], ['malloc(5000)', (h) => h.malloc(5000)],
    ['free of a small block (the lock-free path)', (h, s) => h.free(s)], ['free of a 5000-byte block', (h, _s, b) => h.free(b)],
    ['realloc', (h, s) => h.realloc(s, 80)], ['bytes', (h, s) => h.bytes(s)], ['calloc', (h) => h.calloc(2, 8)],
  ];
  const cases: AttackCase[] = calls.map(([label, call]) => ({
    id: `${label} after close()`,
    test: 'after close(), every call on that heap throws ERR_HEAP_DESTROYED, lock-free paths too',
    run() {
      const heap = new Heap({ shared: true });
      const attached = Heap.attach(heap.handle());
      const small = heap.malloc(40);
      const big = heap.malloc(5000);
      attached.close();
      try {
        call(attached, small, big);
      } catch (error) {
        if (error instanceof HeapError && error.code === 'ERR_HEAP_DESTROYED') return;
        throw new Broken(`${label} threw ${String(error)}`);
      }
      throw new Broken(`${label} on a closed heap returned`);
    },
  }));
  cases.push({
    id: 'free and malloc of a small block after close(), then check() in the heap still open',
    test: 'after close(), a stray free or malloc strands nothing: the heap still open checks clean',
    run() {
      const heap = new Heap({ shared: true });
      const attached = Heap.attach(heap.handle());
      const small = heap.malloc(40);
      attached.close();
      try { attached.free(small); } catch { /* refused, as it should be */ }
      try { attached.malloc(40); } catch { /* refused */ }
      heap.check();
      const again = Heap.attach(heap.handle()); // may reuse the closed heap's slot
      again.check();
      again.close();
      heap.check();
    },
  });
  return cases;
}

function raceCase(): AttackCase {
  return {
    id: 'two threads free the same 40-byte blocks while one thread\'s cache for the size is full',
    test: 'two threads freeing one block: exactly one succeeds, the other gets ERR_DOUBLE_FREE, and the heap checks clean',
    timeoutMs: 20_000,
    async run() {
      const heap = new Heap({ shared: true });
      const rounds = 400;
      const blocks = Array.from({ length: rounds }, () => heap.malloc(40));
      const barrier = new SharedArrayBuffer(4);
      const file = new URL('./race-worker.js', import.meta.url);
      const start = (fillCache: boolean, drain: boolean): Promise<{ outcomes: string[]; after: string }> => new Promise((resolve, reject) => {
        const worker = new Worker(file, { workerData: { handle: heap.handle(), blocks, barrier, fillCache, drain } });
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      const [full, light] = await Promise.all([start(true, false), start(false, true)]);
      if (full.after || light.after) throw new Broken(`after the race: ${full.after || light.after}`);
      // The loser's error: ERR_DOUBLE_FREE, or ERR_INVALID_POINTER where the winner's free merged
      // the block into a free neighbour, so that its address no longer starts a block.
      for (let i = 0; i < rounds; i++) {
        const pair = [full.outcomes[i], light.outcomes[i]].sort().join(' + ');
        if (pair !== 'ERR_DOUBLE_FREE + freed' && pair !== 'ERR_INVALID_POINTER + freed') {
          throw new Broken(`round ${i}: ${pair} (full cache + lock-free)`);
        }
      }
      heap.check();
      const used = heap.stats().usedBlocks;
      if (used !== 0) throw new Broken(`${used} blocks in use after every block was freed once`);
      heap.destroy();
    },
  };
}

export const sharedGroup: CaseGroup = (preset: TestPreset) =>
  preset.options.shared ? [...tamperCases(), ...closedCases(), raceCase()] : [];
