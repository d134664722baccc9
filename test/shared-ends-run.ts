// Run in a child process by test/shared-ends.test.ts, one scenario per run, so that a heap that
// hung would fail the test by its timeout instead of hanging the suite. Prints one JSON line.
//
//   terminate     workers in tight malloc/calloc/free/realloc loops, terminated at random moments,
//                 round after round, one outliving the others a while; the main thread frees what
//                 they held and goes on
//   long-call     a worker terminated inside one long call that holds the lock
//   short-lived   many workers that attach, allocate, free, and end without close()
//   holder-ends   workers that end holding blocks, which the main thread then frees
//   move-ends     workers terminated while they move a block out of their arena
//   realloc-ends  workers terminated while they reallocate a block back and forth
//   reclaimer-ends  a worker terminated while it reclaims ended threads' heaps

import { Worker } from 'node:worker_threads';
import { Heap, HeapError, type SharedHeap, type SharedThreadStats } from '../src/index.js';
import { random } from '../src/debug/random.js';
import { LARGE_MIN } from '../src/heap/shared-large.js';
import { BUSY, EMPTY, slots, tag } from './shared-worker.js';

const workerFile = new URL('./shared-worker.js', import.meta.url);

function start(data: object): { worker: Worker; ready: Promise<void>; result: Promise<unknown>; errors: string[] } {
  const worker = new Worker(workerFile, { workerData: data });
  const errors: string[] = [];
  let ready!: () => void;
  let done!: (value: unknown) => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const result = new Promise<unknown>((r) => (done = r));
  worker.on('message', (m: { ready?: boolean; error?: string }) => {
    if (m.ready === true) ready();
    else if (m.error !== undefined) errors.push(m.error);
    else done(m);
  });
  worker.on('error', (e) => errors.push(`worker threw: ${String(e)}`));
  worker.on('exit', () => {
    ready();
    done(null);
  });
  return { worker, ready: readyP, result, errors };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * heap.threads() once no more than `open` heaps are open, or after 5 s. A heap counts its thread
 * as ended once the kernel has reaped it, and Bun's worker.terminate() resolves a few milliseconds
 * before that: a look just after it may still find the thread, and the next look takes it back.
 */
async function threadsOnceEnded(heap: SharedHeap, open: number): Promise<SharedThreadStats> {
  const deadline = performance.now() + 5000;
  for (;;) {
    const threads = heap.threads();
    if (threads.open <= open || performance.now() > deadline) return threads;
    await sleep(10);
  }
}

/** Frees every address once; counts those the heap refused as already free or not a block. */
function freeAll(heap: SharedHeap, addresses: Iterable<number>): number {
  let refused = 0;
  for (const p of new Set(addresses)) {
    try {
      heap.free(p);
    } catch (e) {
      if (!(e instanceof HeapError) || (e.code !== 'ERR_DOUBLE_FREE' && e.code !== 'ERR_INVALID_POINTER')) throw e;
      refused++;
    }
  }
  return refused;
}

async function terminate(rounds: number, workers: number): Promise<object> {
  const heap = new Heap({ shared: true }) as unknown as SharedHeap;
  const perWorker = 48;
  const next = random(7);
  const errors: string[] = [];
  const mapped: number[] = [];
  let refused = 0;
  let checks = 0;
  let stalled = 0;
  for (let round = 0; round < rounds; round++) {
    const buffer = new SharedArrayBuffer(16 * workers * perWorker);
    const table = slots(buffer, workers * perWorker);
    const running = [];
    const progress = new Int32Array(new SharedArrayBuffer(4 * workers));
    for (let i = 0; i < workers; i++) {
      running.push(start({ role: 'loop', handle: heap.handle(), slots: buffer, index: i, workers, perWorker, seed: round * 100 + i,
        progress: progress.buffer }));
    }
    await Promise.all(running.map((w) => w.ready));
    await sleep(30 + Math.floor(next() * 200));
    // All but the last die at once; the last must go on (it may have to take the lock over).
    await Promise.all(running.slice(0, -1).map((w) => w.worker.terminate()));
    const before = Atomics.load(progress, workers - 1);
    await sleep(300);
    if (Atomics.load(progress, workers - 1) <= before) stalled++;
    await running[workers - 1]!.worker.terminate();
    for (const w of running) errors.push(...w.errors);
    const held: number[] = [];
    for (let s = 0; s < workers * perWorker; s++) if (table.state[s] !== EMPTY) held.push(table.address[s]!);
    refused += freeAll(heap, held.filter((p) => p !== 0));
    heap.check();
    checks++;
    const p = heap.malloc(1000);
    heap.bytes(p, 1000).fill(tag(p, 1000));
    heap.free(p);
    mapped.push(heap.stats().mapped);
  }
  const threads = await threadsOnceEnded(heap, 1);
  const stats = heap.stats();
  // What the dead workers held serves new requests: three workers' worth of blocks, one at a time.
  // The bytes the arenas and the small-object arena have committed (what `limit` bounds): no public call tells it.
  const committed = (): number => (heap as unknown as { committed(): number }).committed();
  const before = heap.stats().mapped;
  const committedBefore = committed();
  for (let i = 0; i < 3; i++) {
    const w = start({ role: 'short', handle: heap.handle(), blocks: 200, seed: 900 + i, keep: false });
    await w.result;
  }
  const after = heap.stats();
  return { errors, refused, checks, stalled, mapped, inUse: stats.inUse, usedBlocks: stats.usedBlocks, threads,
    reused: { before, after: after.mapped, inUse: after.inUse, committedBefore, committedAfter: committed() } };
}

async function longCall(): Promise<object> {
  const heap = new Heap({ shared: true }) as unknown as SharedHeap;
  const own = heap.malloc(1000);
  const alone = heap.stats().inUse;
  // The largest calloc an arena serves (past it, a mapping of its own, whose fresh pages need no
  // filling): its fill holds the arena's lock for some 130 to 180 ms here.
  const w = start({ role: 'long-call', handle: heap.handle(), bytes: LARGE_MIN - 4096 });
  await w.ready;
  // Terminated once the worker is seen holding the main arena's lock (where a calloc this large
  // is served) for 2 ms on end: past the brief tries of the arenas, inside the fill.
  const lock = (heap as unknown as { arenas: { ints: Int32Array }[] }).arenas[0]!.ints;
  const deadline = performance.now() + 10_000;
  let heldSince = -1;
  for (;;) {
    const now = performance.now();
    if (Atomics.load(lock, 0) === 0) heldSince = -1;
    else if (heldSince < 0) heldSince = now;
    else if (now - heldSince >= 2) break;
    if (now > deadline) throw new Error('the worker was never seen holding the main arena\'s lock');
  }
  await w.worker.terminate();
  const before = performance.now();
  const p = heap.malloc(1000);
  const waited = performance.now() - before;
  heap.check();
  const inUse = heap.stats().inUse;
  heap.free(p);
  heap.free(own);
  return { waited, alone, inUse, threads: await threadsOnceEnded(heap, 1), after: heap.stats().inUse };
}

async function shortLived(count: number, atOnce: number): Promise<object> {
  const heap = new Heap({ shared: true }) as unknown as SharedHeap;
  const mappedAt: number[] = [];
  let started = 0;
  let failures = 0;
  const began = performance.now();
  const runOne = async (): Promise<void> => {
    while (started < count) {
      const seed = started++;
      const w = start({ role: 'short', handle: heap.handle(), blocks: 200, seed, keep: false });
      const result = (await w.result) as { held?: number[] } | null;
      if (result === null || w.errors.length > 0) failures++;
      if (seed % 250 === 0) {
        mappedAt.push(heap.stats().mapped);
        // On stderr, which the test shows when this run times out: how far it got, and when.
        process.stderr.write(`worker ${seed} done after ${(performance.now() - began).toFixed(0)} ms\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: atOnce }, runOne));
  // A heap attached after them all works.
  const last = start({ role: 'short', handle: heap.handle(), blocks: 10, seed: 1, keep: false });
  process.stderr.write(`all ${count} done after ${(performance.now() - began).toFixed(0)} ms\n`);
  const lastResult = await last.result;
  process.stderr.write(`the last one done after ${(performance.now() - began).toFixed(0)} ms\n`);
  const stats = heap.stats();
  heap.check();
  return { failures, lastWorked: lastResult !== null, mappedAt, mapped: stats.mapped, inUse: stats.inUse, usedBlocks: stats.usedBlocks, threads: heap.threads() };
}

async function holderEnds(): Promise<object> {
  const heap = new Heap({ shared: true }) as unknown as SharedHeap;
  const results: { held: number[]; sizes: number[] }[] = [];
  for (let i = 0; i < 4; i++) {
    const w = start({ role: 'short', handle: heap.handle(), blocks: 100, seed: i, keep: true });
    results.push((await w.result) as { held: number[]; sizes: number[] });
    await new Promise<void>((r) => (w.worker.threadId === -1 ? r() : w.worker.once('exit', () => r())));
  }
  let wrong = 0;
  for (const { held, sizes } of results) {
    for (let i = 0; i < held.length; i++) {
      const bytes = heap.bytes(held[i]!, sizes[i]!);
      if (!bytes.every((b) => b === tag(held[i]!, sizes[i]!))) wrong++;
    }
  }
  const inUseHeld = heap.stats().inUse;
  let refused = 0;
  for (const { held } of results) refused += freeAll(heap, held);
  heap.check();
  const stats = heap.stats();
  return { wrong, refused, inUseHeld, inUse: stats.inUse, usedBlocks: stats.usedBlocks, threads: heap.threads() };
}

/**
 * Workers terminated while they move a block out of their arena (realloc outside any lock): each
 * round, the main thread frees the block the worker was holding, and says whether that free was
 * accepted (the worker still held it) and what is in use after the heap reclaimed the worker.
 */
async function moveEnds(rounds: number): Promise<object> {
  const out: { held: boolean; inUse: number; open: number }[] = [];
  for (let round = 0; round < rounds; round++) {
    // A heap a round: what a worker may lose (a block it had not recorded yet) stays in its round.
    const heap = new Heap({ shared: true }) as unknown as SharedHeap;
    const current = new Float64Array(new SharedArrayBuffer(8));
    const w = start({ role: 'move', handle: heap.handle(), current: current.buffer });
    await w.ready;
    await sleep(20 + 7 * round);
    await w.worker.terminate();
    let held = false;
    if (current[0] !== 0) {
      try {
        heap.free(current[0]!);
        held = true;
      } catch (e) {
        if (!(e instanceof HeapError)) throw e;
      }
    }
    const { open } = await threadsOnceEnded(heap, 1); // reclaims the worker
    heap.check();
    out.push({ held, inUse: heap.stats().inUse, open });
    heap.destroy();
  }
  return { rounds: out };
}

/**
 * Workers terminated while they reallocate one block back and forth between two sizes (see
 * `reallocs` in ./shared-worker.ts), `rounds` for each pair of sizes, one heap a pair. After each,
 * the main thread frees the block the worker last recorded; the free is refused when the worker
 * ended inside a realloc that had already freed that block. Once the heap has reclaimed every
 * worker: what is in use, which is at most the blocks those refused frees stand for (a realloc
 * cut short costs at most its one block), and none when every free was accepted.
 */
async function reallocEnds(rounds: number): Promise<object> {
  const pairs: [number, number][] = [[16, 400], [100, 1500], [600, 3000]];
  const out: { sizes: [number, number]; refused: number; usedBlocks: number; inUse: number; open: number }[] = [];
  for (const sizes of pairs) {
    const heap = new Heap({ shared: true }) as unknown as SharedHeap;
    const current = new Float64Array(new SharedArrayBuffer(8));
    let refused = 0;
    for (let round = 0; round < rounds; round++) {
      const w = start({ role: 'realloc', handle: heap.handle(), sizes, current: current.buffer });
      await w.ready;
      await sleep(2 + (round * 7) % 23);
      await w.worker.terminate();
      try {
        heap.free(current[0]!);
      } catch (e) {
        if (!(e instanceof HeapError)) throw e;
        refused++;
      }
    }
    const { open } = await threadsOnceEnded(heap, 1);
    heap.check();
    const stats = heap.stats();
    out.push({ sizes, refused, usedBlocks: stats.usedBlocks, inUse: stats.inUse, open });
    heap.destroy();
  }
  return { pairs: out };
}

/**
 * Rounds of forty workers that end without close(), holding blocks and with blocks in their
 * caches; then a worker let go to attach (which reclaims them) and terminated `delays[round]` ms
 * later, likely in the middle of that. The main thread then reclaims what is left, and frees what
 * the workers held.
 */
async function reclaimerEnds(delays: number[]): Promise<object> {
  const heap = new Heap({ shared: true }) as unknown as SharedHeap;
  const out: { threads: SharedThreadStats; inUse: number; usedBlocks: number }[] = [];
  for (const delay of delays) {
    // All at once, so that they end together and none reclaims another.
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      start({ role: 'short', handle: heap.handle(), blocks: 60, seed: i, keep: true, freeHalf: true }).result));
    await sleep(150); // past the period in which attach does not look for ended threads again
    const go = new Int32Array(new SharedArrayBuffer(8));
    const reclaimer = start({ role: 'reclaim', handle: heap.handle(), go: go.buffer });
    await reclaimer.ready;
    Atomics.store(go, 0, 1);
    Atomics.notify(go, 0);
    while (Atomics.load(go, 1) === 0);
    const t = performance.now();
    while (performance.now() - t < delay);
    await reclaimer.worker.terminate();
    const threads = await threadsOnceEnded(heap, 1);
    heap.check();
    for (const result of results) freeAll(heap, (result as { held: number[] }).held);
    const stats = heap.stats();
    out.push({ threads, inUse: stats.inUse, usedBlocks: stats.usedBlocks });
  }
  return { rounds: out };
}

const [scenario, a, b] = process.argv.slice(2);
const run = scenario === 'terminate' ? terminate(Number(a ?? 6), Number(b ?? 3))
  : scenario === 'long-call' ? longCall()
    : scenario === 'short-lived' ? shortLived(Number(a ?? 2000), Number(b ?? 4))
      : scenario === 'holder-ends' ? holderEnds()
        : scenario === 'move-ends' ? moveEnds(Number(a ?? 8))
          : scenario === 'realloc-ends' ? reallocEnds(Number(a ?? 30))
          : scenario === 'reclaimer-ends' ? reclaimerEnds([0.5, 2, 8, 25])
        : Promise.reject(new Error(`unknown scenario ${scenario}`));
run.then((result) => {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}, (e: unknown) => {
  process.stdout.write(`${JSON.stringify({ thrown: String(e), stack: (e as Error).stack })}\n`);
  process.exit(0);
});
