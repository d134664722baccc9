// The allocators the benchmarks compare, behind one small interface. Each is created in the process
// that measures it, so no peer's JIT feedback or garbage slows another.

import koffi from 'koffi';
import { MemPool } from '@thi.ng/malloc';
import { Heap } from '../src/index.js';
import { isBun } from './runtime.js';

/** A block handle: an address for native allocators, an object for the JavaScript baselines. */
export type Block = unknown;

export interface Allocator {
  malloc(size: number): Block;
  calloc(count: number, size: number): Block;
  /** `oldSize` is what the block was last sized to, for allocators without a realloc of their own. */
  realloc(block: Block, oldSize: number, size: number): Block;
  free(block: Block): void;
  /** Gives back everything the allocator holds, when it can. */
  dispose(): void;
}

export interface Peer {
  readonly name: string;
  readonly description: string;
  create(): Allocator;
}

function heapAllocator(preset: 'fast' | 'classic'): Allocator {
  const heap = new Heap({ preset });
  return {
    malloc: heap.malloc.bind(heap),
    calloc: heap.calloc.bind(heap),
    realloc: (block, _old, size) => heap.realloc(block as number, size),
    free: heap.free.bind(heap) as (block: Block) => void,
    dispose: () => heap.destroy(),
  };
}

function glibcAllocator(): Allocator {
  const libc = koffi.load('libc.so.6');
  const malloc = libc.func('intptr_t malloc(size_t size)');
  const calloc = libc.func('intptr_t calloc(size_t count, size_t size)');
  const realloc = libc.func('intptr_t realloc(intptr_t ptr, size_t size)');
  const free = libc.func('void free(intptr_t ptr)');
  return {
    malloc,
    calloc,
    realloc: (block, _old, size) => realloc(block, size),
    free,
    dispose: () => {},
  };
}

/** koffi's own allocator (glibc underneath) through its generic API, which returns pointer objects. */
function koffiAllocator(): Allocator {
  return {
    malloc: (size) => koffi.alloc('uint8_t', Math.max(size, 1)),
    calloc: (count, size) => {
      const block = koffi.alloc('uint8_t', Math.max(count * size, 1));
      new Uint8Array(koffi.view(block, count * size) as ArrayBuffer).fill(0);
      return block;
    },
    realloc: (block, oldSize, size) => {
      // koffi has no realloc: allocate, copy what fits, free.
      const moved = koffi.alloc('uint8_t', Math.max(size, 1));
      const n = Math.min(oldSize, size);
      if (n > 0) new Uint8Array(koffi.view(moved, n) as ArrayBuffer).set(new Uint8Array(koffi.view(block, n) as ArrayBuffer));
      koffi.free(block);
      return moved;
    },
    free: (block) => koffi.free(block),
    dispose: () => {},
  };
}

const THING_POOL_BYTES = 512 * 1024 * 1024;

/** @thi.ng/malloc: a JavaScript allocator over one ArrayBuffer (addresses are offsets into it). */
function thingAllocator(): Allocator {
  const pool = new MemPool({ size: THING_POOL_BYTES, align: 16 });
  return {
    malloc: pool.malloc.bind(pool),
    calloc: (count, size) => pool.calloc(count * size),
    realloc: (block, _old, size) => pool.realloc(block as number, size),
    free: pool.free.bind(pool) as (block: Block) => void,
    dispose: () => pool.freeAll(),
  };
}

/** The slice of bun:ffi used here (the project has no Bun types). */
interface BunFFI {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: Record<string, (...args: number[]) => number | null> };
}

/** bun:ffi, loaded only under Bun (Node cannot resolve the specifier). */
const bunFFI: BunFFI | undefined = isBun
  ? (await import('bun:ffi' as string)) as BunFFI
  : undefined;

/**
 * glibc through Bun's own FFI. A 'ptr' result is a Number, or null for NULL; 'u64'/'usize' results
 * would be BigInts, which cost some 40% more per call.
 */
function bunGlibcAllocator(): Allocator {
  const { symbols } = bunFFI!.dlopen('libc.so.6', {
    malloc: { args: ['u64'], returns: 'ptr' },
    calloc: { args: ['u64', 'u64'], returns: 'ptr' },
    realloc: { args: ['ptr', 'u64'], returns: 'ptr' },
    free: { args: ['ptr'], returns: 'void' },
  });
  const { malloc, calloc, realloc, free } = symbols as Record<string, (...args: number[]) => number | null>;
  return {
    malloc: (size) => malloc!(size) ?? 0,
    calloc: (count, size) => calloc!(count, size) ?? 0,
    realloc: (block, _old, size) => realloc!(block as number, size) ?? 0,
    free: (block) => { free!(block as number); },
    dispose: () => {},
  };
}

/** A garbage-collected baseline: "free" drops the reference, the collector does the rest. */
function collectedAllocator(make: (size: number) => Uint8Array | ArrayBuffer): Allocator {
  const copy = (from: Uint8Array | ArrayBuffer, to: Uint8Array | ArrayBuffer): void => {
    const src = from instanceof Uint8Array ? from : new Uint8Array(from);
    const dst = to instanceof Uint8Array ? to : new Uint8Array(to);
    dst.set(src.subarray(0, Math.min(src.length, dst.length)));
  };
  return {
    malloc: (size) => make(size),
    calloc: (count, size) => new Uint8Array(count * size),
    realloc: (block, _old, size) => {
      const moved = make(size);
      copy(block as Uint8Array, moved);
      return moved;
    },
    free: () => {},
    dispose: () => {},
  };
}

export const PEERS: readonly Peer[] = [
  { name: 'ffi-heap', description: 'ffi-heap, fast preset', create: () => heapAllocator('fast') },
  { name: 'glibc via koffi', description: 'glibc malloc/free through koffi (intptr_t)', create: glibcAllocator },
  { name: 'koffi.alloc', description: 'koffi.alloc / koffi.free', create: koffiAllocator },
  { name: 'thi.ng', description: '@thi.ng/malloc MemPool (JS, over an ArrayBuffer)', create: thingAllocator },
  { name: 'Buffer', description: 'Buffer.allocUnsafe, freed by the GC', create: () => collectedAllocator((n) => Buffer.allocUnsafe(n)) },
  { name: 'ArrayBuffer', description: 'new ArrayBuffer, freed by the GC', create: () => collectedAllocator((n) => new ArrayBuffer(n)) },
  ...(bunFFI !== undefined ? [{ name: 'glibc via bun:ffi', description: 'glibc malloc/free through bun:ffi (Bun only)', create: bunGlibcAllocator }] : []),
];

export function peerNamed(name: string): Peer {
  const peer = PEERS.find((p) => p.name === name);
  if (peer === undefined) throw new Error(`unknown peer '${name}'; known: ${PEERS.map((p) => p.name).join(', ')}`);
  return peer;
}

export { heapAllocator, glibcAllocator };
