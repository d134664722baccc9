// A program of heap calls run against a simple model. The model owns: every live block's address,
// size and byte pattern; the freed blocks whose former data ranges are still free (for writes
// after free); and what each call must answer. Invariants it keeps: after every call that returns,
// check() passes and every live block holds its pattern; misuse gets its own error; and, with
// writes after free, the only other answer allowed is HeapError('ERR_HEAP_CORRUPTED'), after
// which every live block must still hold its pattern and the heap is not used again.
// Shared by the property tests (fast-check generates the ops) and the soak run (a PRNG does).

import koffi from 'koffi';
import { Heap, HeapError, type HeapOptions } from '../src/index.js';

/** One call (or one burst of calls) of a program. `pick` chooses among live or freed blocks. */
export type Op =
  | { readonly kind: 'malloc'; readonly size: number; readonly calloc: boolean }
  | { readonly kind: 'burst'; readonly count: number; readonly size: number }
  | { readonly kind: 'realloc'; readonly pick: number; readonly size: number }
  | { readonly kind: 'free'; readonly pick: number; readonly count: number }
  | { readonly kind: 'misuse'; readonly what: number; readonly pick: number; readonly arg: number }
  | { readonly kind: 'trim' }
  | { readonly kind: 'check' }
  | { readonly kind: 'writeFreed'; readonly pick: number; readonly offset: number; readonly value: number; readonly width: 1 | 4 | 8 };

interface Live {
  ptr: number;
  size: number;
  word: number;
}

/** A freed block's former data range, still free as far as the model knows. */
interface Freed {
  readonly ptr: number;
  readonly length: number;
}

/** What a program answered that breaks the contract. */
export class ModelFailure extends Error {}

/** Thrown inside a run when the heap reports corruption, so the run stops using the heap. */
class Corrupted extends Error {}

function fail(what: string): never {
  throw new ModelFailure(what);
}

const hex = (n: number): string => '0x' + n.toString(16);
const isCorrupted = (e: unknown): boolean => e instanceof HeapError && e.code === 'ERR_HEAP_CORRUPTED';
const heapError = (...codes: string[]) => (e: unknown): boolean => e instanceof HeapError && codes.includes(e.code);

/** Room before a block's data that may hold its header (and debug canaries): never written after free. */
const HEADER_ROOM = 96;
/** Freed ranges remembered at most (the oldest are forgotten). */
const MAX_FREED = 64;

/** Raw bytes of native memory, without asking the heap (which may refuse once it is corrupted). */
function raw(address: number, length: number): Uint8Array {
  return new Uint8Array(koffi.view(address, length) as ArrayBuffer);
}

export interface RunOptions {
  /** Writes into freed blocks are part of the program; corruption may then be reported. */
  writesAfterFree?: boolean;
  /**
   * Live blocks whose bytes each step proves, in turn, so that a long run's steps stay cheap (every
   * live block is still proved every few steps, and all of them at finish). Default: all of them.
   */
  verifyWindow?: number;
  /** Steps between the check() calls verify() makes (always one at finish). Default 1: every step. */
  checkEvery?: number;
}

/** Runs ops on one heap; `counts` tallies what was done, for the soak's summary. */
export class ModelRun {
  readonly heap: Heap;
  private readonly other: Heap;
  private readonly foreign: number;
  private readonly live: Live[] = [];
  private readonly freed: Freed[] = [];
  /** The heap's munmap count when the freed ranges were last pruned (see pruneFreed). */
  private unmapsSeen = -1;
  private readonly stale: number[] = [];
  private readonly waf: boolean;
  private readonly window: number;
  private readonly checkEvery: number;
  private steps = 0;
  /** The next live block verify() proves, when it proves a window of them. */
  private cursor = 0;
  private nextWord = 1;
  /** Set once the heap reported ERR_HEAP_CORRUPTED: the op that did, and the message. */
  corruption: string | null = null;
  readonly counts = { malloc: 0, calloc: 0, realloc: 0, free: 0, misuse: 0, trim: 0, writeFreed: 0, corrupted: 0 };

