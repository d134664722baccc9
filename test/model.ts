// A random workload against a simple model: every live block's size and byte pattern are known,
// misuse is expected to fail with the right error, and after every step the heap must pass
// check() and every live block must still hold its bytes. Shared by the property test
// (fast-check drives it) and the soak run (a seeded PRNG drives it).

import { Heap, HeapError } from '../src/index.js';

/** One step, decoded from three numbers so that any generator can drive it. */
export type Step = readonly [roll: number, a: number, b: number];

const MAX_LIVE = 16;

interface Live {
  ptr: number;
  size: number;
  word: number;
}

export class ModelFailure extends Error {}

function fail(what: string): never {
  throw new ModelFailure(what);
}

function expectError(fn: () => unknown, ok: (e: unknown) => boolean, what: string): void {
  try {
    fn();
  } catch (error) {
    if (ok(error)) return;
    fail(`${what}: threw ${String(error)}`);
  }
  fail(`${what}: did not throw`);
}

const heapError = (...codes: string[]) => (e: unknown): boolean => e instanceof HeapError && codes.includes(e.code);

/** Runs steps on one heap; `counts` tallies what was done, for the soak's summary. */
export class ModelRun {
  readonly heap: Heap;
  private readonly other: Heap;
  private readonly foreign: number;
  private readonly live: Live[] = [];
  private readonly freed: number[] = [];
  private nextWord = 1;
  readonly counts = { malloc: 0, calloc: 0, realloc: 0, free: 0, misuse: 0 };

  constructor(preset: 'fast' | 'classic', debug = false, shared = false) {
    this.heap = new Heap({ preset, debug, shared });
    this.other = new Heap({ preset });
    this.foreign = this.other.malloc(64);
  }

  private fill(block: Live): void {
    const bytes = this.heap.bytes(block.ptr, block.size);
    const words = bytes.length >>> 2;
    new Uint32Array(bytes.buffer, bytes.byteOffset, words).fill(block.word);
    // Byte i is byte (i mod 4) of the word, so any prefix of the block is checkable on its own.
    for (let i = words * 4; i < bytes.length; i++) bytes[i] = (block.word >>> ((i & 3) * 8)) & 0xff;
  }

  private holds(block: Live, size: number): boolean {
    const bytes = this.heap.bytes(block.ptr, size);
    const words = bytes.length >>> 2;
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
    for (let i = 0; i < words; i++) if (view[i] !== block.word) return false;
    for (let i = words * 4; i < bytes.length; i++) if (bytes[i] !== ((block.word >>> ((i & 3) * 8)) & 0xff)) return false;
    return true;
  }

  private size(a: number, b: number): number {
    if (a % 1000 === 0) return 256 * 1024 + (b % 65536); // a large block, now and then
    if (a % 25 === 0) return b % 16384;
    return b % 300;
  }

  step([roll, a, b]: Step): void {
    const heap = this.heap;
    const r = roll % 100;
    if (this.live.length === 0 || (r < 50 && this.live.length < MAX_LIVE)) {
      const size = this.size(a, b);
      const calloc = r >= 40 && r < 50;
      const ptr = calloc ? heap.calloc(1, size) : heap.malloc(size);
      if (ptr === 0 || ptr % 16 !== 0) fail(`malloc(${size}) returned 0x${ptr.toString(16)}`);
      if (calloc && !heap.bytes(ptr, size).every((v) => v === 0)) fail(`calloc(1, ${size}) is not zeroed`);
      const block = { ptr, size, word: (this.nextWord++ * 0x9e3779b1) >>> 0 };
      this.fill(block);
      this.live.push(block);
      this.counts[calloc ? 'calloc' : 'malloc']++;
    } else if (r < 65) {
      const i = a % this.live.length;
      const block = this.live[i]!;
      const size = b % 7 === 0 ? 0 : this.size(a >>> 3, b);
      const moved = heap.realloc(block.ptr, size);
      this.counts.realloc++;
      if (size === 0) {
        if (moved !== 0) fail('realloc(p, 0) did not return 0');
        this.freed.push(block.ptr);
        this.live.splice(i, 1);
        return this.verify();
      }
      if (moved === 0 || moved % 16 !== 0) fail(`realloc(${size}) returned 0x${moved.toString(16)}`);
      const kept = { ptr: moved, size: block.size, word: block.word };
      if (!this.holds(kept, Math.min(block.size, size))) fail(`realloc(0x${block.ptr.toString(16)}, ${size}) lost bytes`);
      block.ptr = moved;
      block.size = size;
      this.fill(block);
    } else if (r < 90) {
      const [block] = this.live.splice(a % this.live.length, 1);
      heap.free(block!.ptr);
      this.freed.push(block!.ptr);
      this.counts.free++;
    } else {
      this.misuse(r, a, b);
    }
    this.verify();
  }

  /** Misuse must throw the right error and change nothing (verify() runs next). */
  private misuse(r: number, a: number, b: number): void {
    const heap = this.heap;
    this.counts.misuse++;
    if (r < 94) {
      const stale = this.freed[a % Math.max(1, this.freed.length)];
      if (stale === undefined || this.live.some((l) => l.ptr === stale)) return;
      expectError(() => heap.free(stale), heapError('ERR_DOUBLE_FREE', 'ERR_INVALID_POINTER'), 'free of a freed block');
      expectError(() => heap.realloc(stale, 8), heapError('ERR_DOUBLE_FREE', 'ERR_INVALID_POINTER'), 'realloc of a freed block');
    } else if (r < 97) {
      const block = this.live[a % this.live.length]!;
      if (block.size < 2) return;
      const inside = block.ptr + 1 + (b % (block.size - 1));
      expectError(() => heap.free(inside), heapError('ERR_INVALID_POINTER'), 'free of an interior address');
      expectError(() => heap.usableSize(inside), heapError('ERR_INVALID_POINTER'), 'usableSize of an interior address');
    } else if (r < 98) {
      expectError(() => heap.free(this.foreign), heapError('ERR_INVALID_POINTER'), "free of another heap's block");
      expectError(() => heap.free(0x1000 + 16 * (b % 4096)), heapError('ERR_INVALID_POINTER'), 'free of an unmapped address');
    } else {
      const bad = [-1, 1.5, NaN, Infinity, '64', 64n, null, {}][b % 8];
      expectError(() => heap.malloc(bad as number), (e) => e instanceof TypeError || e instanceof RangeError, `malloc(${String(bad)})`);
      expectError(() => heap.free(bad as number), (e) => e instanceof TypeError || e instanceof RangeError, `free(${String(bad)})`);
    }
  }

  /** check() passes and every live block holds its bytes. */
  verify(): void {
    this.heap.check();
    for (const block of this.live) {
      if (!this.holds(block, block.size)) fail(`block 0x${block.ptr.toString(16)} (${block.size} bytes) lost its bytes`);
    }
  }

  /** Frees everything; the heap must then be empty (after trim, holding nothing). */
  finish(): void {
    for (const block of this.live.splice(0)) this.heap.free(block.ptr);
    this.heap.check();
    this.heap.trim();
    const s = this.heap.stats();
    if (s.inUse !== 0 || s.usedBlocks !== 0 || s.mapped !== 0) fail(`not empty at the end: ${JSON.stringify(s)}`);
    this.heap.destroy();
    this.other.destroy();
  }
}
