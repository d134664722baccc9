// npm run bench:shared: throughput of one heap shared by 1 and 2 worker threads, against glibc's
// malloc/free through koffi (thread-safe, with per-thread caches of its own) in the same run.
// Each worker allocates and frees blocks at random in a window of 256 of its own, once to warm up
// and once timed; the figure is operations per microsecond over all workers (each worker times its
// own loop, the slowest bounds the run), the median of five runs. Two mixes: 16 to 512 bytes
// (small-object pages only), and 16 to 2,048 bytes (three in four of them blocks of the arenas,
// which the threads' caches hold when freed). Then one thread's 64-byte pair in the shared heap
// against the unshared fast preset's, and its 64 MiB pair against the fast preset's and glibc's.

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { cpus } from 'node:os';
import koffi from 'koffi';
import { Heap, type SharedHeapHandle } from '../src/index.js';
import { random } from '../src/debug/random.js';
import { runtimeName } from './runtime.js';

const OPS = 2_000_000;
const WINDOW = 256;
const RUNS = 5;

/** Request sizes: from `least`, `span` sizes up. */
interface Mix {
  readonly name: string;
  readonly least: number;
  readonly span: number;
}

const MIXES: readonly Mix[] = [
  { name: '16 to 512 bytes (small-object pages only)', least: 16, span: 497 },
  { name: '16 to 2,048 bytes (three in four from the arenas)', least: 16, span: 2033 },
];

interface Job {
  readonly allocator: 'ffi-heap' | 'glibc';
  readonly handle: SharedHeapHandle | null;
  readonly seed: number;
  readonly mix: Mix;
}

/** glibc's malloc and free, bound through koffi in this thread. */
function glibc(): { malloc: (size: number) => number; free: (ptr: number) => void } {
  const libc = koffi.load('libc.so.6');
  return {
    malloc: libc.func('intptr_t malloc(size_t size)') as (size: number) => number,
    free: libc.func('void free(intptr_t ptr)') as (ptr: number) => void,
  };
}

/** One worker's share: OPS mallocs or frees; returns the milliseconds it took. */
function work(job: Job): number {
  let malloc: (size: number) => number;
  let free: (ptr: number) => void;
  let close = (): void => {};
  if (job.allocator === 'ffi-heap') {
    const heap = Heap.attach(job.handle!);
    malloc = (size) => heap.malloc(size);
    free = (ptr) => heap.free(ptr);
    close = () => heap.close();
  } else {
    ({ malloc, free } = glibc());
  }
  const next = random(job.seed);
  const held = new Float64Array(WINDOW);
  const { least, span } = job.mix;
  const loop = (ops: number): void => {
    for (let i = 0; i < ops; i++) {
      const s = Math.floor(next() * WINDOW);
      if (held[s] === 0) {
        held[s] = malloc(least + Math.floor(next() * span));
      } else {
        free(held[s]!);
        held[s] = 0;
      }
    }
  };
  loop(OPS); // warm-up: unoptimized code at first, and the heap's growth
  const started = performance.now();
  loop(OPS);
  const ms = performance.now() - started;
  for (const p of held) if (p !== 0) free(p);
  close();
  return ms;
}

/**
 * `count` workers, each making the calls of seed `seed`: the same work for each, so that the
 * slowest worker bounds the run for the work and not for its luck (one sequence of this mix takes
 * half as long again as another in the same heap).
 */
function runWorkers(allocator: Job['allocator'], count: number, heap: Heap | null, mix: Mix, seed: number): Promise<number> {
  return Promise.all(Array.from({ length: count }, () => new Promise<number>((resolve, reject) => {
    const job: Job = { allocator, handle: heap?.handle() ?? null, seed, mix };
    const worker = new Worker(new URL(import.meta.url), { workerData: job });
    worker.once('message', resolve);
    worker.once('error', reject);
  }))).then((times) => Math.max(...times));
}

async function main(): Promise<void> {
  console.log(`Shared heap throughput, ${runtimeName()}, ${cpus().length} cores: ${OPS.toLocaleString('en')} operations a worker, median of ${RUNS} (slowest-fastest run)`);
  for (const mix of MIXES) await throughput(mix);
  // In a worker of its own: in this thread, the heaps made and checked above leave JIT feedback
  // that made the shared heap's pair 1.2 to 2.9 times the unshared one's from run to run.
  console.log(await new Promise<string>((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: 'pair' });
    worker.once('message', resolve);
    worker.once('error', reject);
  }));
}

/** The table of one mix: 1 and 2 workers, each allocator, and the 2-over-1 ratios. */
async function throughput(mix: Mix): Promise<void> {
  const rows: string[][] = [];
  const medians: number[][] = [];
  for (const count of [1, 2]) {
    const rates: Record<string, number> = {};
    const spreads: Record<string, string> = {};
    for (const allocator of ['ffi-heap', 'glibc'] as const) {
      const times: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const heap = allocator === 'ffi-heap' ? new Heap({ shared: true }) : null;
        const ms = await runWorkers(allocator, count, heap, mix, r + 1);
        if (heap !== null) {
          heap.check();
          if (heap.stats().usedBlocks !== 0) throw new Error('blocks were left');
          heap.destroy();
        }
        times.push(ms);
      }
      times.sort((a, b) => a - b);
      const rate = (ms: number): number => (count * OPS) / (ms * 1000);
      rates[allocator] = rate(times[RUNS >> 1]!);
      spreads[allocator] = `${rates[allocator]!.toFixed(1)} (${rate(times[RUNS - 1]!).toFixed(1)}-${rate(times[0]!).toFixed(1)})`;
    }
    medians.push([rates['ffi-heap']!, rates.glibc!]);
    rows.push([`${count} worker${count > 1 ? 's' : ''}`, spreads['ffi-heap']!, spreads.glibc!, (rates['ffi-heap']! / rates.glibc!).toFixed(2)]);
  }
  console.log(`\nBlocks of ${mix.name}:\n`);
  console.log('| workers | ffi-heap (ops/µs) | glibc via koffi (ops/µs) | ffi-heap ÷ glibc via koffi |');
  console.log('|---|---:|---:|---:|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  console.log(`\n2 workers ÷ 1 worker: ffi-heap ${(medians[1]![0]! / medians[0]![0]!).toFixed(2)}, glibc via koffi ${(medians[1]![1]! / medians[0]![1]!).toFixed(2)}`);
}