  constructor(options: HeapOptions, run: RunOptions = {}) {
    this.heap = new Heap(options);
    this.other = new Heap({ preset: options.preset ?? 'fast' });
    this.foreign = this.other.malloc(64);
    this.waf = run.writesAfterFree ?? false;
    this.window = run.verifyWindow ?? Infinity;
    this.checkEvery = run.checkEvery ?? 1;
  }

  get liveBlocks(): number {
    return this.live.length;
  }

  /** The live blocks' addresses, in the model's order (for tests of the model itself). */
  get liveAddresses(): number[] {
    return this.live.map((block) => block.ptr);
  }

  /** Byte i of a block is byte (i mod 4) of its word, so any prefix is checkable on its own. */
  private fill(block: Live): void {
    const bytes = this.heap.bytes(block.ptr, block.size);
    const words = bytes.length >>> 2;
    new Uint32Array(bytes.buffer, bytes.byteOffset, words).fill(block.word);
    for (let i = words * 4; i < bytes.length; i++) bytes[i] = (block.word >>> ((i & 3) * 8)) & 0xff;
  }

  /**
   * Whether the block's first `size` bytes hold its pattern. Read through the heap's own view while
   * it answers; through a raw view once it has reported corruption and may refuse. (A raw view is
   * a koffi view made per call: slow, and memory the process holds until a collection.)
   */
  private holds(block: Live, size: number): boolean {
    if (size === 0) return true;
    const bytes = this.corruption === null ? this.heap.bytes(block.ptr, size) : raw(block.ptr, size);
    const words = size >>> 2;
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
    for (let i = 0; i < words; i++) if (view[i] !== block.word) return false;
    for (let i = words * 4; i < size; i++) if (bytes[i] !== ((block.word >>> ((i & 3) * 8)) & 0xff)) return false;
    return true;
  }

  /** A new or moved block at [ptr, ptr + size): freed ranges it overlaps are no longer free. */
  private handedOut(ptr: number, size: number): void {
    const start = ptr - HEADER_ROOM;
    const end = ptr + Math.max(size, this.heap.usableSize(ptr));
    for (let i = this.freed.length - 1; i >= 0; i--) {
      const f = this.freed[i]!;
      if (f.ptr < end && start < f.ptr + f.length) this.freed.splice(i, 1);
    }
    const at = this.stale.indexOf(ptr);
    if (at >= 0) this.stale.splice(at, 1);
  }

  private released(block: Live, usable: number): void {
    this.stale.push(block.ptr);
    if (this.stale.length > MAX_FREED) this.stale.shift();
    if (!this.waf || usable === 0) return;
    this.freed.push({ ptr: block.ptr, length: usable });
    if (this.freed.length > MAX_FREED) this.freed.shift();
  }

  private allocate(size: number, calloc: boolean): void {
    const heap = this.heap;
    const ptr = calloc ? heap.calloc(1, size) : heap.malloc(size);
    if (ptr === 0 || ptr % 16 !== 0) fail(`${calloc ? 'calloc(1, ' : 'malloc('}${size}) returned ${hex(ptr)}`);
    if (calloc && !heap.bytes(ptr, size).every((v) => v === 0)) fail(`calloc(1, ${size}) is not zeroed`);
    const block = { ptr, size, word: (this.nextWord++ * 0x9e3779b1) >>> 0 };
    this.handedOut(ptr, size);
    this.fill(block);
    this.live.push(block);
    this.counts[calloc ? 'calloc' : 'malloc']++;
  }

  /**
   * Runs one op. Returns false once the heap has reported corruption (the run is over; the heap
   * is destroyed, or dropped if it cannot be). Throws ModelFailure for any broken promise.
   */
  step(op: Op): boolean {
    if (this.corruption !== null) return false;
    try {
      this.apply(op);
      this.verify();
      return true;
    } catch (error) {
      if (!this.waf || !(error instanceof Corrupted || isCorrupted(error))) throw error;
      this.corruption = `${JSON.stringify(op)}: ${(error as Error).message}`;
      this.counts.corrupted++;
      for (const block of this.live) {
        if (!this.holds(block, block.size)) fail(`after ERR_HEAP_CORRUPTED, live block ${hex(block.ptr)} (${block.size} bytes) had changed`);
      }
      this.abandon();
      return false;
    }
  }

