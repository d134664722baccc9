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
// Two paths, as in the fast preset:
// - Each thread has small-block caches of its own (8 blocks a size). A free that fits one claims
//   the block with a compare-and-swap on its header (used -> cached), so two threads freeing one
//   block cannot both succeed; a malloc of a size whose cache holds a block takes it back. Neither
//   takes a lock: a cached block belongs to its thread alone, and the words these paths write are
//   ones no other thread writes while the block is used or cached. Any thread may cache any block;
//   there is no owner to hand it back to.
// - Everything else takes one lock in the control block: a compare-and-swap, a short spin when it
//   is held, then Atomics.wait (the futex scheme). Holding it, a thread loads the counters into the
//   fast preset's fields (only if another thread held the lock since), runs the fast preset's own
//   code, and stores them back before it lets go.
//
// Accounting: the shared `inUse` counts cached blocks as in use (the lock-free paths do not touch
// it); each thread publishes how many blocks and bytes its caches hold in a slot of the control
// block, and stats() subtracts them. There are no large blocks in mappings of their own (a mapping
// made by one thread would be unknown to the others): every block lives in the arena.
//
// Memory is never unmapped, nor made read-only, while a heap over it is open in any thread: free
// pages at the top are given back as read-only zero pages only from the free lists (no thread's
// cache holds them), destroy() marks the heap dead for every thread, and the arena's range is
// released when the last heap over it is closed.