// One thread's 64-byte malloc+free pair, shared heap against the unshared fast preset.
const PAIRS = 2_000_000;
const PAIR_ROUNDS = 11;

/**
 * A loop of `n` pairs with call sites of its own: one per heap, so that each sees one class of heap
 * (made from source, as one function written here would share its call sites between the two).
 */
function pairLoop(): (heap: Heap, n: number) => number {
  return new Function('heap', 'n', 'let sink = 0; for (let i = 0; i < n; i++) { const p = heap.malloc(64); sink += p & 1; heap.free(p); } return sink;') as
    (heap: Heap, n: number) => number;
}

function singleThreadPair(): string {
  const shared = new Heap({ shared: true });
  const fast = new Heap();
  const sharedPairs = pairLoop();
  const fastPairs = pairLoop();
  sharedPairs(shared, PAIRS);
  fastPairs(fast, PAIRS);
  const ratios: number[] = [];
  const times: [number[], number[]] = [[], []];
  for (let r = 0; r < PAIR_ROUNDS; r++) {
    let t = performance.now();
    sharedPairs(shared, PAIRS);
    const a = performance.now() - t;
    t = performance.now();
    fastPairs(fast, PAIRS);
    const b = performance.now() - t;
    times[0].push((a * 1e6) / PAIRS);
    times[1].push((b * 1e6) / PAIRS);
    ratios.push(a / b);
  }
  const median = (v: number[]): string => [...v].sort((x, y) => x - y)[v.length >> 1]!.toFixed(2);
  const range = (v: number[]): string => `${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)}`;
  shared.destroy();
  fast.destroy();
  return `\nOne thread's 64-byte pair, median of ${PAIR_ROUNDS} alternating rounds of ${PAIRS.toLocaleString('en')} (min-max): ` +
    `shared ${median(times[0])} ns (${range(times[0])}), unshared ${median(times[1])} ns (${range(times[1])}), ` +
    `ratio ${median(ratios)} (${range(ratios)})`;
}

// One thread's pair of a large block (a mapping of its own in both presets and in glibc).
const LARGE_BYTES = 64 * 1024 * 1024;
const LARGE_PAIRS = 2_000;
const LARGE_ROUNDS = 7;

/**
 * The 64 MiB malloc+free pair: the shared preset (its table of large blocks under the global
 * lock), the fast preset and glibc's malloc through koffi, in alternating rounds; each figure the
 * median time of a pair, and its ratio to glibc's in the same round.
 */
function largePair(): string {
  const { malloc: cMalloc, free: cFree } = glibc();
  const shared = new Heap({ shared: true });
  const fast = new Heap();
  const loops = [
    (n: number): void => { for (let i = 0; i < n; i++) shared.free(shared.malloc(LARGE_BYTES)); },
    (n: number): void => { for (let i = 0; i < n; i++) fast.free(fast.malloc(LARGE_BYTES)); },
    (n: number): void => { for (let i = 0; i < n; i++) cFree(cMalloc(LARGE_BYTES)); },
  ];
  for (const loop of loops) loop(LARGE_PAIRS / 10);
  const times: number[][] = [[], [], []];
  const ratios: number[][] = [[], []];
  for (let r = 0; r < LARGE_ROUNDS; r++) {
    const round = loops.map((loop) => {
      const t = performance.now();
      loop(LARGE_PAIRS);
      return ((performance.now() - t) * 1e3) / LARGE_PAIRS;
    });
    for (let k = 0; k < 3; k++) times[k]!.push(round[k]!);
    ratios[0]!.push(round[0]! / round[2]!);
    ratios[1]!.push(round[1]! / round[2]!);
  }
  shared.destroy();
  fast.destroy();
  const median = (v: number[]): number => [...v].sort((x, y) => x - y)[v.length >> 1]!;
  const range = (v: number[], digits: number): string => `${Math.min(...v).toFixed(digits)}-${Math.max(...v).toFixed(digits)}`;
  const µs = (v: number[]): string => `${median(v).toFixed(2)} µs (${range(v, 2)})`;
  return `\nOne thread's 64 MiB pair, median of ${LARGE_ROUNDS} alternating rounds of ${LARGE_PAIRS.toLocaleString('en')} (min-max): ` +
    `shared ${µs(times[0]!)}, unshared ${µs(times[1]!)}, glibc via koffi ${µs(times[2]!)}; ÷ glibc via koffi: ` +
    `shared ${median(ratios[0]!).toFixed(2)} (${range(ratios[0]!, 2)}), unshared ${median(ratios[1]!).toFixed(2)} (${range(ratios[1]!, 2)})`;
}

if (isMainThread) {
  await main();
} else if (workerData === 'pair') {
  parentPort!.postMessage(singleThreadPair() + largePair());
} else {
  const ms = work(workerData as Job);
  parentPort!.postMessage(ms);
}