  private apply(op: Op): void {
    const heap = this.heap;
    if (this.live.length === 0 && (op.kind === 'realloc' || op.kind === 'free')) return this.allocate(op.kind === 'realloc' ? op.size : 16, false);
    switch (op.kind) {
      case 'malloc':
        return this.allocate(op.size, op.calloc);
      case 'burst':
        for (let i = 0; i < op.count; i++) this.allocate((op.size + i * 7) % 301, false);
        return;
      case 'realloc': {
        const i = op.pick % this.live.length;
        const block = this.live[i]!;
        const usable = this.usable(block);
        const moved = heap.realloc(block.ptr, op.size);
        this.counts.realloc++;
        if (op.size === 0) {
          if (moved !== 0) fail('realloc(p, 0) did not return 0');
          this.removeLive(i);
          return this.released(block, usable);
        }
        if (moved === 0 || moved % 16 !== 0) fail(`realloc(${hex(block.ptr)}, ${op.size}) returned ${hex(moved)}`);
        const kept = { ptr: moved, size: block.size, word: block.word };
        if (!this.holds(kept, Math.min(block.size, op.size))) fail(`realloc(${hex(block.ptr)}, ${op.size}) lost bytes`);
        if (moved !== block.ptr) this.released(block, usable);
        block.ptr = moved;
        block.size = op.size;
        this.handedOut(moved, op.size);
        return this.fill(block);
      }
      case 'free':
        for (let n = 0; n < op.count && this.live.length > 0; n++) {
          const block = this.removeLive((op.pick + n * 31) % this.live.length);
          const usable = this.usable(block);
          heap.free(block.ptr);
          this.released(block, usable);
          this.counts.free++;
        }
        return;
      case 'misuse':
        return this.misuse(op.what, op.pick, op.arg);
      case 'trim':
        this.counts.trim++;
        return heap.trim();
      case 'check':
        return heap.check();
      case 'writeFreed':
        return this.writeFreed(op.pick, op.offset, op.value, op.width);
    }
  }

  /** Takes live block `i` off the list, the last one taking its place: O(1), whatever the count. */
  private removeLive(i: number): Live {
    const block = this.live[i]!;
    const last = this.live.pop()!;
    if (i < this.live.length) this.live[i] = last;
    return block;
  }

  private usable(block: Live): number {
    return this.waf ? this.heap.usableSize(block.ptr) : 0;
  }

  /**
   * Writes `value` into a freed block's former data, at `offset` (wrapped into its length), only
   * while the range is still free and still inside one of the heap's regions (a freed large block
   * or classic region is unmapped: writing there would crash for a reason that is no bug).
   */
  private writeFreed(pick: number, offset: number, value: number, width: 1 | 4 | 8): void {
    if (!this.waf) return;
    this.pruneFreed();
    if (this.freed.length === 0) return;
    const f = this.freed[pick % this.freed.length]!;
    const length = Math.min(width, f.length);
    const at = f.ptr + (Math.floor(offset % Math.max(1, f.length - length + 1)));
    const bytes = raw(at, length);
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(value / 256 ** (i % 4)) & 0xff;
    if (width === 8 && length === 8) bytes.fill(0, 4); // a small positive 64-bit link
    this.counts.writeFreed++;
  }

  /**
   * Forgets freed ranges no longer inside a region the heap has mapped. Memory goes back to the
   * kernel only with a munmap call the heap counts, so the walk of the regions waits for one.
   */
  private pruneFreed(): void {
    if (this.freed.length === 0) return;
    const unmaps = this.heap.stats().munmapCalls;
    if (unmaps === this.unmapsSeen) return;
    this.unmapsSeen = unmaps;
    const regions = this.heap.snapshot().regions;
    for (let i = this.freed.length - 1; i >= 0; i--) {
      const f = this.freed[i]!;
      if (!regions.some((r) => r.address <= f.ptr && f.ptr + f.length <= r.address + r.size)) this.freed.splice(i, 1);
    }
  }

