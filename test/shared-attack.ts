// npm run stress:shared -- [--rounds N] [--workers W] [--round-ms MS] [--seed S] [--early-kills] [--json]
//
// An attack on the shared preset, for as long as asked: the stress that issue 14's design must
// survive, with every block's bytes checked. Not a suite of `npm test` (test/shared-attack.test.ts
// runs two short rounds of it); run it after any change to the shared preset, under Node and Bun.
//
// - One shared heap and a table of places in a SharedArrayBuffer: each place empty, holding a block
//   (its address and size), or claimed by a worker (2 + the worker's number) with a
//   compare-and-swap, so that any worker frees, reallocates or checks any other's blocks.
// - Each round, W workers make random calls: malloc and calloc from 1 B to 42 MiB (most small,
//   few past 256 KiB; blocks past 64 KiB carry their pattern in three 4 KiB windows), realloc,
//   free, usableSize, and now and then trim(), check(), and close() then Heap.attach() again.
//   Every block holds a byte pattern from its address and size, checked before each change.
// - Meanwhile the main thread terminates a running worker at random moments (each replaced by a
//   new one), and with --early-kills also starts workers that it terminates 0 to 25 ms after
//   they start, inside their attach (koffi#190: a worker terminated while koffi loads can abort
//   the whole process with a failed napi_throw; that is koffi's, not the heap's).
// - After each round: check(), and every block a place holds must be a live block of its size
//   with its pattern. A place a terminated worker held is put right from where the worker stood,
//   or given up when it was inside a call that changes the block (that call may have lost it:
//   the design's stated cost). A worker that makes no progress for 10 s
//   is a hang.
// - At the end: every block freed, check(), trim(), the heap's stats, and a last round that destroy()s
//   the heap under running workers, whose every call must then throw ERR_HEAP_DESTROYED.
//
// Prints one line per round and a summary (with --json, then the summary as one JSON line); the
// exit status is 1 when anything was found.

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { Heap, HeapError, type SharedHeap, type SharedHeapHandle } from '../src/index.js';
import { random } from '../src/debug/random.js';
import { tag } from './shared-worker.js';

const PLACES = 4096;
/** Places whose blocks may be large (past 256 KiB): at most this many such blocks live at once. */
const LARGE_PLACES = 24;
const EMPTY = 0;
const FULL = 1;
/** A place claimed by worker k holds 2 + k. */
const CLAIMED = 2;
/** Blocks up to this size carry their pattern whole; larger ones in three windows of WINDOW bytes. */
const WHOLE = 64 * 1024;
const WINDOW = 4096;
/** Workers numbered at once (numbers are reused past it). */
const MAX_WORKERS = 1024;
/**
 * Where a worker stands with the place it holds, so that the place of a terminated worker is put
 * right: as it was before the claim (IDLE), holding the block the table records (FULL_NOW), empty
 * (EMPTY_NOW), or unknown, inside a call that changes its block (IN_CALL: the place is given up).
 */
const IDLE = 0;
const IN_CALL = 1;
const FULL_NOW = 2;
const EMPTY_NOW = 3;

interface Table {
  readonly address: Float64Array;
  readonly size: Float64Array;
  readonly state: Int32Array;
  /** [0]: stop flag (1: finish the call in hand and end); [1 + k]: worker k's calls so far. */
  readonly control: Int32Array;
  /** Per worker: where it stands with the place it holds (IDLE...), and that place's state before its claim. */
  readonly phase: Int32Array;
  readonly was: Int32Array;
}

function table(buffer: SharedArrayBuffer): Table {
  return {
    address: new Float64Array(buffer, 0, PLACES),
    size: new Float64Array(buffer, 8 * PLACES, PLACES),
    state: new Int32Array(buffer, 16 * PLACES, PLACES),
    control: new Int32Array(buffer, 20 * PLACES, 1 + MAX_WORKERS),
    phase: new Int32Array(buffer, 20 * PLACES + 4 * (1 + MAX_WORKERS), MAX_WORKERS),
    was: new Int32Array(buffer, 20 * PLACES + 4 * (1 + 2 * MAX_WORKERS), MAX_WORKERS),
  };
}