import { HeapError, destroyedError } from './errors.js';
import { CACHE_MAX_BLOCK, CACHE_MAX_REQUEST, FastHeap, SCRIBBLE_BYTE, TRIM_MIN } from './fast.js';
import { Block, Flag, Word, fastBlockSize } from '../layout/fast.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import type { SharedHeapHandle } from './types.js';
import { FL_COUNT, SL_COUNT } from '../strategies/tlsf.js';
import { adoptReservation, getPageSize, isMapped, isReadWrite, releaseReservation, reserveAddressSpace, type Reservation } from '../os/memory.js';
import type { HeapStats } from './types.js';

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
/** How many heaps may be open over one arena at once (one slot each). */
const MAX_OPEN = 1024;
const HEADS_AT = 4 * I_SLOTS + 8 * F_SLOTS;
const SL_MAPS_AT = HEADS_AT + 4 * FL_COUNT * SL_COUNT;
const CACHED_BYTES_AT = align8(SL_MAPS_AT + 4 * FL_COUNT);
const CACHED_BLOCKS_AT = CACHED_BYTES_AT + 8 * MAX_OPEN;
const SLOT_TAKEN_AT = CACHED_BLOCKS_AT + 4 * MAX_OPEN;
const STARTS_AT = SLOT_TAKEN_AT + 4 * MAX_OPEN;

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Blocks a size's cache holds in each thread: few, since a thread's cache is lost to the others. */
const CACHE_DEPTH = 8;
// A module-level const, so that V8 folds it (an imported binding is read through a cell per use).
const blockSize = fastBlockSize;

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
  /** This heap's slot in the control block, where it publishes what its caches hold. */
  private readonly slot: number;
  private readonly slotBytes: Float64Array;
  private readonly slotBlocks: Int32Array;
  /** 1 where a slot belongs to an open heap. */
  private readonly slotTaken: Int32Array;
  private cachedHere = 0;
  private cachedBytesHere = 0;
  /** Bytes from the arena's start this thread has seen read-write (see enter). */
  private provenTop = 0;

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
      this.slot = 0;
      this.slotTaken = new Int32Array(this.control, SLOT_TAKEN_AT, MAX_OPEN);
      this.slotTaken[0] = 1;
      Atomics.store(this.ints, I_MAGIC, MAGIC);
      this.useArena(arena);
    } else {
      this.control = handle.control;
      this.ints = new Int32Array(this.control, 0, I_SLOTS);
      this.floats = new Float64Array(this.control, 4 * I_SLOTS, F_SLOTS);
      this.lock();
      try {
        if (this.ints[I_DESTROYED] !== 0) throw destroyedError();
        this.slotTaken = new Int32Array(this.control, SLOT_TAKEN_AT, MAX_OPEN);
        this.slot = this.slotTaken.indexOf(0);
        if (this.slot < 0) throw new Error(`Heap.attach: ${MAX_OPEN} heaps are open over this shared heap already; close some first`);
        this.useArena(provenArena(this.ints, this.floats, this.control.byteLength));
        this.provenTop = this.floats[F_TOP]!;
        this.slotTaken[this.slot] = 1;
        this.ints[I_OPEN]!++;
        this.id = ++this.ints[I_HEAPS]!;
      } finally {
        this.unlock();
      }
    }
    this.cacheDepth = 0;
    // Small-object pages are one thread's: every block of a shared heap is in the shared arena.
    this.small.unavailable = true;
    // Pages given back are marked in one thread's state only: the arena's free blocks keep theirs.
    this.purgeMin = Infinity;
    // Requests the arena cannot hold go to mallocLarge, which says out of memory.
    this.largeThreshold = this.reservation!.size;
    this.lists.heads = new Uint32Array(this.control, HEADS_AT, FL_COUNT * SL_COUNT);
    this.lists.slMaps = new Int32Array(this.control, SL_MAPS_AT, FL_COUNT);
    this.starts = new Int32Array(this.control, STARTS_AT);
    this.lists.starts = this.starts;
    this.slotBytes = new Float64Array(this.control, CACHED_BYTES_AT, MAX_OPEN);
    this.slotBlocks = new Int32Array(this.control, CACHED_BLOCKS_AT, MAX_OPEN);
    this.slotBytes[this.slot] = 0;
    this.slotBlocks[this.slot] = 0;
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
    if (this.ints[I_DESTROYED] !== 0) {
      this.depth = 0;
      this.unlock();
      throw destroyedError();
    }
    // The fields still hold what this heap stored when it last let go, unless another took the lock since.
    if (this.ints[I_HOLDER] === this.id) return;
    const f = this.floats;
    const top = f[F_TOP]!;
    // The arena's range was proved on attach; a top past it, or past what is committed, would lead
    // reads out of it. What lies below `provenTop` was found read-write already; growth is
    // geometric, so the look at the kernel's mappings is rare.
    if (!validTop(top, this.reservation!.size) || (top > this.provenTop && !isReadWrite(this.base + this.provenTop, top - this.provenTop))) {
      this.depth = 0;
      this.unlock();
      throw new HeapError('ERR_HEAP_CORRUPTED', `heap corrupted: the control block's top (${top}) is not inside the arena's committed memory`);
    }
    this.provenTop = top;
    this.top = top;
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
    // Without the lock: a block of this size from this thread's cache. Its header is ours alone
    // while it is cached, so plain reads and writes do.
    if (typeof size === 'number' && size <= CACHE_MAX_REQUEST && (size >>> 0) === size && name === undefined &&
        this.ints[I_DESTROYED] === 0) {
      const need = blockSize(size);
      const c = need >>> 4;
      const h = this.cacheHeads[c]!;
      if (h !== 0) {
        const mem = this.mem;
        const w = h >>> 2;
        const next = mem[w + Word.NEXT_FREE]!;
        const left = this.cacheCounts[c]! - 1;
        // As in FastHeap.malloc: the link is 0 at the cache's last block, else a recorded block start.
        if (mem[w + Word.SIZE] === (need | Flag.CACHED) && (next === 0 ? left === 0 : left > 0 && next < this.top &&
            (next & Flag.MASK) === Block.HEADER && (this.starts[next >>> 9]! & (1 << ((next >>> 4) & 31))) !== 0)) {
          this.cacheHeads[c] = next;
          this.cacheCounts[c] = left;
          mem[w + Word.SIZE] = need;
          this.slotBlocks[this.slot] = --this.cachedHere;
          this.slotBytes[this.slot] = this.cachedBytesHere -= need;
          if (this.scribble === true) this.bytesView.fill(SCRIBBLE_BYTE, h + Block.HEADER, h + need);
          return this.base + h + Block.HEADER;
        }
      }
    }
    if (name !== undefined) noNames('malloc');
    this.enter();
    try {
      // Not super.malloc, whose own cache path would count the block as the unshared preset does.
      return +this.mallocSlow(size, undefined);
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
    // Without the lock: an unnamed block of up to 2 KiB, at a recorded block start, whose size the
    // next header confirms, into this thread's cache if it has room. The compare-and-swap on its
    // size word (used -> cached) claims it: of two threads freeing one block, one wins and the
    // other takes the locked path, which reports the double free. The checks are FastHeap.free's,
    // written out again because there they stay inline in the unshared hot path.
    if (typeof ptr === 'number' && this.ints[I_DESTROYED] === 0) {
      const h = ptr - this.base - Block.HEADER;
      // `top` may be stale here: a block past it takes the locked path, which loads it afresh.
      if ((h >>> 0) === h && h >= Block.HEADER && h < this.top && (h & Flag.MASK) === Block.HEADER &&
          (this.starts[h >>> 9]! & (1 << ((h >>> 4) & 31))) !== 0) {
        const mem = this.mem;
        const w = h >>> 2;
        const size = mem[w + Word.SIZE]!;
        const c = size >>> 4;
        if (size <= CACHE_MAX_BLOCK && (size & Flag.MASK) === 0 && size !== 0 && h + size <= this.top - Block.HEADER &&
            mem[(h + size) >>> 2] === size && this.cacheCounts[c]! < CACHE_DEPTH &&
            Atomics.compareExchange(mem, w + Word.SIZE, size, size | Flag.CACHED) === size) {
          mem[w + Word.NEXT_FREE] = this.cacheHeads[c]!;
          this.cacheHeads[c] = h;
          this.cacheCounts[c]!++;
          this.slotBlocks[this.slot] = ++this.cachedHere;
          this.slotBytes[this.slot] = this.cachedBytesHere += size;
          return;
        }
      }
    }
    this.enter();
    try {
      this.freeSlow(ptr); // with caching off (cacheDepth 0): merged into the free lists
    } finally {
      this.leave();
    }
  }

  /**
   * Claims used block `w` for a free under the lock with a compare-and-swap, as the lock-free free
   * claims it for a cache: of two threads freeing one block, whatever their paths, one wins.
   */
  protected override claim(w: number, sizeWord: number): boolean {
    return Atomics.compareExchange(this.mem, w + Word.SIZE, sizeWord, sizeWord | Flag.FREE) === sizeWord;
  }

  /** The caches go back to the free lists (when the heap would grow, on trim, on close). */
  protected override flushCaches(): void {
    // Cached blocks count as in use in the shared counter; on the lists they are free.
    this.inUse -= this.cachedBytesHere;
    super.flushCaches();
    this.cachedHere = 0;
    this.cachedBytesHere = 0;
    this.slotBlocks[this.slot] = 0;
    this.slotBytes[this.slot] = 0;
  }

  /** Blocks and bytes every thread's caches hold, as published in the slots. */
  private cachedEverywhere(): { blocks: number; bytes: number } {
    let blocks = 0;
    let bytes = 0;
    for (let i = 0; i < MAX_OPEN; i++) {
      if (this.slotTaken[i] === 0) continue;
      blocks += this.slotBlocks[i]!;
      bytes += this.slotBytes[i]!;
    }
    return { blocks, bytes };
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

  /** Every committed byte: which of them another thread has touched is not tracked across threads. */
  protected override mapped(): number {
    return this.committed();
  }

  override stats(): HeapStats {
    this.enter();
    try {
      const cached = this.cachedEverywhere();
      const inUse = this.inUse - cached.bytes;
      return {
        mapped: this.top,
        peakMapped: this.peakMapped,
        inUse,
        // Counted with blocks parked in threads' caches, which the threads' own paths move unseen.
        peakInUse: this.peakInUse,
        freeBytes: this.top - inUse,
        blocks: this.blockCount,
        usedBlocks: this.blockCount - this.lists.count - cached.blocks,
        freeBlocks: this.lists.count + cached.blocks,
        regions: this.top > 0 ? 1 : 0,
        mmapCalls: this.mmapCalls,
        munmapCalls: this.munmapCalls,
      };
    } finally {
      this.leave();
    }
  }

  /** check() compares the walk with the counters only while no other heap is open over the arena. */
  protected override countedInUse(): number | undefined {
    return this.ints[I_OPEN] === 1 ? this.inUse - this.cachedBytesHere : undefined;
  }

  /** This thread's caches are walked; all cached blocks are accounted for when it is alone. */
  protected override checkCaches(cachedBlocks: number): void {
    super.checkCaches(this.ints[I_OPEN] === 1 ? cachedBlocks : this.cachedHere);
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
    return this.outOfMemory('malloc', size);
  }

  /** Every call after close() here, or destroy() in any thread, throws ERR_HEAP_DESTROYED. */
  protected override assertLive(): void {
    if (this.closed || this.ints[I_DESTROYED] !== 0) throw destroyedError();
  }

  override autoFree(): void {
    throw new TypeError('autoFree: a shared heap does not track owners (a finalizer runs in one thread only)');
  }

  /**
   * Lets go of the heap in this thread: its cached blocks go back to the free lists, the arena
   * stays for the others, and every later call here throws ERR_HEAP_DESTROYED. Call it before a
   * worker ends. The last heap closed over a destroyed arena releases it.
   */
  override close(): void {
    if (this.closed) return;
    if (this.cachedHere > 0 && this.ints[I_DESTROYED] === 0) {
      try {
        this.enter();
        try {
          this.flushCaches();
        } finally {
          this.leave();
        }
      } catch (e) {
        // Destroyed by another thread meanwhile: nothing to give back.
        if (!(e instanceof HeapError && e.code === 'ERR_HEAP_DESTROYED')) throw e;
      }
    }
    // The lock-free paths see an empty cache and an empty heap from now on, and take the locked
    // paths, which refuse a closed heap.
    this.cacheHeads.fill(0);
    this.cacheCounts.fill(0);
    this.top = 0;
    this.lock();
    try {
      this.closed = true;
      this.slotTaken[this.slot] = 0;
      this.slotBlocks[this.slot] = 0;
      this.slotBytes[this.slot] = 0;
      if (--this.ints[I_OPEN]! === 0 && this.ints[I_DESTROYED] !== 0) {
        releaseReservation(this.reservation!);
        this.floats[F_MUNMAP_CALLS]!++;
      }
    } finally {
      this.unlock();
    }
  }

  /**
   * Ends the heap for every thread: every later call on any heap over the arena throws
   * ERR_HEAP_DESTROYED, and its blocks are gone. The memory goes back to the kernel when the last
   * heap over it is closed (this one closes here), so that no thread in the middle of a call, or
   * holding a view, ever touches unmapped memory.
   */
  override destroy(): void {
    if (this.closed) return;
    this.lock();
    this.ints[I_DESTROYED] = 1; // enter() and the lock-free paths check it first
    this.unlock();
    this.close();
  }
}

