// The 64-byte malloc+free pair called the way a program calls: `heap.malloc(64)` and
// `heap.free(p)` at the call site, against glibc's malloc and free through the runtime's own FFI
// called the same way (koffi under Node, bun:ffi under Bun). The table rows of index.ts call every
// peer through one bound function each, alike for all; JavaScriptCore inlines a method call made
// at its call site and not one made through `bind`, so under Bun the two give different answers,
// and this one is what a program sees. Rounds of each alternate; medians with the spread.

import koffi from 'koffi';
import { Heap } from '../src/index.js';
import { isBun } from './runtime.js';

const PAIRS = 2_000_000;
const ROUNDS = 11;

export interface DirectPair {
  /** The FFI glibc is called through. */
  readonly ffi: string;
  /** ns per pair, median, fastest and slowest round. */
  readonly heap: readonly [number, number, number];
  readonly glibc: readonly [number, number, number];
  /** ffi-heap's time over glibc's, per round: median, lowest, highest. */
  readonly ratio: readonly [number, number, number];
}

interface LibcPair {
  malloc(size: number): number;
  free(ptr: number): void;
}

/** The slice of bun:ffi used here (the project has no Bun types). */
interface BunFFI {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: Record<string, (...args: number[]) => number> };
}

async function libc(): Promise<{ ffi: string; fns: LibcPair }> {
  if (isBun) {
    const ffi = (await import('bun:ffi' as string)) as BunFFI;
    const { symbols } = ffi.dlopen('libc.so.6', { malloc: { args: ['u64'], returns: 'ptr' }, free: { args: ['ptr'], returns: 'void' } });
    return { ffi: 'bun:ffi', fns: symbols as unknown as LibcPair };
  }
  const lib = koffi.load('libc.so.6');
  return { ffi: 'koffi', fns: { malloc: lib.func('intptr_t malloc(size_t size)'), free: lib.func('void free(intptr_t ptr)') } };
}

// Each loop has its own call sites, so neither's feedback shapes the other.
function heapPairs(heap: Heap, n: number): number {
  let sink = 0;
  for (let i = 0; i < n; i++) {
    const p = heap.malloc(64);
    sink += p & 1;
    heap.free(p);
  }
  return sink;
}

function libcPairs(fns: LibcPair, n: number): number {
  let sink = 0;
  for (let i = 0; i < n; i++) {
    const p = fns.malloc(64);
    sink += p & 1;
    fns.free(p);
  }
  return sink;
}

const spread = (values: readonly number[]): [number, number, number] => {
  const sorted = [...values].sort((a, b) => a - b);
  return [sorted[sorted.length >> 1]!, sorted[0]!, sorted[sorted.length - 1]!];
};

export async function directPair(): Promise<DirectPair> {
  const { ffi, fns } = await libc();
  const heap = new Heap();
  heapPairs(heap, PAIRS);
  libcPairs(fns, PAIRS);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let t = performance.now();
    heapPairs(heap, PAIRS);
    a.push(((performance.now() - t) * 1e6) / PAIRS);
    t = performance.now();
    libcPairs(fns, PAIRS);
    b.push(((performance.now() - t) * 1e6) / PAIRS);
  }
  heap.destroy();
  return { ffi, heap: spread(a), glibc: spread(b), ratio: spread(a.map((x, i) => x / b[i]!)) };
}