const tableBytes = 20 * PLACES + 4 * (1 + 3 * MAX_WORKERS);

/** The ranges of a block of `size` bytes that carry its pattern: [start, end) pairs. */
function windows(size: number): number[] {
  if (size <= WHOLE) return [0, size];
  const mid = Math.floor(size / 2 / 16) * 16;
  return [0, WINDOW, mid, mid + WINDOW, size - WINDOW, size];
}

function fillPattern(heap: Heap, ptr: number, size: number): void {
  const w = windows(size);
  const byte = tag(ptr, size);
  for (let i = 0; i < w.length; i += 2) heap.bytes(ptr + w[i]!, w[i + 1]! - w[i]!).fill(byte);
}

/** Where block `ptr` of `size` bytes does not hold `byte` in its windows (or up to `upTo`), or -1. */
function patternFault(heap: Heap, ptr: number, size: number, byte: number, upTo = size): number {
  const w = windows(size);
  for (let i = 0; i < w.length; i += 2) {
    const from = w[i]!;
    const to = Math.min(w[i + 1]!, upTo);
    if (to <= from) continue;
    const bytes = heap.bytes(ptr + from, to - from);
    for (let j = 0; j < bytes.length; j++) if (bytes[j] !== byte) return from + j;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// The workers.

interface Job {
  readonly role: 'attack' | 'attacher';
  readonly handle: SharedHeapHandle;
  readonly table: SharedArrayBuffer;
  readonly index: number;
  readonly seed: number;
  /** The destroy round: the heap is destroyed under the worker, whose calls must all throw ERR_HEAP_DESTROYED. */
  readonly destroying: boolean;
}

function sizeFor(next: () => number, place: number): number {
  const r = next();
  if (place < LARGE_PLACES && r < 0.3) return 256 * 1024 + Math.floor(next() * 42 * 1024 * 1024);
  if (r < 0.6) return 1 + Math.floor(next() * 512);
  if (r < 0.9) return 513 + Math.floor(next() * 3584);
  return 4097 + Math.floor(next() * 252 * 1024);
}

function attack(job: Job): void {
  const t = table(job.table);
  const next = random(job.seed);
  const me = CLAIMED + job.index;
  let heap = Heap.attach(job.handle) as unknown as SharedHeap;
  parentPort!.postMessage({ ready: true });
  const report = (what: string): void => parentPort!.postMessage({ finding: `worker ${job.index}: ${what}` });
  for (let calls = 0; Atomics.load(t.control, 0) === 0; calls++) {
    Atomics.store(t.control, 1 + job.index, calls);
    try {
      const r = next();
      if (r < 0.0002) {
        heap.trim();
        continue;
      }
      if (r < 0.0003) {
        heap.check();
        continue;
      }
      if (r < 0.0004) {
        heap.close();
        heap = Heap.attach(job.handle) as unknown as SharedHeap;
        continue;
      }
      const place = Math.floor(next() * PLACES);
      const was = Atomics.load(t.state, place);
      if ((was !== EMPTY && was !== FULL) || Atomics.compareExchange(t.state, place, was, me) !== was) continue;
      t.was[job.index] = was;
      Atomics.store(t.phase, job.index, IDLE);
      let state = was;
      try {
        if (was === EMPTY) {
          const size = sizeFor(next, place);
          const calloc = next() < 0.2;
          Atomics.store(t.phase, job.index, IN_CALL);
          const ptr = calloc ? heap.calloc(1, size) : heap.malloc(size);
          if (ptr === 0) {
            report(`${calloc ? 'calloc' : 'malloc'}(${size}) returned 0`);
            Atomics.store(t.phase, job.index, EMPTY_NOW);
            continue;
          }
          if (calloc && patternFault(heap, ptr, size, 0) >= 0) report(`calloc(1, ${size}) at ${ptr} is not zero at byte ${patternFault(heap, ptr, size, 0)}`);
          fillPattern(heap, ptr, size);
          t.address[place] = ptr;
          t.size[place] = size;
          Atomics.store(t.phase, job.index, FULL_NOW);
          state = FULL;
          continue;
        }
        const ptr = t.address[place]!;
        const size = t.size[place]!;
        const fault = patternFault(heap, ptr, size, tag(ptr, size));
        if (fault >= 0) report(`the block at ${ptr} (${size} bytes) lost its pattern at byte ${fault}`);
        const op = next();
        if (op < 0.5) {
          Atomics.store(t.phase, job.index, IN_CALL);
          heap.free(ptr);
          Atomics.store(t.phase, job.index, EMPTY_NOW);
          state = EMPTY;
        } else if (op < 0.9) {
          const grown = sizeFor(next, place);
          Atomics.store(t.phase, job.index, IN_CALL);
          const q = heap.realloc(ptr, grown);
          if (q === 0) {
            report(`realloc(${ptr}, ${grown}) returned 0`);
            Atomics.store(t.phase, job.index, FULL_NOW);
            continue;
          }
          // The bytes kept: the old block's, up to the new size, as far as its first window carried its pattern.
          const lost = patternFault(heap, q, grown, tag(ptr, size), Math.min(grown, size <= WHOLE ? size : WINDOW));
          if (lost >= 0) report(`realloc of the block at ${ptr} (${size} to ${grown} bytes) lost byte ${lost}`);
          fillPattern(heap, q, grown);
          t.address[place] = q;
          t.size[place] = grown;
          Atomics.store(t.phase, job.index, FULL_NOW);
        } else if (heap.usableSize(ptr) < size) {
          report(`usableSize of the block at ${ptr} is ${heap.usableSize(ptr)}, below its ${size} bytes`);
        }
      } finally {
        Atomics.store(t.state, place, state);
      }
    } catch (e) {
      if (job.destroying && e instanceof HeapError && e.code === 'ERR_HEAP_DESTROYED') break;
      report(`threw ${e instanceof HeapError ? e.code : ''} ${String(e)}`);
    }
  }
  if (job.destroying) {
    // Stopped before a call of its own met the destroyed heap (a long call in hand when destroy() came): one more.
    try {
      heap.malloc(16);
      report('malloc after destroy() returned a block');
    } catch (e) {
      if (e instanceof HeapError && e.code === 'ERR_HEAP_DESTROYED') parentPort!.postMessage({ destroyed: true });
      else report(`malloc after destroy() threw ${String(e)}`);
    }
  } else {
    heap.close();
  }
  parentPort!.postMessage({ done: true });
}

if (!isMainThread) {
  const job = workerData as Job;
  // After the module's evaluation, so that a terminate lands in the heap's code and not in the loader's.
  setImmediate(() => {
    if (job.role === 'attacher') {
      parentPort!.postMessage({ imported: true });
      Heap.attach(job.handle).close();
    } else {
      attack(job);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The main thread.

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Running {
  readonly worker: Worker;
  readonly index: number;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  terminated: boolean;
}

class Attack {
  readonly heap = new Heap({ shared: true }) as unknown as SharedHeap;
  readonly buffer = new SharedArrayBuffer(tableBytes);
  readonly t = table(this.buffer);
  readonly findings: string[] = [];
  readonly next: () => number;
  workersStarted = 0;
  terminations = 0;
  lostPlaces = 0;
  /** Workers of the destroy round whose call threw ERR_HEAP_DESTROYED. */
  sawDestroyed = 0;

  constructor(readonly seed: number, readonly earlyKills: boolean) {
    this.next = random(seed);
  }

  find(what: string): void {
    this.findings.push(what);
    process.stderr.write(`FINDING: ${what}\n`);
  }

  start(destroying = false): Running {
    const index = this.workersStarted++ % MAX_WORKERS;
    Atomics.store(this.t.control, 1 + index, 0);
    const job: Job = { role: 'attack', handle: this.heap.handle(), table: this.buffer, index, seed: this.seed * 7919 + this.workersStarted, destroying };
    const worker = new Worker(new URL(import.meta.url), { workerData: job });
    let ready!: () => void;
    const running: Running = {
      worker, index, terminated: false,
      ready: new Promise<void>((r) => (ready = r)),
      exited: new Promise<void>((r) => worker.once('exit', () => {
        ready();
        r();
      })),
    };
    worker.on('message', (m: { ready?: boolean; finding?: string; destroyed?: boolean }) => {
      if (m.ready === true) ready();
      if (m.destroyed === true) this.sawDestroyed++;
      if (m.finding !== undefined) this.find(m.finding);
    });
    worker.on('error', (e) => {
      if (!running.terminated) this.find(`worker ${index} died: ${String(e)}`);
    });
    return running;
  }

  /** A worker that attaches and is terminated 0 to 25 ms after its module has loaded. */
  async attacher(): Promise<void> {
    const job: Job = { role: 'attacher', handle: this.heap.handle(), table: this.buffer, index: -1, seed: 0, destroying: false };
    const worker = new Worker(new URL(import.meta.url), { workerData: job });
    worker.on('error', () => {});
    await new Promise<void>((r) => {
      worker.once('message', () => r());
      worker.once('exit', () => r());
    });
    await sleep(Math.floor(this.next() * 25));
    await worker.terminate();
  }

  /** One round: `count` workers for `ms`, one terminated (and replaced) at random moments. */
  async round(count: number, ms: number): Promise<void> {
    const running: Running[] = [];
    for (let i = 0; i < count; i++) running.push(this.start());
    const killed: Running[] = [];
    const ends = performance.now() + ms;
    while (performance.now() < ends) {
      await sleep(20 + Math.floor(this.next() * 200));
      const live = running.filter((r) => !r.terminated);
      const victim = live[Math.floor(this.next() * live.length)];
      if (victim !== undefined) {
        await victim.ready;
        await sleep(Math.floor(this.next() * 10));
        victim.terminated = true;
        this.terminations++;
        await victim.worker.terminate();
        killed.push(victim);
        running.push(this.start());
      }
      if (this.earlyKills && this.next() < 0.5) await this.attacher();
    }
    await this.stop(running.filter((r) => !r.terminated));
    // Places a terminated worker held: put right, but for one whose block was inside a call (given up).
    const dead = new Set(killed.map((r) => CLAIMED + r.index));
    for (let p = 0; p < PLACES; p++) {
      const s = this.t.state[p]!;
      if (s === EMPTY || s === FULL) continue;
      if (!dead.has(s)) this.find(`place ${p} is still claimed by worker ${s - CLAIMED}, which ended`);
      const k = s - CLAIMED;
      const phase = this.t.phase[k]!;
      this.t.state[p] = phase === FULL_NOW ? FULL : phase === IDLE ? this.t.was[k]! : EMPTY;
      if (phase === IN_CALL || !dead.has(s)) this.lostPlaces++;
    }
  }

  /** Asks the workers to end, and finds any that makes no progress for 10 s (a hang). */
  async stop(running: Running[]): Promise<void> {
    Atomics.store(this.t.control, 0, 1);
    for (const r of running) {
      let last = -1;
      let since = performance.now();
      for (;;) {
        const exited = await Promise.race([r.exited.then(() => true), sleep(100).then(() => false)]);
        if (exited) break;
        const calls = Atomics.load(this.t.control, 1 + r.index);
        if (calls !== last) {
          last = calls;
          since = performance.now();
        } else if (performance.now() - since > 10_000) {
          this.find(`worker ${r.index} made no progress for 10 s after ${calls} calls (a hang)`);
          await r.worker.terminate();
          break;
        }
      }
    }
    Atomics.store(this.t.control, 0, 0);
  }

  /** check(), and every block a place holds is a live block of its size with its pattern. */
  verify(when: string): number {
    try {
      this.heap.check();
    } catch (e) {
      this.find(`${when}: check() threw ${String(e)}`);
    }
    let held = 0;
    for (let p = 0; p < PLACES; p++) {
      if (this.t.state[p] !== FULL) continue;
      held++;
      const ptr = this.t.address[p]!;
      const size = this.t.size[p]!;
      try {
        if (this.heap.usableSize(ptr) < size) this.find(`${when}: the block at ${ptr} has ${this.heap.usableSize(ptr)} usable bytes, below its ${size}`);
        const fault = patternFault(this.heap, ptr, size, tag(ptr, size));
        if (fault >= 0) this.find(`${when}: the block at ${ptr} (${size} bytes) lost its pattern at byte ${fault}`);
      } catch (e) {
        this.find(`${when}: the block at ${ptr} (${size} bytes) is not a live block: ${String(e)}`);
      }
    }
    return held;
  }

  /** Frees every block the places hold; each must be freed once without error. */
  freeAll(): void {
    for (let p = 0; p < PLACES; p++) {
      if (this.t.state[p] !== FULL) continue;
      try {
        this.heap.free(this.t.address[p]!);
      } catch (e) {
        this.find(`free of the block at ${this.t.address[p]} threw ${String(e)}`);
      }
      this.t.state[p] = EMPTY;
    }
  }

  /** Workers running while the heap is destroyed: each call after it throws ERR_HEAP_DESTROYED, none hangs. */
  async destroyRound(count: number): Promise<void> {
    const running = Array.from({ length: count }, () => this.start(true));
    await Promise.all(running.map((r) => r.ready));
    await sleep(50 + Math.floor(this.next() * 200));
    this.heap.destroy();
    await this.stop(running);
    if (this.sawDestroyed !== count) this.find(`after destroy(), ${this.sawDestroyed} of ${count} workers saw ERR_HEAP_DESTROYED`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' }, workers: { type: 'string' }, 'round-ms': { type: 'string' }, seed: { type: 'string' },
      'early-kills': { type: 'boolean' }, json: { type: 'boolean' },
    },
  });
  const rounds = Number(values.rounds ?? 10);
  const workers = Number(values.workers ?? 12);
  const ms = Number(values['round-ms'] ?? 2000);
  const seed = Number(values.seed ?? Date.now() % 1_000_000);
  if (![rounds, workers, ms, seed].every(Number.isSafeInteger) || rounds < 1 || workers < 1 || workers > 64 || ms < 1) {
    console.error('usage: npm run stress:shared -- [--rounds N] [--workers W (1-64)] [--round-ms MS] [--seed S] [--early-kills]');
    process.exit(2);
  }
  console.log(`shared-heap attack: seed ${seed}, ${rounds} rounds of ${workers} workers for ${ms} ms${values['early-kills'] ? ', early kills' : ''}`);
  const a = new Attack(seed, values['early-kills'] ?? false);
  const started = performance.now();
  for (let r = 1; r <= rounds; r++) {
    await a.round(workers, ms);
    const held = a.verify(`after round ${r}`);
    const s = a.heap.stats();
    console.log(`round ${r}: ${held} blocks held, ${a.terminations} workers terminated, ${a.lostPlaces} places given up (inside a call); ` +
      `in use ${(s.inUse / 2 ** 20).toFixed(1)} MiB, mapped ${(s.mapped / 2 ** 20).toFixed(1)} MiB; ${a.findings.length} findings`);
  }
  a.freeAll();
  a.verify('after every block was freed');
  a.heap.trim();
  const s = a.heap.stats();
  const threads = a.heap.threads();
  console.log(`after the frees and trim(): ${s.usedBlocks} blocks in use (${(s.inUse / 2 ** 20).toFixed(1)} MiB, lost with the ${a.lostPlaces} places given up at most), ` +
    `mapped ${(s.mapped / 2 ** 20).toFixed(1)} MiB, peak ${(s.peakMapped / 2 ** 20).toFixed(1)} MiB; heaps reclaimed ${threads.reclaimed}`);
  await a.destroyRound(Math.min(workers, 4));
  console.log(`${a.findings.length === 0 ? 'no findings' : `${a.findings.length} findings`} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (values.json === true) {
    console.log(JSON.stringify({
      findings: a.findings, terminations: a.terminations, lostPlaces: a.lostPlaces, usedBlocks: s.usedBlocks,
      reclaimed: threads.reclaimed, open: threads.open, sawDestroyed: a.sawDestroyed,
    }));
  }
  process.exitCode = a.findings.length === 0 ? 0 : 1;
}

// No top-level await: a module that has one is evaluated asynchronously in every worker too, and
// Node 20 aborts the process (a failed V8 check in ExecuteAsyncModule) when a worker is
// terminated in the middle of that.
if (isMainThread) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
