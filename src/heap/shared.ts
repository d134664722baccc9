// The shared preset: one fast heap used by many worker threads. `new Heap({ shared: true })` makes
// it, `heap.handle()` gives a structured-cloneable handle to post to a worker, and
// `Heap.attach(handle)` there makes a heap over the same memory.
//
// Native addresses are valid in every thread of the process, so the blocks and their headers stay
// where the fast preset keeps them: in one reserved arena, which every thread views through a
// koffi view of its own. What the fast preset keeps in JavaScript (the start bitmap, the free-list
// heads and bitmaps, the counters) lives here in a SharedArrayBuffer, the control block, which the
// handle carries.
//
// One lock, in the control block, guards every call: a compare-and-swap to take it, a short spin
// when it is held, then Atomics.wait until it is released (the futex scheme). Holding it, a thread
// loads the counters into the fast preset's fields, runs the fast preset's own code, and stores
// them back before it lets go. The small-block caches are off (a block cached by one thread would
// be lost to the others), and there are no large blocks in mappings of their own (a mapping made
// by one thread would be unknown to the others): every block lives in the arena.
//
// Memory is never unmapped while a thread may still read it: free pages at the top are given back
// as read-only zero pages (as in the fast preset), destroy() does the same to the whole arena, and
// the arena's address range is released only when the last heap over it is closed or destroyed.

import { destroyedError } from './errors.js';
import { FastHeap, TRIM_MIN } from './fast.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import type { SharedHeapHandle } from './types.js';
import { FL_COUNT, SL_COUNT } from '../strategies/tlsf.js';
import { adoptReservation, decommit, releaseReservation, reserveAddressSpace, type Reservation } from '../os/memory.js';

const ARENA_BYTES = 2 ** 30;
const ARENA_MIN_BYTES = 16 * 1024 * 1024;
const MAGIC = 0x66666873;

// The control block: Int32 slots, then Float64 slots, then the lists' arrays and the start bitmap.
const I_MAGIC = 0;
const I_LOCK = 1;
/** Heaps open over the arena (the creator and every attached one not yet closed). */
const I_OPEN = 2;
const I_DESTROYED = 3;
const I_FL_MAP = 4;
/** The heap (by its number) that last let go of the lock: if it is this one, its fields are current. */
const I_HOLDER = 5;
/** The last number handed to a heap over the arena. */
const I_HEAPS = 6;
const I_SLOTS = 16;
const F_ADDRESS = 0;
const F_SIZE = 1;
const F_TOP = 2;
const F_BLOCKS = 3;
const F_IN_USE = 4;
const F_PEAK_IN_USE = 5;
const F_PEAK_MAPPED = 6;
const F_MMAP_CALLS = 7;
const F_MUNMAP_CALLS = 8;
const F_TRIM_THRESHOLD = 9;
const F_LISTED = 10;
const F_SLOTS = 16;
const HEADS_AT = 4 * I_SLOTS + 8 * F_SLOTS;
const SL_MAPS_AT = HEADS_AT + 4 * FL_COUNT * SL_COUNT;
const STARTS_AT = SL_MAPS_AT + 4 * FL_COUNT;

/** Spins this many times on a held lock before it sleeps in Atomics.wait. */
const SPINS = 64;

/**
 * The shared preset, made by `new Heap({ shared: true })` or `Heap.attach(handle)`: a fast heap
 * whose every call takes one lock, so that worker threads can share it.
 */
export class SharedHeap extends FastHeap {
  private readonly control: SharedArrayBuffer;
  private readonly ints: Int32Array;
  private readonly floats: Float64Array;
  /** Calls into this heap in progress on this thread (malloc within realloc...): the lock is held once. */
  private depth = 0;
  /** This heap was closed (or destroyed): its thread has let go of the arena. */
  private closed = false;
  /** This heap's number among those over the arena, from 1. */
  private readonly id: number;

  /** Made by `new Heap({ shared: true })`, or by Heap.attach with the handle of one. */
  constructor(options: ResolvedOptions, handle?: SharedHeapHandle) {
    super(options);
    if (handle === undefined) {
      const arena = reserveAddressSpace(ARENA_BYTES, ARENA_MIN_BYTES);
      if (arena === null) throw new Error('a shared heap needs 16 MiB of address space at least, and the kernel refused it');
      this.control = new SharedArrayBuffer(STARTS_AT + arena.size / 128);
      this.ints = new Int32Array(this.control, 0, I_SLOTS);
      this.floats = new Float64Array(this.control, 4 * I_SLOTS, F_SLOTS);
      this.floats[F_ADDRESS] = arena.address;
      this.floats[F_SIZE] = arena.size;
      this.floats[F_TRIM_THRESHOLD] = this.trimThreshold;
      this.floats[F_MMAP_CALLS] = 1;
      this.ints[I_OPEN] = 1;
      this.id = this.ints[I_HEAPS] = 1;
      Atomics.store(this.ints, I_MAGIC, MAGIC);
      this.useArena(arena);
    } else {
      this.control = handle.control;
      this.ints = new Int32Array(this.control, 0, I_SLOTS);
      this.floats = new Float64Array(this.control, 4 * I_SLOTS, F_SLOTS);
      this.lock();
      try {
        if (this.ints[I_DESTROYED] !== 0) throw destroyedError();
        this.ints[I_OPEN]!++;
        this.id = ++this.ints[I_HEAPS]!;
        this.useArena(adoptReservation(this.floats[F_ADDRESS]!, this.floats[F_SIZE]!));
      } finally {
        this.unlock();
      }
    }
    this.cacheDepth = 0;
    // Requests the arena cannot hold go to mallocLarge, which says out of memory.
    this.largeThreshold = this.reservation!.size;
    this.lists.heads = new Uint32Array(this.control, HEADS_AT, FL_COUNT * SL_COUNT);
    this.lists.slMaps = new Int32Array(this.control, SL_MAPS_AT, FL_COUNT);
    this.starts = new Int32Array(this.control, STARTS_AT);
  }

