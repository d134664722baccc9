// Replays a trace against an allocator: one verifying pass (alignment, a byte pattern in every
// payload that must survive every realloc until the free, so any overlap or stray write shows),
// then timed passes with nothing but the requests. Scores throughput (best pass) and utilization
// (peak live payload over the peak bytes the allocator held).

import { cLibraryAllocator } from '../os/libc.js';
import { foreignBytes } from '../os/memory.js';
import { Heap } from '../heap/presets.js';
import type { HeapSnapshot } from '../heap/types.js';
import { OP_ALLOC, OP_FREE, peakPayload, type Trace } from './format.js';

/** The calls a timed pass makes: the shape of a Heap, of glibc's functions, and of thi.ng's pool. */
export interface Requests {
  malloc(size: number): number;
  realloc(ptr: number, size: number): number;
  free(ptr: number): unknown;
}

/** One allocator under test, made fresh for each pass where it can be. */
export interface ReplayAllocator {
  /** What the timed passes call. */
  readonly requests: Requests;
  /** The same requests with footprint accounting, where that costs extra work (else `requests`). */
  readonly accounted?: Requests;
  /** Every address must be a multiple of this. */
  readonly alignment: number;
  /** The `size` bytes at `ptr`, to write and check patterns through. */
  view(ptr: number, size: number): Uint8Array;
  /** Peak bytes held so far (after the verifying pass: over the whole trace). */
  peakFootprint(): number;
  /** Called after each request of the verifying pass, for allocators that must be watched. */
  sample?(): void;
  snapshot?(): HeapSnapshot;
  dispose(): void;
}

export interface AllocatorFactory {
  readonly name: string;
  create(trace: Trace): ReplayAllocator | Promise<ReplayAllocator>;
}

function heapFactory(name: string, preset: 'fast' | 'classic'): AllocatorFactory {
  return {
    name,
    create: () => {
      const heap = new Heap({ preset });
      return {
        requests: heap,
        alignment: 16,
        view: (ptr, size) => heap.bytes(ptr, size),
        peakFootprint: () => heap.stats().peakMapped,
        snapshot: () => heap.snapshot(),
        dispose: () => heap.destroy(),
      };
    },
  };
}

/**
 * glibc through koffi. Its heap is the process's own, shared with everything Node allocates, so
 * mallinfo2's totals move with the rest of the process (measured: by megabytes over one replay).
 * Its footprint here is the peak of the chunk bytes it hands out for the trace, each block's
 * malloc_usable_size plus its 8-byte chunk header: a lower bound, which fragmentation only raises.
 */
const libcFactory: AllocatorFactory = {
  name: 'libc',
  create: () => {
    const c = cLibraryAllocator();
    const chunks = new Map<number, number>();
    let current = 0;
    let peak = 0;
    const track = (ptr: number, old: number): number => {
      current -= chunks.get(old) ?? 0;
      chunks.delete(old);
      if (ptr !== 0) {
        const bytes = c.usableSize(ptr) + 8;
        chunks.set(ptr, bytes);
        current += bytes;
        if (current > peak) peak = current;
      }
      return ptr;
    };
    return {
      requests: c,
      accounted: {
        malloc: (size) => track(c.malloc(size), 0),
        realloc: (ptr, size) => track(c.realloc(ptr, size), ptr),
        free: (ptr) => {
          track(0, ptr);
          c.free(ptr);
        },
      },
      alignment: 8,
      view: (ptr, size) => foreignBytes(ptr, size),
      peakFootprint: () => peak,
      dispose: () => {},
    };
  },
};

/** @thi.ng/malloc's MemPool over one ArrayBuffer, sized for the trace; its footprint is its top. */
const thingFactory: AllocatorFactory = {
  name: 'thing',
  create: async (trace) => {
    let module: typeof import('@thi.ng/malloc');
    try {
      module = await import('@thi.ng/malloc');
    } catch {
      throw new Error("the 'thing' allocator needs the @thi.ng/malloc package: npm install @thi.ng/malloc");
    }
    // Generous: the pool cannot grow, and it does not merge a block with the free space after it.
    const size = Math.min(2 ** 31, Math.max(64 << 20, 2 ** Math.ceil(Math.log2(16 * peakPayload(trace).bytes + 1))));
    const pool = new module.MemPool({ size, align: 8 });
    let peak = 0;
    return {
      requests: pool,
      alignment: 8,
      view: (ptr, n) => new Uint8Array(pool.buf, ptr, n),
      sample: () => {
        // The pool's high-water mark (its `top`, a protected getter): stats() would walk every list.
        const top = (pool as unknown as { top: number }).top;
        if (top > peak) peak = top;
      },
      peakFootprint: () => peak,
      dispose: () => pool.freeAll(),
    };
  },
};

