// The shared preset: one fast heap used by many worker threads. `new Heap({ shared: true })` makes
// it, `heap.handle()` gives a structured-cloneable handle to post to a worker, and
// `Heap.attach(handle)` there makes a heap over the same memory.
//
// Native addresses are valid in every thread of the process, so the blocks and their headers stay
// where the fast preset keeps them: in one reserved arena, which every thread views through a
// koffi view of its own. What the fast preset keeps in JavaScript (the start bitmap, the free-list
// heads and bitmaps, the counters, the small-block caches) lives in a SharedArrayBuffer, the
// control block (./shared-control.ts), which the handle carries.
//
// Two paths, as in the fast preset:
// - Each heap has small-block caches of its own (8 blocks a size), in its slot of the control
//   block. A free that fits one claims the block with a compare-and-swap on its header (used ->
//   cached), so two threads freeing one block cannot both succeed; a malloc of a size whose cache
//   holds a block takes it back. Neither takes the lock: a cached block belongs to its heap alone,
//   and the words these paths write are ones no other thread writes while the block is used or
//   cached. Any thread may cache any block; there is no owner to hand it back to.
// - Everything else takes one lock in the control block. Holding it, a thread loads the counters
//   into the fast preset's fields (only if another thread held the lock since), runs the fast
//   preset's own code, and stores them back before it lets go.
//
// Threads that end: a thread may be terminated at any instruction, or end without close().
// - The lock names its holder's thread; waiters wake every few milliseconds, and take the lock over
//   from a thread that has ended (acquire in ./shared-control.ts). The arena it may have left half
//   changed is then rebuilt from its blocks (FastHeap.rebuildArena): at worst the blocks that call
//   was handling are lost, never the heap.
// - A heap whose thread has ended is reclaimed by the next thread that attaches, asks for stats,
//   checks, trims or grows the arena: its cached blocks go back to the free lists and its slot is
//   free again. So any number of threads may attach over the heap's life, MAX_OPEN at once.
//
// Accounting: the shared `inUse` counts cached blocks as in use (the lock-free paths do not touch
// it); each heap publishes how many blocks and bytes its caches hold in its slot, and stats()
// subtracts them. There are no large blocks in mappings of their own (a mapping made by one thread
// would be unknown to the others): every block lives in the arena.
//
// Memory is never unmapped, nor made read-only, while a heap over it is open in any thread: free
// pages at the top are given back as read-only zero pages only from the free lists (no thread's
// cache holds them), destroy() marks the heap dead for every thread, and the arena's range is
// released when the last heap over it is closed (or reclaimed).

import { HeapError, destroyedError } from './errors.js';
import { CACHE_MAX_BLOCK, CACHE_MAX_REQUEST, FastHeap, SCRIBBLE_BYTE, TRIM_MIN } from './fast.js';
import { Block, Flag, Word, fastBlockSize } from '../layout/fast.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import type { SharedHeapHandle, SharedThreadStats } from './types.js';
import { FL_COUNT, SL_COUNT } from '../strategies/tlsf.js';
import {
  adoptReservation, getPageSize, isMapped, isReadWrite, releaseReservation, reserveAddressSpace, type Reservation,
} from '../os/memory.js';
import { currentThread } from '../os/threads.js';
import type { HeapStats } from './types.js';
import {
  CACHE_CLASSES, CACHE_COUNTS_AT, CACHE_HEADS_AT, CACHE_STRIDE, F, HEADS_AT, I, MAGIC, MAX_OPEN, SLOTS_AT, SL_MAPS_AT, STARTS_AT,
  Slot, acquire, controlBytes, release, threadGone, threadId,
} from './shared-control.js';

const ARENA_BYTES = 2 ** 30;
const ARENA_MIN_BYTES = 16 * 1024 * 1024;

/** Blocks a size's cache holds in each thread: few, since a thread's cache is lost to the others. */
const CACHE_DEPTH = 8;
// A module-level const, so that V8 folds it (an imported binding is read through a cell per use).
const blockSize = fastBlockSize;