  private useArena(arena: Reservation): void {
    this.reservation = arena;
    this.base = arena.address;
    this.mem = new Uint32Array(arena.buffer);
    this.bytesView = new Uint8Array(arena.buffer);
    this.lists.mem = this.mem;
  }

  /** A structured-cloneable handle: post it to a worker, and `Heap.attach(handle)` there. */
  override handle(): SharedHeapHandle {
    return {
      kind: 'ffi-heap/shared',
      version: 1,
      control: this.control,
      options: { scribble: this.scribble, limit: this.limit, throwOnOutOfMemory: this.throwOnOutOfMemory },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // The lock, and the fast preset's fields loaded from and stored to the control block under it.

  private lock(): void {
    const ints = this.ints;
    let state = Atomics.compareExchange(ints, I_LOCK, 0, 1);
    if (state === 0) return;
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(ints, I_LOCK) === 0 && (state = Atomics.compareExchange(ints, I_LOCK, 0, 1)) === 0) return;
    }
    // 2: held, and someone may be waiting; whoever releases it then wakes one waiter.
    if (state !== 2) state = Atomics.exchange(ints, I_LOCK, 2);
    while (state !== 0) {
      Atomics.wait(ints, I_LOCK, 2);
      state = Atomics.exchange(ints, I_LOCK, 2);
    }
  }

  private unlock(): void {
    if (Atomics.sub(this.ints, I_LOCK, 1) !== 1) {
      Atomics.store(this.ints, I_LOCK, 0);
      Atomics.notify(this.ints, I_LOCK, 1);
    }
  }

  /** Takes the lock (once per thread, however deep the calls) and loads the shared state. */
  private enter(): void {
    if (this.depth++ > 0) return;
    if (this.closed) {
      this.depth = 0;
      throw destroyedError();
    }
    this.lock();
    // The fields still hold what this heap stored when it last let go, unless another took the lock since.
    if (this.ints[I_HOLDER] === this.id) return;
    const f = this.floats;
    this.destroyed = this.ints[I_DESTROYED] !== 0;
    this.top = f[F_TOP]!;
    this.lists.limit = this.top;
    this.lists.flMap = this.ints[I_FL_MAP]!;
    this.lists.count = f[F_LISTED]!;
    this.blockCount = f[F_BLOCKS]!;
    this.inUse = f[F_IN_USE]!;
    this.peakInUse = f[F_PEAK_IN_USE]!;
    this.peakMapped = f[F_PEAK_MAPPED]!;
    this.mmapCalls = f[F_MMAP_CALLS]!;
    this.munmapCalls = f[F_MUNMAP_CALLS]!;
    this.trimThreshold = f[F_TRIM_THRESHOLD]!;
  }

  /** Stores the shared state and lets go of the lock, when the outermost call ends. */
  private leave(): void {
    if (--this.depth > 0) return;
    const f = this.floats;
    f[F_TOP] = this.top;
    this.ints[I_FL_MAP] = this.lists.flMap;
    f[F_LISTED] = this.lists.count;
    f[F_BLOCKS] = this.blockCount;
    f[F_IN_USE] = this.inUse;
    f[F_PEAK_IN_USE] = this.peakInUse;
    f[F_PEAK_MAPPED] = this.peakMapped;
    f[F_MMAP_CALLS] = this.mmapCalls;
    f[F_MUNMAP_CALLS] = this.munmapCalls;
    f[F_TRIM_THRESHOLD] = this.trimThreshold;
    this.ints[I_HOLDER] = this.id;
    this.unlock();
  }

  // ---------------------------------------------------------------------------------------------
  // Every call, under the lock. Written out one by one rather than through a helper taking a
  // closure: a closure made per call would be garbage on the hot path.

  override malloc(size: number, name?: string): number {
    if (name !== undefined) noNames('malloc');
    this.enter();
    try {
      return super.malloc(size);
    } finally {
      this.leave();
    }
  }