export const ALLOCATORS: readonly AllocatorFactory[] = [
  heapFactory('ffi-heap', 'fast'),
  heapFactory('ffi-heap-classic', 'classic'),
  libcFactory,
  thingFactory,
];

export function allocatorNamed(name: string): AllocatorFactory {
  const found = ALLOCATORS.find((a) => a.name === name);
  if (found === undefined) throw new RangeError(`unknown allocator '${name}'; known: ${ALLOCATORS.map((a) => a.name).join(', ')}`);
  return found;
}

export interface ReplayResult {
  allocator: string;
  trace: string;
  ops: number;
  /** Thousands of operations per second, best timed pass. */
  kops: number;
  utilization: number;
  peakPayload: number;
  peakFootprint: number;
  verified: boolean;
  /** Why verification failed, when it did. */
  error?: string;
  /** Seconds of the best timed pass. */
  seconds: number;
}

/** Pattern word for block `id`: no two payloads hold the same bytes. */
function patternWord(id: number): number {
  let x = Math.imul(id + 1, 0x9e3779b1);
  x ^= x >>> 15;
  return (x | 0x01010101) >>> 0;
}

function fillPattern(bytes: Uint8Array, id: number): void {
  const word = patternWord(id);
  const words = bytes.byteOffset % 4 === 0 ? bytes.length >>> 2 : 0;
  if (words > 0) new Uint32Array(bytes.buffer, bytes.byteOffset, words).fill(word);
  for (let i = words * 4; i < bytes.length; i++) bytes[i] = word >>> ((i & 3) * 8);
}

/** The offset of the first byte of `bytes` that breaks block id's pattern, or -1. */
function findBreak(bytes: Uint8Array, id: number): number {
  const word = patternWord(id);
  const words = bytes.byteOffset % 4 === 0 ? bytes.length >>> 2 : 0;
  if (words > 0) {
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
    for (let i = 0; i < words; i++) if (view[i] !== word) return 4 * i;
  }
  for (let i = words * 4; i < bytes.length; i++) if (bytes[i] !== ((word >>> ((i & 3) * 8)) & 0xff)) return i;
  return -1;
}

/** A request the allocator got wrong: the trace is not verified. */
export class VerificationError extends Error {}

/**
 * The verifying pass: every request checked, every payload patterned and checked. Returns the peak
 * footprint, and a snapshot taken right after operation `snapshotAt` when the allocator makes them.
 */
export function verify(trace: Trace, a: ReplayAllocator, snapshotAt = -1): { footprint: number; snapshot?: HeapSnapshot } {
  const { kinds, ids, sizes } = trace;
  const r = a.accounted ?? a.requests;
  const addr = new Float64Array(trace.idCount);
  const size = new Float64Array(trace.idCount);
  let snapshot: HeapSnapshot | undefined;
  const fail = (i: number, what: string): never => {
    throw new VerificationError(`operation ${i + 1} (${'arf'[kinds[i]!]} ${ids[i]}${kinds[i] === OP_FREE ? '' : ` ${sizes[i]}`}): ${what}`);
  };
  const checkBlock = (i: number, id: number, p: number, n: number): void => {
    const at = findBreak(a.view(p, n), id);
    if (at >= 0) fail(i, `the payload of block ${id} changed at byte ${at} (an overlap, or a stray write)`);
  };
  for (let i = 0; i < kinds.length; i++) {
    const id = ids[i]!;
    const kind = kinds[i]!;
    if (kind === OP_FREE) {
      checkBlock(i, id, addr[id]!, size[id]!);
      r.free(addr[id]!);
    } else {
      const n = sizes[i]!;
      const old = size[id]!;
      const p = kind === OP_ALLOC ? r.malloc(n) : r.realloc(addr[id]!, n);
      if (p === 0 && n > 0) fail(i, 'the allocator returned NULL (out of memory)');
      if (p % a.alignment !== 0) fail(i, `address 0x${p.toString(16)} is not aligned to ${a.alignment}`);
      if (kind !== OP_ALLOC) checkBlock(i, id, p, Math.min(old, n));
      addr[id] = p;
      size[id] = n;
      fillPattern(a.view(p, n), id);
    }
    a.sample?.();
    if (i === snapshotAt && a.snapshot) snapshot = a.snapshot();
  }
  return snapshot ? { footprint: a.peakFootprint(), snapshot } : { footprint: a.peakFootprint() };
}

// The timed pass. It is compiled once per allocator (new Function), so that each allocator's calls
// get JIT feedback of their own: one shared loop would turn polymorphic and slow every allocator
// timed after the first. Its table of addresses by id is made once per replay, as the C peer's is
// (bench/native/glibc.c): a table made per pass is fresh memory whose page faults the pass would
// time (some 170 of them for sqlite-join's 86,257 ids, as much time as the requests themselves).
const TIMED_PASS = `
  const t0 = performance.now();
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[i];
    const id = ids[i];
    if (kind === 0) addr[id] = a.malloc(sizes[i]);
    else if (kind === 1) addr[id] = a.realloc(addr[id], sizes[i]);
    else a.free(addr[id]);
  }
  return performance.now() - t0;`;

