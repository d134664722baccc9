// Constant time, and what the memory hierarchy does to it. Each function builds its heaps and runs
// in the process that calls it; glibc runs beside ffi-heap in the same process where a ratio to it
// is reported.

import koffi from 'koffi';
import { Bench } from 'tinybench';
import { Heap } from '../src/index.js';
import { random } from '../src/debug/random.js';

const STACK_DEPTHS = [32, 64, 128, 256];
const STACK_OPS = 2 * STACK_DEPTHS.reduce((a, b) => a + b, 0);

/** Sizes 16..256, the same sequence for every allocator. */
function sizes(count: number, seed: number): Uint32Array {
  const next = random(seed);
  return Uint32Array.from({ length: count }, () => 16 + Math.floor(next() * 241));
}

export interface Timing {
  readonly name: string;
  /** Nanoseconds per malloc or free, median of the samples. */
  readonly ns: number;
}

async function median(name: string, ops: number, fn: () => void): Promise<Timing> {
  const bench = new Bench({ time: 500, warmupTime: 100, iterations: 20 });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new Error(`${name}: ${result.state}`);
  return { name, ns: (result.latency.p50 * 1e6) / ops };
}

/** A heap holding `background` live blocks with as many free fragments between them. */
function fragmentedHeap(background: number): Heap {
  const heap = new Heap();
  const bg = sizes(2 * background, 2);
  for (let i = 0; i < bg.length; i++) {
    const p = heap.malloc(bg[i]!);
    if (i % 2 === 1) heap.free(p);
  }
  return heap;
}

const STACK_ROUNDS = 3;

/**
 * A hot stack of 32 to 256 blocks (16 to 256 bytes), allocated and freed in LIFO order, over a
 * background of each of `backgrounds` live blocks with as many free fragments between them.
 *
 * Every heap is built before any is measured, and the measurements alternate for a few rounds
 * (the median is kept): the first heap a process measures runs code that V8 specialized while it
 * was the only one, some 30% faster than any heap measured after a second exists. Measured one
 * after the other, that difference, not the background, made the ratio.
 */
export async function hotStacks(backgrounds: readonly number[]): Promise<Timing[]> {
  const heaps = backgrounds.map(fragmentedHeap);
  const hot = sizes(256, 3);
  const stack = new Float64Array(256);
  const times: number[][] = backgrounds.map(() => []);
  for (let round = 0; round < STACK_ROUNDS; round++) {
    for (let k = 0; k < heaps.length; k++) {
      const heap = heaps[k]!;
      const timing = await median(`hot stack over ${backgrounds[k]} live blocks`, STACK_OPS, () => {
        for (const depth of STACK_DEPTHS) {
          for (let i = 0; i < depth; i++) stack[i] = heap.malloc(hot[i]!);
          for (let i = depth - 1; i >= 0; i--) heap.free(stack[i]!);
        }
      });
      times[k]!.push(timing.ns);
    }
  }
  return heaps.map((heap, k) => {
    heap.check();
    heap.destroy();
    const sorted = times[k]!.sort((a, b) => a - b);
    return { name: `hot stack over ${backgrounds[k]} live blocks`, ns: sorted[sorted.length >> 1]! };
  });
}

const RANDOM_LIVE = 1_000_000;
const RANDOM_BATCH = 1000;

/**
 * A million live blocks; each step frees one chosen uniformly at random and allocates another in
 * its place. Cache misses dominate here, for every allocator.
 */
export async function randomChurn(): Promise<{ heap: Timing; glibc: Timing }> {
  const size = sizes(RANDOM_LIVE, 4);
  const pick = random(5);
  const picks = Uint32Array.from({ length: 1 << 16 }, () => Math.floor(pick() * RANDOM_LIVE));

  const heap = new Heap();
  const ptrs = new Float64Array(RANDOM_LIVE);
  for (let i = 0; i < RANDOM_LIVE; i++) ptrs[i] = heap.malloc(size[i]!);
  let cursor = 0;
  const heapTiming = await median('random churn over 1M live blocks: ffi-heap', 2 * RANDOM_BATCH, () => {
    for (let k = 0; k < RANDOM_BATCH; k++) {
      const j = picks[cursor++ & 0xffff]!;
      heap.free(ptrs[j]!);
      ptrs[j] = heap.malloc(size[j]!);
    }
  });
  heap.destroy();

  const libc = koffi.load('libc.so.6');
  const malloc = libc.func('intptr_t malloc(size_t size)');
  const free = libc.func('void free(intptr_t ptr)');
  for (let i = 0; i < RANDOM_LIVE; i++) ptrs[i] = malloc(size[i]!);
  cursor = 0;
  const glibcTiming = await median('random churn over 1M live blocks: glibc through koffi', 2 * RANDOM_BATCH, () => {
    for (let k = 0; k < RANDOM_BATCH; k++) {
      const j = picks[cursor++ & 0xffff]!;
      free(ptrs[j]!);
      ptrs[j] = malloc(size[j]!);
    }
  });
  for (let i = 0; i < RANDOM_LIVE; i++) free(ptrs[i]!);
  return { heap: heapTiming, glibc: glibcTiming };
}

export interface MemoryReport {
  /** One million allocations of 16 to 64 bytes. */
  readonly smallRun: { mmapCalls: number; mappedMiB: number; mmapCallsPerMiB: number };
  /** One million 16-byte allocations. */
  readonly sixteen: { bytesPerBlock: number; overhead: number; glibcBytesPerBlock: number };
}

export function memory(): MemoryReport {
  const MiB = 1024 * 1024;
  const n = 1_000_000;
  const next = random(6);
  let heap = new Heap();
  for (let i = 0; i < n; i++) heap.malloc(16 + Math.floor(next() * 49));
  const s = heap.stats();
  heap.destroy();

  heap = new Heap();
  for (let i = 0; i < n; i++) heap.malloc(16);
  const mapped = heap.stats().mapped;
  heap.destroy();

  return {
    smallRun: { mmapCalls: s.mmapCalls, mappedMiB: s.peakMapped / MiB, mmapCallsPerMiB: s.mmapCalls / (s.peakMapped / MiB) },
    sixteen: { bytesPerBlock: mapped / n, overhead: mapped / (16 * n), glibcBytesPerBlock: glibcBytesPer16(n) },
  };
}

/** What glibc takes from the kernel for `n` 16-byte blocks (mallinfo2: arena + mmapped). */
function glibcBytesPer16(n: number): number {
  const libc = koffi.load('libc.so.6');
  const info = koffi.struct('mallinfo2', {
    arena: 'size_t', ordblks: 'size_t', smblks: 'size_t', hblks: 'size_t', hblkhd: 'size_t',
    usmblks: 'size_t', fsmblks: 'size_t', uordblks: 'size_t', fordblks: 'size_t', keepcost: 'size_t',
  });
  const mallinfo2 = libc.func('mallinfo2', info, []);
  const malloc = libc.func('intptr_t malloc(size_t size)');
  const free = libc.func('void free(intptr_t ptr)');
  // Bytes glibc holds from the kernel: its main arena plus separately mapped chunks.
  const used = (): number => {
    const m = mallinfo2() as { arena: number | bigint; hblkhd: number | bigint };
    return Number(m.arena) + Number(m.hblkhd);
  };
  const before = used();
  const ptrs = new Float64Array(n);
  for (let i = 0; i < n; i++) ptrs[i] = malloc(16);
  const grown = used() - before;
  for (let i = 0; i < n; i++) free(ptrs[i]!);
  return grown / n;
}