  override calloc(count: number, size: number, name?: string): number {
    if (name !== undefined) noNames('calloc');
    this.enter();
    try {
      return super.calloc(count, size);
    } finally {
      this.leave();
    }
  }

  override realloc(ptr: number, size: number, name?: string): number {
    if (name !== undefined) noNames('realloc');
    this.enter();
    try {
      return super.realloc(ptr, size);
    } finally {
      this.leave();
    }
  }

  override free(ptr: number): void {
    this.enter();
    try {
      this.freeSlow(ptr); // the cache fast path is for unshared heaps
    } finally {
      this.leave();
    }
  }

  override usableSize(ptr: number): number {
    this.enter();
    try {
      return super.usableSize(ptr);
    } finally {
      this.leave();
    }
  }

  override bytes(ptr: number, length?: number): Uint8Array {
    this.enter();
    try {
      return super.bytes(ptr, length);
    } finally {
      this.leave();
    }
  }

  override stats(): ReturnType<FastHeap['stats']> {
    this.enter();
    try {
      return super.stats();
    } finally {
      this.leave();
    }
  }

  override snapshot(): ReturnType<FastHeap['snapshot']> {
    this.enter();
    try {
      return super.snapshot();
    } finally {
      this.leave();
    }
  }

  override check(): void {
    this.enter();
    try {
      super.check();
    } finally {
      this.leave();
    }
  }

  override trim(): void {
    this.enter();
    try {
      super.trim();
    } finally {
      this.leave();
    }
  }

  /** The top is trimmed past twice the growth step (the large-block threshold plays no part here). */
  protected override updateTrimThreshold(): void {
    this.trimThreshold = Math.max(TRIM_MIN, 2 * this.growthStep());
  }

  /** No mappings of its own: a request the arena cannot hold is out of memory. */
  protected override mallocLarge(size: number): number {
    if (this.destroyed) throw destroyedError();
    return this.outOfMemory('malloc', size);
  }

  override autoFree(): void {
    throw new TypeError('autoFree: a shared heap does not track owners (a finalizer runs in one thread only)');
  }

  /**
   * Lets go of the heap in this thread; the arena stays for the others. Every later call here
   * throws ERR_HEAP_DESTROYED. Call it before a worker ends; the last heap closed over a
   * destroyed arena releases its address range.
   */
  override close(): void {
    if (this.closed) return;
    this.lock();
    this.closed = true;
    const last = --this.ints[I_OPEN]! === 0;
    const release = last && this.ints[I_DESTROYED] !== 0;
    this.unlock();
    if (release) releaseReservation(this.reservation!);
  }

  /**
   * Gives every page back to the kernel, for every thread: blocks in use anywhere are gone, and
   * every call on any heap over the arena throws ERR_HEAP_DESTROYED from then on. The pages stay
   * readable (as zeros) until the last heap over the arena is closed, so a thread still reading a
   * view does not crash.
   */
  override destroy(): void {
    if (this.closed) return;
    this.lock();
    try {
      if (this.ints[I_DESTROYED] === 0) {
        this.ints[I_DESTROYED] = 1;
        this.ints[I_HOLDER] = 0; // every heap reloads, and finds it destroyed
        const top = this.floats[F_TOP]!;
        if (top > 0) decommit(this.reservation!, 0, top);
        this.floats[F_MUNMAP_CALLS]!++;
        this.floats[F_TOP] = 0;
        this.floats[F_IN_USE] = 0;
        this.floats[F_BLOCKS] = 0;
        this.floats[F_LISTED] = 0;
        this.ints[I_FL_MAP] = 0;
        this.lists.heads.fill(0);
        this.lists.slMaps.fill(0);
        this.starts.fill(0);
      }
    } finally {
      this.unlock();
    }
    this.close();
  }
}

function noNames(op: string): never {
  throw new TypeError(`${op}: a shared heap keeps no block names (a name lives in one thread's memory)`);
}

/** Heap.attach: checks the handle and opens a heap over its arena. */
export function attachShared(handle: unknown): SharedHeap {
  const h = handle as Partial<SharedHeapHandle> | null;
  if (typeof h !== 'object' || h === null || h.kind !== 'ffi-heap/shared' || !(h.control instanceof SharedArrayBuffer) ||
      h.control.byteLength < STARTS_AT || typeof h.options !== 'object' || h.options === null) {
    throw new TypeError('Heap.attach: expected the handle of a shared heap, from heap.handle()');
  }
  if (h.version !== 1) throw new TypeError(`Heap.attach: a handle of version ${String(h.version)}; this ffi-heap reads version 1`);
  if (Atomics.load(new Int32Array(h.control, 0, 1), I_MAGIC) !== MAGIC) {
    throw new TypeError('Heap.attach: the handle\'s control block is not a shared heap\'s');
  }
  const { scribble, limit, throwOnOutOfMemory } = h.options;
  return new SharedHeap({ ...resolveOptions({ scribble, limit, throwOnOutOfMemory }), shared: true }, h as SharedHeapHandle);
}