function noNames(op: string): never {
  throw new TypeError(`${op}: a shared heap keeps no block names (a name lives in one thread's memory)`);
}

function validTop(top: number, arenaSize: number): boolean {
  return Number.isSafeInteger(top) && top >= 0 && top <= arenaSize && top % getPageSize() === 0;
}

/**
 * The arena a control block describes, once proved: a range of the right size for the control
 * block, mapped in this process, with a top inside it, under a heap still open. The control block
 * is JavaScript memory, out of native code's reach, but a handle can come from anywhere.
 */
function provenArena(ints: Int32Array, floats: Float64Array, controlBytes: number): Reservation {
  const address = floats[F_ADDRESS]!;
  const size = floats[F_SIZE]!;
  const top = floats[F_TOP]!;
  const page = getPageSize();
  if (!Number.isSafeInteger(size) || size < ARENA_MIN_BYTES || size > ARENA_BYTES || size % page !== 0 ||
      controlBytes !== STARTS_AT + size / 128 || !validTop(top, size) || ints[I_OPEN]! < 1 ||
      !isMapped(address, size) || !isReadWrite(address, top)) {
    throw new TypeError('Heap.attach: the handle\'s control block does not describe a live shared heap (its arena, size or top is damaged)');
  }
  return adoptReservation(address, size);
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
