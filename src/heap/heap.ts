// The public Heap. `new Heap(options)` returns an instance of the preset's own subclass
// (FastHeap or ClassicHeap), so a call like heap.malloc() goes straight to that preset's code,
// with no layer in between on the hot path. This base class holds what every preset shares: its
// options, and the text views built from a snapshot.

import { formatLeaks, formatMemory } from '../debug/format.js';
import { toSVG, type SvgOptions } from '../debug/svg.js';
import { allocTyped, decodeTyped, encodeTyped } from '../interop/ctypes.js';
import { OwnerRegistry } from '../interop/owners.js';
import { Arena, Scope } from '../interop/scope.js';
import type { CType } from '../os/libc.js';
import { readCString, typedView, writeCString, type TypedArrayConstructor } from '../interop/views.js';
import type { FitAlgorithm } from '../strategies/fit.js';
import { assertSupported } from '../os/support.js';
import { isResolved, resolveOptions, type HeapOptions, type Preset, type ResolvedOptions } from './options.js';
import { HeapError, hex } from './errors.js';
import { checkSize, toAddress } from './arguments.js';
import type { Address, HeapSnapshot, HeapStats, SharedHeapHandle } from './types.js';

/**
 * What every preset implements. Addresses are returned as Numbers and accepted as Numbers or
 * BigInts (see Address); 0 is NULL.
 */
export interface HeapOperations {
  /** Allocates `size` bytes, optionally named. Returns the address, or 0 when no memory can be had. */
  malloc(size: number, name?: string): number;
  /** Allocates `count * size` zeroed bytes. Returns 0 when the product overflows or no memory can be had. */
  calloc(count: number, size: number, name?: string): number;
  /**
   * Resizes the block at `ptr` to `size` bytes, keeping its contents up to the smaller size.
   * `realloc(0, n)` is `malloc(n)`; `realloc(p, 0)` frees p and returns 0. Returns the (possibly
   * moved) address, or 0 when no memory can be had, in which case the old block is untouched.
   * A name given replaces the block's name; without one the block keeps its own.
   */
  realloc(ptr: Address, size: number, name?: string): number;
  /** Frees the block at `ptr`. `free(0)` does nothing. Throws HeapError for anything but a live block. */
  free(ptr: Address): void;
  /** How many bytes the block at `ptr` (its start) can hold (at least what was asked for). */
  usableSize(ptr: Address): number;
  /**
   * @internal The start of the live block whose usable bytes hold `ptr` (any address inside
   * them), with the end of those bytes left in `foundEnd`; a HeapError naming `op` for any other
   * address.
   */
  blockAt(ptr: number, op: string): number;
  /** @internal `n` bytes from `ptr`, inside the live block that starts at `start` (as blockAt found it). */
  rawBytes(start: number, ptr: number, n: number): Uint8Array;
  /**
   * @internal For the viewer (../viewer/): every region as four numbers, appended to `out` in
   * address order: its address, size, the header bytes of its blocks, and how many blocks it
   * holds (-1 where counting them would walk them).
   */
  viewRegions(out: number[]): void;
  /** @internal For the viewer: the region holding `address` as one triple appended to `out`; false when none does. */
  viewRegionAt(address: number, out: number[]): boolean;
  /**
   * @internal For the viewer: the blocks of the region holding `lo` that overlap [lo, hi), in
   * address order, as (address, size, state) triples appended to `out`; the state is VIEW_USED,
   * VIEW_FREE or VIEW_CACHED. Each header is proved as snapshot() proves it.
   */
  viewBlocks(lo: number, hi: number, out: number[]): void;
  /** @internal For the viewer: snapshot().freeList, appended to `out`. */
  viewFreeList(out: number[]): void;
  /** @internal For the viewer: the name snapshot() gives the block at `address` (a start viewBlocks gave). */
  viewName(address: number): string;
  /** @internal For the viewer: how many blocks are VIEW_CACHED. */
  viewCached(): number;
  /**
   * @internal For the viewer: null, or an array to which the heap from now on appends every change
   * of its free list, in order (an address appended at the tail; minus an address taken off), for
   * the viewer to read and empty; with it the free list need not be walked after each operation.
   */
  viewFreeLog(): number[] | null;
  /**
   * @internal For the viewer: null, or an array to which the heap from now on appends the address
   * of each region whose blocks changed other than through the blocks an operation was given or
   * freed (the fast preset's pages taken, pooled or given back in batches).
   */
  viewRegionLog(): number[] | null;
  /**
   * @internal For the viewer, cheaply (no walk): regions, blocks, bytes in use and bytes mapped,
   * as stats() counts them, then the bytes of every region viewRegions() gives, appended to `out`.
   */
  viewCounts(out: number[]): void;
  /** Counters: bytes mapped and in use (with peaks), blocks, regions, mmap and munmap calls. */
  stats(): HeapStats;
  /** Every region and block, and the free list, as plain data. */
  snapshot(): HeapSnapshot;
  /** Walks every invariant of the heap; throws HeapError('ERR_HEAP_CORRUPTED') naming the first fault. */
  check(): void;
  /**
   * Gives free memory back to the kernel now. The fast preset keeps some free memory for reuse;
   * after trim() an empty heap holds nothing. The classic preset unmaps regions as soon as they
   * are free, so there it does nothing.
   */
  trim(): void;
  /** Unmaps all memory. Every address from this heap is invalid afterwards, and so is the heap. */
  destroy(): void;
}