/**
 * The shared preset, made by `new Heap({ shared: true })` or `Heap.attach(handle)`: a fast heap
 * whose every call but the cached ones takes one lock, so that worker threads can share it.
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
  /** This thread's id in the control block: what the lock and the slot say of their holder. */
  private readonly threadId: number;
  /** This heap's slot in the control block, where its caches live. */
  private readonly slot: number;
  /** The slots' records (see Slot in ./shared-control.ts), as Int32 and as Float64. */
  private readonly slotInts: Int32Array;
  private readonly slotFloats: Float64Array;
  private cachedHere = 0;
  private cachedBytesHere = 0;
  /** Bytes from the arena's start this thread has seen read-write (see enter). */
  private provenTop = 0;

  /** Made by `new Heap({ shared: true })`, or by Heap.attach with the handle of one. */
  constructor(options: ResolvedOptions, handle?: SharedHeapHandle) {
    super(options);
    const me = currentThread();
    if (handle === undefined) {
      const arena = reserveAddressSpace(ARENA_BYTES, ARENA_MIN_BYTES);
      if (arena === null) throw new Error('a shared heap needs 16 MiB of address space at least, and the kernel refused it');
      this.control = new SharedArrayBuffer(controlBytes(arena.size));
      this.ints = new Int32Array(this.control, 0, I.COUNT);
      this.floats = new Float64Array(this.control, 4 * I.COUNT, F.COUNT);
      this.floats[F.ADDRESS] = arena.address;
      this.floats[F.SIZE] = arena.size;
      this.floats[F.TRIM_THRESHOLD] = this.trimThreshold;
      this.floats[F.MMAP_CALLS] = 1;
      this.id = this.ints[I.HEAPS] = 1;
      Atomics.store(this.ints, I.MAGIC, MAGIC);
      this.useArena(arena);
    } else {
      this.control = handle.control;
      this.ints = new Int32Array(this.control, 0, I.COUNT);
      this.floats = new Float64Array(this.control, 4 * I.COUNT, F.COUNT);
      this.id = Atomics.add(this.ints, I.HEAPS, 1) + 1;
      this.useArena(provenArena(this.ints, this.floats, this.control.byteLength));
    }
    this.threadId = threadId(me?.tid, this.id);
    this.slotInts = new Int32Array(this.control, SLOTS_AT, Slot.INTS * MAX_OPEN);
    this.slotFloats = new Float64Array(this.control, SLOTS_AT, Slot.FLOATS * MAX_OPEN);
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
    // The slot: taken under the lock, after the heaps of threads that have ended are reclaimed.
    this.slot = -1;
    this.enter();
    try {
      if (this.ints[I.DESTROYED] !== 0) throw destroyedError();
      this.reclaimDeadSlots();
      this.slot = this.claimSlot(me?.start ?? 0);
      this.provenTop = this.top;
    } finally {
      this.leave();
    }
    this.cacheHeads = new Uint32Array(this.control, CACHE_HEADS_AT + CACHE_STRIDE * this.slot, CACHE_CLASSES);
    this.cacheCounts = new Int32Array(this.control, CACHE_COUNTS_AT + CACHE_STRIDE * this.slot, CACHE_CLASSES);
  }

  private useArena(arena: Reservation): void {
    this.reservation = arena;
    this.base = arena.address;
    this.mem = new Uint32Array(arena.buffer);
    this.bytesView = new Uint8Array(arena.buffer);
    this.lists.mem = this.mem;
  }

  /** A free slot for this heap, its caches empty; under the lock. */
  private claimSlot(start: number): number {
    const ints = this.slotInts;
    for (let s = 0; s < MAX_OPEN; s++) {
      const at = s * Slot.INTS + Slot.I_THREAD;
      if (ints[at] !== 0 || Atomics.compareExchange(ints, at, 0, this.threadId) !== 0) continue;
      this.slotFloats[s * Slot.FLOATS + Slot.F_START] = start;
      this.slotFloats[s * Slot.FLOATS + Slot.F_PENDING] = 0;
      this.slotInts[s * Slot.INTS + Slot.I_CACHED_BLOCKS] = 0;
      this.slotFloats[s * Slot.FLOATS + Slot.F_CACHED_BYTES] = 0;
      new Uint32Array(this.control, CACHE_HEADS_AT + CACHE_STRIDE * s, CACHE_CLASSES).fill(0);
      new Int32Array(this.control, CACHE_COUNTS_AT + CACHE_STRIDE * s, CACHE_CLASSES).fill(0);
      this.ints[I.OPEN]!++;
      return s;
    }
    throw new Error(`Heap.attach: ${MAX_OPEN} heaps are open over this shared heap in threads still running; close some first`);
  }

  /**
   * Takes back the slots of heaps whose threads have ended without closing them: their cached
   * blocks go back to the free lists (unless `flush` is false: the arena is destroyed), and their
   * slots are free for new heaps. Under the lock. Returns how many it took back.
   */
  private reclaimDeadSlots(flush = true): number {
    const ints = this.slotInts;
    let reclaimed = 0;
    for (let s = 0; s < MAX_OPEN; s++) {
      const at = s * Slot.INTS + Slot.I_THREAD;
      const thread = ints[at]!;
      if (thread <= 0 || s === this.slot || !threadGone(thread, this.slotFloats[s * Slot.FLOATS + Slot.F_START]!)) continue;
      if (Atomics.compareExchange(ints, at, thread, -1) !== thread) continue;
      if (flush) {
        this.reclaimPending(s);
        this.reclaimCaches(s);
      }
      this.slotFloats[s * Slot.FLOATS + Slot.F_START] = 0;
      Atomics.store(ints, at, 0);
      this.ints[I.OPEN]!--;
      this.ints[I.RECLAIMED]!++;
      reclaimed++;
    }
    return reclaimed;
  }

  /**
   * The block a call of slot `s`'s heap was handing out when its thread ended inside it (a calloc
   * filling it, a realloc copying into it): the call never returned, so no one else has the
   * address, and the block is freed. Whatever else that call had done, repair() undid.
   */
  private reclaimPending(s: number): void {
    const h = this.slotFloats[s * Slot.FLOATS + Slot.F_PENDING]!;
    this.slotFloats[s * Slot.FLOATS + Slot.F_PENDING] = 0;
    if (h === 0 || !this.isStart(h)) return;
    const word = this.mem[(h >>> 2) + Word.SIZE]!;
    if ((word & Flag.MASK) !== 0 || !this.sizeAgrees(h, word)) return;
    this.inUse -= word;
    this.release(h, word, false);
  }

  /**
   * The cached blocks of slot `s`, whose thread has ended, go back to the free lists. Its thread
   * may have died inside a cache's push or pop: a list is followed only while each block proves to
   * be a cached block of its size at a recorded start, and a block it does not reach stays lost.
   */
  private reclaimCaches(s: number): void {
    const heads = new Uint32Array(this.control, CACHE_HEADS_AT + CACHE_STRIDE * s, CACHE_CLASSES);
    const counts = new Int32Array(this.control, CACHE_COUNTS_AT + CACHE_STRIDE * s, CACHE_CLASSES);
    const mem = this.mem;
    for (let c = 1; c < CACHE_CLASSES; c++) {
      const size = c << 4;
      let h = heads[c]!;
      let left = counts[c]!;
      heads[c] = 0;
      counts[c] = 0;
      for (; h !== 0 && left > 0; left--) {
        const w = h >>> 2;
        if (!this.isStart(h) || mem[w + Word.SIZE] !== (size | Flag.CACHED) || !this.sizeAgrees(h, size)) break;
        const next = mem[w + Word.NEXT_FREE]!;
        mem[w + Word.SIZE] = size;
        this.inUse -= size;
        this.release(h, size, false);
        h = next;
      }
    }
    this.slotInts[s * Slot.INTS + Slot.I_CACHED_BLOCKS] = 0;
    this.slotFloats[s * Slot.FLOATS + Slot.F_CACHED_BYTES] = 0;
  }

  /**
   * The heaps open over the arena, and what was taken back from threads that ended: heaps never
   * closed, and the lock taken over from a thread that died holding it. Ended threads' heaps are
   * reclaimed first.
   */
  threads(): SharedThreadStats {
    this.enter();
    try {
      this.reclaimDeadSlots();
      return { open: this.ints[I.OPEN]!, reclaimed: this.ints[I.RECLAIMED]!, repairs: this.ints[I.REPAIRS]! };
    } finally {
      this.leave();
    }
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

  /** Takes the lock (once per thread, however deep the calls) and loads the shared state. */
  private enter(): void {
    if (this.depth++ > 0) return;
    if (this.closed) {
      this.depth = 0;
      throw destroyedError();
    }
    const tookOver = acquire(this.ints, I.LOCK, this.threadId);
    if (this.ints[I.DESTROYED] !== 0) {
      this.depth = 0;
      release(this.ints, I.LOCK);
      throw destroyedError();
    }
    if (tookOver) {
      this.repair();
      return;
    }
    // The fields still hold what this heap stored when it last let go, unless another took the lock since.
    if (this.ints[I.HOLDER] === this.id) return;
    const top = this.floats[F.TOP]!;
    // The arena's range was proved on attach; a top past it, or past what is committed, would lead
    // reads out of it. What lies below `provenTop` was found read-write already; growth is
    // geometric, so the look at the kernel's mappings is rare.
    if (!validTop(top, this.reservation!.size) || (top > this.provenTop && !isReadWrite(this.base + this.provenTop, top - this.provenTop))) {
      this.depth = 0;
      release(this.ints, I.LOCK);
      throw new HeapError('ERR_HEAP_CORRUPTED', `heap corrupted: the control block's top (${top}) is not inside the arena's committed memory`);
    }
    this.provenTop = top;
    this.load(top);
  }

  /** The fast preset's fields, from the control block, with the arena's top at `top`. */
  private load(top: number): void {
    const f = this.floats;
    this.top = top;
    this.lists.limit = top;
    this.lists.flMap = this.ints[I.FL_MAP]!;
    this.lists.count = f[F.LISTED]!;
    this.blockCount = f[F.BLOCKS]!;
    this.inUse = f[F.IN_USE]!;
    this.peakInUse = f[F.PEAK_IN_USE]!;
    this.peakMapped = f[F.PEAK_MAPPED]!;
    this.mmapCalls = f[F.MMAP_CALLS]!;
    this.munmapCalls = f[F.MUNMAP_CALLS]!;
    this.trimThreshold = f[F.TRIM_THRESHOLD]!;
  }

  /**
   * After taking the lock over from a thread that died holding it: the arena is rebuilt from its
   * blocks (FastHeap.rebuildArena), and the heaps of ended threads are reclaimed. The dead thread
   * may have been growing or trimming the arena, so the top is taken as what the control block
   * says, lowered to the memory that is read-write.
   */
  private repair(): void {
    let top = this.floats[F.TOP]!;
    if (!validTop(top, this.reservation!.size)) top = 0;
    const page = getPageSize();
    if (top > 0 && !isReadWrite(this.base, top)) {
      // Committed memory runs from the arena's start: the longest read-write run, by halving.
      let low = 0;
      let high = top / page;
      while (low < high) {
        const mid = Math.ceil((low + high) / 2);
        if (isReadWrite(this.base, mid * page)) low = mid;
        else high = mid - 1;
      }
      top = low * page;
      // Too little for a block and the sentinel: no arena.
      if (top < 2 * Block.HEADER + Block.MIN) top = 0;
    }
    this.provenTop = top;
    this.load(top);
    const held = this.rebuildArena();
    // Cached blocks count as in use in the shared count (see the accounting note above).
    this.inUse = held;
    if (held > this.peakInUse) this.peakInUse = held;
    this.ints[I.REPAIRS]!++;
    this.reclaimDeadSlots();
  }

  /** Stores the shared state and lets go of the lock, when the outermost call ends. */
  private leave(): void {
    if (--this.depth > 0) return;
    const f = this.floats;
    f[F.TOP] = this.top;
    this.ints[I.FL_MAP] = this.lists.flMap;
    f[F.LISTED] = this.lists.count;
    f[F.BLOCKS] = this.blockCount;
    f[F.IN_USE] = this.inUse;
    f[F.PEAK_IN_USE] = this.peakInUse;
    f[F.PEAK_MAPPED] = this.peakMapped;
    f[F.MMAP_CALLS] = this.mmapCalls;
    f[F.MUNMAP_CALLS] = this.munmapCalls;
    f[F.TRIM_THRESHOLD] = this.trimThreshold;
    this.ints[I.HOLDER] = this.id;
    if (this.slot >= 0) this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = 0;
    release(this.ints, I.LOCK);
  }

  // ---------------------------------------------------------------------------------------------
  // Every call, under the lock. Written out one by one rather than through a helper taking a
  // closure: a closure made per call would be garbage on the hot path.

  override malloc(size: number, name?: string): number {
    // Without the lock: a block of this size from this thread's cache. Its header is ours alone
    // while it is cached, so plain reads and writes do.
    if (typeof size === 'number' && size <= CACHE_MAX_REQUEST && (size >>> 0) === size && name === undefined &&
        this.ints[I.DESTROYED] === 0) {
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
          this.slotInts[this.slot * Slot.INTS + Slot.I_CACHED_BLOCKS] = --this.cachedHere;
          this.slotFloats[this.slot * Slot.FLOATS + Slot.F_CACHED_BYTES] = this.cachedBytesHere -= need;
          if (this.scribble === true) this.bytesView.fill(SCRIBBLE_BYTE, h + Block.HEADER, h + need);
          // Inside a call of this heap's (realloc, calloc): the block it hands out, until it returns.
          if (this.depth !== 0) this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = h;
          return this.base + h + Block.HEADER;
        }
      }
    }
    if (name !== undefined) noNames('malloc');
    this.enter();
    try {
      // Not super.malloc, whose own cache path would count the block as the unshared preset does.
      const ptr = +this.mallocSlow(size, undefined);
      if (this.depth > 1 && ptr !== 0) this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = ptr - this.base - Block.HEADER;
      return ptr;
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
    if (typeof ptr === 'number' && this.ints[I.DESTROYED] === 0) {
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
          this.slotInts[this.slot * Slot.INTS + Slot.I_CACHED_BLOCKS] = ++this.cachedHere;
          this.slotFloats[this.slot * Slot.FLOATS + Slot.F_CACHED_BYTES] = this.cachedBytesHere += size;
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
    this.slotInts[this.slot * Slot.INTS + Slot.I_CACHED_BLOCKS] = 0;
    this.slotFloats[this.slot * Slot.FLOATS + Slot.F_CACHED_BYTES] = 0;
  }

  /** Blocks and bytes every thread's caches hold, as published in the slots. */
  private cachedEverywhere(): { blocks: number; bytes: number } {
    let blocks = 0;
    let bytes = 0;
    for (let i = 0; i < MAX_OPEN; i++) {
      if (this.slotInts[i * Slot.INTS + Slot.I_THREAD]! <= 0) continue;
      blocks += this.slotInts[i * Slot.INTS + Slot.I_CACHED_BLOCKS]!;
      bytes += this.slotFloats[i * Slot.FLOATS + Slot.F_CACHED_BYTES]!;
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
      this.reclaimDeadSlots();
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
    return this.ints[I.OPEN] === 1 ? this.inUse - this.cachedBytesHere : undefined;
  }

  /** This thread's caches are walked; all cached blocks are accounted for when it is alone. */
  protected override checkCaches(cachedBlocks: number): void {
    super.checkCaches(this.ints[I.OPEN] === 1 ? cachedBlocks : this.cachedHere);
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
      this.reclaimDeadSlots();
      super.check();
    } finally {
      this.leave();
    }
  }

  override trim(): void {
    this.enter();
    try {
      this.reclaimDeadSlots();
      super.trim();
    } finally {
      this.leave();
    }
  }

  /** Before the arena grows, the caches of ended threads go back to the lists (the memory may serve). */
  protected override growTop(need: number): number {
    this.reclaimDeadSlots();
    return super.growTop(need);
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
    if (this.closed || this.ints[I.DESTROYED] !== 0) throw destroyedError();
  }

  override autoFree(): void {
    throw new TypeError('autoFree: a shared heap does not track owners (a finalizer runs in one thread only)');
  }

  /**
   * Lets go of the heap in this thread: its cached blocks go back to the free lists, the arena
   * stays for the others, and every later call here throws ERR_HEAP_DESTROYED. Polite before a
   * worker ends, not needed: a heap whose thread has ended is reclaimed by the others. The last
   * heap closed over a destroyed arena releases it.
   */
  override close(): void {
    if (this.closed) return;
    let destroyed = false;
    try {
      this.enter();
    } catch (e) {
      if (!(e instanceof HeapError && e.code === 'ERR_HEAP_DESTROYED')) throw e;
      destroyed = true;
    }
    if (!destroyed) {
      try {
        if (this.cachedBlocks() > 0) this.flushCaches();
        this.leaveSlot();
      } finally {
        this.leave();
      }
    } else {
      // The arena is dead: nothing in it to repair or give back, only the slot table to update.
      acquire(this.ints, I.LOCK, this.threadId);
      try {
        this.leaveSlot();
        this.reclaimDeadSlots(false);
        if (this.ints[I.OPEN] === 0) {
          releaseReservation(this.reservation!);
          this.floats[F.MUNMAP_CALLS]!++;
        }
      } finally {
        release(this.ints, I.LOCK);
      }
    }
    // The lock-free paths see an empty cache and an empty heap from now on, and take the locked
    // paths, which refuse a closed heap. (The slot's own arrays may be another heap's already.)
    this.cacheHeads = new Uint32Array(CACHE_CLASSES);
    this.cacheCounts = new Int32Array(CACHE_CLASSES);
    this.top = 0;
  }

  /** This heap's slot is free again, and the heap closed; under the lock. */
  private leaveSlot(): void {
    this.closed = true;
    this.slotInts[this.slot * Slot.INTS + Slot.I_CACHED_BLOCKS] = 0;
    this.slotFloats[this.slot * Slot.FLOATS + Slot.F_CACHED_BYTES] = 0;
    this.slotFloats[this.slot * Slot.FLOATS + Slot.F_START] = 0;
    Atomics.store(this.slotInts, this.slot * Slot.INTS + Slot.I_THREAD, 0);
    this.ints[I.OPEN]!--;
  }

  /**
   * Ends the heap for every thread: every later call on any heap over the arena throws
   * ERR_HEAP_DESTROYED, and its blocks are gone. The memory goes back to the kernel when the last
   * heap over it is closed (this one closes here, and the heaps of ended threads count as closed),
   * so that no thread in the middle of a call, or holding a view, ever touches unmapped memory.
   */
  override destroy(): void {
    if (this.closed) return;
    this.enter();
    this.ints[I.DESTROYED] = 1; // enter() and the lock-free paths check it first
    this.leave();
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
 * block, mapped in this process, with a top inside it, under a heap still open. (That the arena is
 * read-write up to its top is proved under the lock, by enter.) The control block
 * is JavaScript memory, out of native code's reach, but a handle can come from anywhere.
 */
function provenArena(ints: Int32Array, floats: Float64Array, bytes: number): Reservation {
  const address = floats[F.ADDRESS]!;
  const size = floats[F.SIZE]!;
  const top = floats[F.TOP]!;
  const page = getPageSize();
  if (!Number.isSafeInteger(size) || size < ARENA_MIN_BYTES || size > ARENA_BYTES || size % page !== 0 ||
      bytes !== controlBytes(size) || !validTop(top, size) || ints[I.OPEN]! < 1 || !isMapped(address, size)) {
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
  if (Atomics.load(new Int32Array(h.control, 0, 1), I.MAGIC) !== MAGIC) {
    throw new TypeError('Heap.attach: the handle\'s control block is not a shared heap\'s');
  }
  const { scribble, limit, throwOnOutOfMemory } = h.options;
  return new SharedHeap({ ...resolveOptions({ scribble, limit, throwOnOutOfMemory }), shared: true }, h as SharedHeapHandle);
}