/** Untimed passes before the timed ones: at least this many, and at least WARMUP_OPS requests (and `warmup` ms). */
const WARMUP_PASSES = 2;
const WARMUP_OPS = 100_000;

type TimedPass = (a: Requests, kinds: Uint8Array, ids: Uint32Array, sizes: Uint32Array | Float64Array, addr: Float64Array) => number;
const timedPasses = new Map<string, TimedPass>();

/**
 * The sizes the timed passes hand the allocator: as integers (a Uint32Array) when every size is a
 * whole number below 2^32, as the C peer reads them (size_t) and as a program passes them; else as
 * they are. Read from a Float64Array, each request's size would reach the allocator as a double, and
 * every allocator's call would pay to test and convert it (measured on Node 20: 4 to 5% of ffi-heap's
 * replay throughput on the shared traces).
 * @internal (exported for its test)
 */
export function timedSizes(sizes: Float64Array): Uint32Array | Float64Array {
  for (let i = 0; i < sizes.length; i++) if ((sizes[i]! >>> 0) !== sizes[i]) return sizes;
  return Uint32Array.from(sizes);
}

function timedPass(allocator: string): TimedPass {
  let pass = timedPasses.get(allocator);
  if (pass === undefined) {
    pass = new Function('a', 'kinds', 'ids', 'sizes', 'addr', TIMED_PASS) as TimedPass;
    timedPasses.set(allocator, pass);
  }
  return pass;
}

export interface ReplayOptions {
  /** Timed passes; the best counts. Default 3. */
  repeat?: number;
  /**
   * Milliseconds of untimed passes before the timed ones, at the least (default 0: just the
   * passes below). A JIT-compiled allocator reaches its steady speed only after some millions of
   * requests (measured: 2 to 40 passes of the shared traces on Node 20), so a measure of steady
   * throughput asks for a second or so.
   */
  warmup?: number;
  /** Take a snapshot at the trace's peak payload (for a picture). */
  snapshotAtPeak?: boolean;
  /** Progress lines, for long runs. */
  progress?: (line: string) => void;
}

/** Verifies, then times, one trace on one allocator. */
export async function replay(trace: Trace, factory: AllocatorFactory, options: ReplayOptions = {}): Promise<ReplayResult & { snapshot?: HeapSnapshot }> {
  const repeat = options.repeat ?? 3;
  const peak = peakPayload(trace);
  const result: ReplayResult & { snapshot?: HeapSnapshot } = {
    allocator: factory.name, trace: trace.name, ops: trace.kinds.length, kops: 0, utilization: 0,
    peakPayload: peak.bytes, peakFootprint: 0, verified: false, seconds: 0,
  };
  options.progress?.(`${trace.name} / ${factory.name}: verifying ${trace.kinds.length} operations`);
  const checked = await factory.create(trace);
  try {
    const { footprint, snapshot } = verify(trace, checked, options.snapshotAtPeak ? peak.at : -1);
    result.peakFootprint = footprint;
    result.utilization = footprint > 0 ? peak.bytes / footprint : 0;
    if (snapshot) result.snapshot = snapshot;
    result.verified = true;
  } catch (error) {
    if (!(error instanceof VerificationError)) throw error;
    result.error = error.message;
    return result;
  } finally {
    checked.dispose();
  }

  // All passes run on one allocator: the trace frees everything it allocates, so each pass starts
  // from an empty heap that has been warmed up, as glibc's process heap always is. The first
  // passes are untimed, so the timed ones run compiled code rather than the interpreter.
  const pass = timedPass(factory.name);
  const a = await factory.create(trace);
  let best = Infinity;
  const addr = new Float64Array(trace.idCount);
  const sizes = timedSizes(trace.sizes);
  try {
    const warmups = Math.max(WARMUP_PASSES, Math.ceil(WARMUP_OPS / Math.max(1, trace.kinds.length)));
    const until = performance.now() + (options.warmup ?? 0);
    for (let r = 0; r < warmups || performance.now() < until; r++) pass(a.requests, trace.kinds, trace.ids, sizes, addr);
    for (let r = 0; r < repeat; r++) {
      options.progress?.(`${trace.name} / ${factory.name}: timed pass ${r + 1} of ${repeat}`);
      best = Math.min(best, pass(a.requests, trace.kinds, trace.ids, sizes, addr));
    }
  } finally {
    a.dispose();
  }
  result.seconds = best / 1000;
  result.kops = best > 0 ? trace.kinds.length / best : Infinity;
  return result;
}