/** @internal A block in use, as viewBlocks() reports it. */
export const VIEW_USED = 0;
/** @internal A free block (on a free list, a free slot, or a pooled page). */
export const VIEW_FREE = 1;
/** @internal A freed block the fast preset holds whole in a cache for a request of its size. */
export const VIEW_CACHED = 2;

const notViewable = (preset: string): TypeError =>
  new TypeError(`view: a ${preset} heap in this mode cannot be viewed (the fast and classic presets can)`);

type PresetFactory = (options: ResolvedOptions) => Heap;
let createPreset: PresetFactory | undefined;
let attachPreset: ((handle: unknown) => Heap) | undefined;

/** Called once by ./presets.ts, which knows every preset's class. */
export function setPresetFactory(factory: PresetFactory, attach: (handle: unknown) => Heap): void {
  createPreset = factory;
  attachPreset = attach;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface Heap extends HeapOperations {}

/**
 * A heap of native memory. Addresses are Numbers: pass them to C through koffi as pointers
 * (declare the parameter as a pointer or `intptr_t`). 0 is NULL.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Heap {
  /** The preset this heap runs. */
  readonly preset: Preset;
  /** The classic preset's free-space search (the fast preset ignores it). */
  readonly algorithm: FitAlgorithm;
  /** Whether new allocations are filled with 0xAA. */
  readonly scribble: boolean;
  /** The most bytes the heap may hold from the kernel at once (Infinity: no limit of its own). */
  readonly limit: number;
  /** Whether running out of memory throws instead of returning 0. */
  readonly throwOnOutOfMemory: boolean;
  /** Whether the debug checks run (canaries, quarantine of freed blocks). */
  readonly debug: boolean;
  /** Whether worker threads can share this heap (`heap.handle()`, `Heap.attach`). */
  readonly shared: boolean;
  /** Bytes in use from which the fast preset serves requests of up to 256 bytes from pages (see HeapOptions). */
  readonly pagesFrom: number;
  /** Whether the heap keeps its calls as a trace (`record: true`; see recorded()). */
  readonly record: boolean;
  /** @internal The end of the usable bytes of the block blockAt() found last (its second result). */
  foundEnd = 0;
  /** Blocks to free when their owner objects are collected (autoFree); null until first used. */
  protected owners: OwnerRegistry | null = null;

  constructor(options: HeapOptions = {}) {
    // The preset classes are exported for instanceof; only `new Heap()` (or Heap.attach) makes one.
    if (new.target !== Heap && !isResolved(options)) {
      throw new TypeError(`new ${new.target.name}(): make heaps with new Heap(options) or Heap.attach(handle); ` +
        `${new.target.name} is exported so that a heap can be tested with instanceof`);
    }
    const resolved = resolveOptions(options);
    assertSupported();
    this.preset = resolved.preset;
    this.algorithm = resolved.algorithm;
    this.scribble = resolved.scribble;
    this.limit = resolved.limit;
    this.throwOnOutOfMemory = resolved.throwOnOutOfMemory;
    this.debug = resolved.debug;
    this.shared = resolved.shared;
    this.pagesFrom = resolved.pagesFrom;
    this.record = resolved.record;
    if (new.target === Heap) {
      if (createPreset === undefined) throw new Error('ffi-heap: import the package entry point, which registers the presets');
      return createPreset(resolved);
    }
  }

  /**
   * A heap over the same memory as the shared heap whose `handle()` this is, for this thread (a
   * worker, usually): blocks allocated in one thread can be used and freed in any other.
   */
  static attach(handle: SharedHeapHandle): Heap {
    if (attachPreset === undefined) throw new Error('ffi-heap: import the package entry point, which registers the presets');
    return attachPreset(handle);
  }

  /**
   * For a shared heap: a structured-cloneable handle to post to a worker, which opens the heap
   * there with `Heap.attach(handle)`. Other heaps throw a TypeError.
   */
  handle(): SharedHeapHandle {
    throw new TypeError('handle(): only a heap made with { shared: true } has a handle');
  }

  /**
   * For a heap made with `{ record: true }`: every malloc, calloc, realloc and free so far, as a
   * malloc-lab trace (text) for `ffi-heap replay` and `ffi-heap view`; `{ names: true }` keeps the
   * names given, as `#name` lines that ffi-heap's tools read. Other heaps throw a TypeError.
   */
  recorded(_options?: { names?: boolean }): string {
    throw new TypeError('recorded(): only a heap made with { record: true } keeps its calls');
  }

  /** @internal See HeapOperations; the fast and classic presets can be viewed. */
  viewRegions(_out: number[]): void {
    throw notViewable(this.preset);
  }

  /** @internal See HeapOperations. */
  viewRegionAt(_address: number, _out: number[]): boolean {
    throw notViewable(this.preset);
  }

  /** @internal See HeapOperations. */
  viewBlocks(_lo: number, _hi: number, _out: number[]): void {
    throw notViewable(this.preset);
  }

  /** @internal See HeapOperations. */
  viewFreeList(_out: number[]): void {
    throw notViewable(this.preset);
  }

  /** @internal See HeapOperations. */
  viewName(_address: number): string {
    throw notViewable(this.preset);
  }

  /** @internal See HeapOperations: from stats(), for the presets whose stats() walks nothing. */
  viewCounts(out: number[]): void {
    const s = this.stats();
    const regions: number[] = [];
    this.viewRegions(regions);
    let bytes = 0;
    for (let k = 1; k < regions.length; k += 4) bytes += regions[k]!;
    out.push(s.regions, s.blocks, s.inUse, s.mapped, bytes);
  }

  /** @internal See HeapOperations: the fast preset's lists change in too many places to log. */
  viewFreeLog(): number[] | null {
    return null;
  }

  /** @internal See HeapOperations. */
  viewRegionLog(): number[] | null {
    return null;
  }

  /** @internal See HeapOperations; no block is cached but in the fast preset's caches. */
  viewCached(): number {
    return 0;
  }

  /**
   * Lets go of the heap in this thread. For a shared heap, the memory stays for the other threads
   * (call it before a worker ends); for any other heap it is destroy().
   */
  close(): void {
    this.destroy();
  }

  /**
   * What malloc, calloc and realloc return when no memory can be had: 0, or (when the heap was
   * made with throwOnOutOfMemory) a HeapError('ERR_OUT_OF_MEMORY'). Nothing has changed either way.
   */
  protected outOfMemory(op: string, bytes: number | string): number {
    if (this.throwOnOutOfMemory) {
      throw new HeapError('ERR_OUT_OF_MEMORY', `${op}: no memory for ${bytes} bytes` +
        (this.limit === Infinity ? ' (the kernel refused, or the request is beyond any mapping)' : ` within the heap's limit of ${this.limit} bytes`));
    }
    return 0;
  }

  /**
   * Throws HeapError('ERR_HEAP_DESTROYED') once the heap is destroyed. The calls this class defines
   * run it first; a preset overrides it with its own test (the base knows no preset's state).
   */
  protected assertLive(): void {}

  /**
   * A Uint8Array over `length` bytes from `ptr`, any address inside a live block (up to the block's
   * end by default), bounds-checked against that block. It aliases native memory: do not keep it
   * past the block's free().
   */
  bytes(ptr: Address, length?: number): Uint8Array {
    return this.span('bytes', ptr, length);
  }

  /**
   * @internal What bytes() does, for every call that reads or writes through an address: the view
   * of `length` bytes from `ptr` (to the end of its block by default), with errors naming `op`.
   */
  span(op: string, ptr: Address, length?: number): Uint8Array {
    this.assertLive();
    const p = toAddress(op, ptr);
    if (length !== undefined) checkSize(op, 'length', length);
    const start = this.blockAt(p, op);
    const room = this.foundEnd - p;
    const n = length ?? room;
    if (n > room) {
      throw new RangeError(`${op}(${hex(p)}, ${n}): the block has only ${room} usable bytes` +
        (p === start ? '' : ` from that address (${p - start} bytes into the block)`));
    }
    return this.rawBytes(start, p, n);
  }

  /** The print_memory text: regions, blocks and the free list. */
  formatMemory(): string {
    this.assertLive();
    return formatMemory(this.snapshot());
  }

  /** Writes formatMemory() to standard output. */
  printMemory(): void {
    process.stdout.write(this.formatMemory());
  }

  /** The leak-check text: every block still in use, and the totals. */
  leakReport(): string {
    this.assertLive();
    return formatLeaks(this.snapshot());
  }

  /**
   * A typed view of `count` elements (all that fit, by default) from `ptr`, any address inside a
   * live block at a multiple of the element size, bounds-checked against the block:
   * `heap.view(p, Float64Array, 100)`.
   */
  view<T extends TypedArrayConstructor>(ptr: Address, type: T, count?: number): InstanceType<T> {
    this.assertLive();
    return typedView(this, ptr, type, count);
  }

  /** A new block holding `text` as UTF-8 plus a NUL, for C functions that take `const char *`. */
  cstring(text: string, name?: string): number {
    this.assertLive();
    return writeCString(this, text, name);
  }

  /** The NUL-terminated UTF-8 string at `ptr`, any address inside a live block (the NUL must come before the block's end). */
  readCString(ptr: Address): string {
    this.assertLive();
    return readCString(this, ptr);
  }

  /**
   * Room for `count` zeroed values of a C type described with koffi ('double', a koffi.struct...):
   * the heap's answer to koffi.alloc. Returns the address, or 0 when no memory can be had.
   */
  alloc(type: CType, count = 1, name?: string): number {
    this.assertLive();
    return allocTyped(this, type, count, name);
  }

  /** Writes `value` as element `index` of C type `type` at `ptr`, any address inside a live block (koffi.encode, bounds-checked). */
  encode(ptr: Address, type: CType, value: unknown, index = 0): void {
    this.assertLive();
    encodeTyped(this, ptr, type, value, index);
  }

  /**
   * Reads element `index` of C type `type` at `ptr`, any address inside a live block (koffi.decode,
   * bounds-checked). `T` is what the caller expects koffi to give for that type; it is not checked.
   */
  decode<T = unknown>(ptr: Address, type: CType, index = 0): T {
    this.assertLive();
    return decodeTyped(this, ptr, type, index) as T;
  }

  /**
   * A safety net, not the main way to free: frees the live block at `ptr` when `owner` (any
   * object) is garbage-collected, unless the block is freed first. A block freed by hand is never
   * freed again by the finalizer, and realloc carries the tracking to the block's new address.
   * Finalizers run late or never, so memory tracked this way may be held long after its owner is
   * gone; free blocks when you are done with them, or use a scope.
   */
  autoFree(ptr: Address, owner: object): void {
    this.assertLive();
    ptr = toAddress('autoFree', ptr);
    if ((typeof owner !== 'object' && typeof owner !== 'function') || owner === null) {
      throw new TypeError(`autoFree: the owner must be an object, got ${owner === null ? 'null' : typeof owner}`);
    }
    if (ptr === 0) throw new TypeError('autoFree: the address is NULL');
    // Anything but the start of a live block is refused: the finalizer will free() this address.
    if (this.blockAt(ptr, 'autoFree') !== ptr) {
      throw new HeapError('ERR_INVALID_POINTER', `autoFree(${hex(ptr)}): inside a block, not its start (free() needs the start)`, ptr);
    }
    (this.owners ??= new OwnerRegistry(this, (p) => this.markOwned(p))).add(ptr, owner);
  }

  /** How many blocks autoFree is holding for their owners. */
  get autoFreeCount(): number {
    return this.owners?.size ?? 0;
  }

  /** Flags a block tracked by autoFree, for presets whose fast free path must notice it. */
  protected markOwned(_ptr: number): void {}

  /** A scope whose allocations are all freed when it ends: `using scope = heap.scope()`. */
  scope(): Scope {
    this.assertLive();
    return new Scope(this);
  }

  /**
   * Runs `fn` with a scope, freeing what it allocated there when `fn` returns or throws. When `fn`
   * returns a promise (an async function), the scope ends when the promise settles, and withScope
   * returns a promise of the same value. Should both `fn` and the scope's dispose() fail, the
   * error is an AggregateError holding the two.
   */
  withScope<R>(fn: (scope: Scope) => R): R {
    this.assertLive();
    if (typeof fn !== 'function') throw new TypeError(`withScope: expected a function, got ${fn === null ? 'null' : typeof fn}`);
    const scope = new Scope(this);
    let result: R;
    try {
      result = fn(scope);
    } catch (error) {
      throw endScope(scope, error);
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (value) => {
          scope.dispose();
          return value;
        },
        (error: unknown) => {
          throw endScope(scope, error);
        },
      ) as R;
    }
    scope.dispose();
    return result;
  }

  /** An arena of `capacity` bytes in one block: bump allocation, all freed at once. */
  arena(capacity: number, name?: string): Arena {
    this.assertLive();
    return new Arena(this, capacity, name);
  }

  /** A picture of the heap as SVG text: a row of boxes for each region, used and free in two colours. */
  toSVG(options?: SvgOptions): string {
    this.assertLive();
    return toSVG(this.snapshot(), options);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null &&
    typeof (value as { then?: unknown }).then === 'function';
}

/** Ends `scope` after its body failed with `error`: the error to throw (both, should dispose() fail too). */
function endScope(scope: Scope, error: unknown): unknown {
  try {
    scope.dispose();
  } catch (disposeError) {
    return new AggregateError([error, disposeError], 'withScope: the function threw, and so did the scope\'s dispose() after it');
  }
  return error;
}