  /** Misuse must throw the right error and change nothing (verify() runs next). */
  private misuse(what: number, pick: number, arg: number): void {
    const heap = this.heap;
    this.counts.misuse++;
    const expect = (fn: () => unknown, ok: (e: unknown) => boolean, name: string): void => {
      try {
        fn();
      } catch (error) {
        if (ok(error)) return;
        if (this.waf && isCorrupted(error)) throw new Corrupted(`${name}: ${(error as Error).message}`);
        fail(`${name}: threw ${String(error)}`);
      }
      fail(`${name}: did not throw`);
    };
    switch (what % 4) {
      case 0: {
        const stale = this.stale[pick % Math.max(1, this.stale.length)];
        if (stale === undefined || this.live.some((l) => l.ptr === stale)) return;
        expect(() => heap.free(stale), heapError('ERR_DOUBLE_FREE', 'ERR_INVALID_POINTER'), `free of the freed block ${hex(stale)}`);
        return expect(() => heap.realloc(stale, 8), heapError('ERR_DOUBLE_FREE', 'ERR_INVALID_POINTER'), `realloc of the freed block ${hex(stale)}`);
      }
      case 1: {
        const block = this.live[pick % Math.max(1, this.live.length)];
        if (block === undefined || block.size < 2) return;
        const inside = block.ptr + 1 + (arg % (block.size - 1));
        expect(() => heap.free(inside), heapError('ERR_INVALID_POINTER'), `free of the interior address ${hex(inside)}`);
        return expect(() => heap.usableSize(inside), heapError('ERR_INVALID_POINTER'), `usableSize of the interior address ${hex(inside)}`);
      }
      case 2:
        expect(() => heap.free(this.foreign), heapError('ERR_INVALID_POINTER'), "free of another heap's block");
        return expect(() => heap.free(0x1000 + 16 * (arg % 4096)), heapError('ERR_INVALID_POINTER'), 'free of an unmapped address');
      default: {
        const bad = [-1, 1.5, NaN, Infinity, '64', -64n, null, {}][arg % 8]; // a BigInt address is refused only out of range
        const wrongKind = (e: unknown): boolean => e instanceof TypeError || e instanceof RangeError;
        expect(() => heap.malloc(bad as number), wrongKind, `malloc(${String(bad)})`);
        return expect(() => heap.free(bad as number), wrongKind, `free(${String(bad)})`);
      }
    }
  }

  /**
   * check() passes and every live block holds its bytes. With writes after free, check() runs only
   * as an op of the program: run after every op, it would find the damage before the calls that
   * must cope with it (malloc, free, trim) ever met it.
   */
  verify(): void {
    if (!this.waf && ++this.steps % this.checkEvery === 0) this.heap.check();
    const live = this.live;
    if (this.window >= live.length) return this.verifyAll();
    for (let k = 0; k < this.window; k++) {
      if (this.cursor >= live.length) this.cursor = 0;
      this.proveHolds(live[this.cursor++]!);
    }
  }

  /** Every live block holds its bytes. */
  private verifyAll(): void {
    for (const block of this.live) this.proveHolds(block);
  }

  private proveHolds(block: Live): void {
    if (!this.holds(block, block.size)) fail(`live block ${hex(block.ptr)} (${block.size} bytes) lost its bytes`);
  }

  /** Frees everything; the heap must then be empty (after trim, holding nothing). */
  finish(): void {
    if (this.corruption !== null) return;
    try {
      this.verifyAll();
      for (const block of this.live.splice(0)) this.heap.free(block.ptr);
      this.heap.check();
      this.heap.trim();
    } catch (error) {
      if (!(this.waf && isCorrupted(error))) throw error;
      this.corruption = `finish: ${(error as Error).message}`;
      this.counts.corrupted++;
      return this.abandon();
    }
    const s = this.heap.stats();
    if (s.inUse !== 0 || s.usedBlocks !== 0 || s.mapped !== 0) fail(`not empty at the end: ${JSON.stringify(s)}`);
    this.dispose();
  }

  /** Ends the run whatever state it is in. */
  dispose(): void {
    this.abandon();
  }

  /** Stops using the heap: destroyed if it can be, dropped if destroy itself refuses. */
  private abandon(): void {
    for (const heap of [this.heap, this.other]) {
      try {
        heap.destroy();
      } catch {
        // A heap that cannot be destroyed is dropped; its memory stays mapped, unused.
      }
    }
  }
}
