// The shared preset: one heap used by many worker threads. `new Heap({ shared: true })` makes it,
// `heap.handle()` gives a structured-cloneable handle to post to a worker, and
// `Heap.attach(handle)` there makes a heap over the same memory. This file holds its calls; its
// state and lock are ./shared-state.ts, its table of heaps and their threads ./shared-slots.ts.
//
// Native addresses are valid in every thread of the process, so one heap's blocks are every
// thread's: any thread may use, free or reallocate any block. Three paths:
// - Small requests (up to 256 bytes) come from pages of a small-object arena that each heap owns
//   (./shared-pages.ts): malloc and free of its own slots run the fast preset's page paths with
//   plain reads and writes, no lock and no atomic operation. A slot of another heap's page is freed
//   with a compare-and-swap of its mark and handed back to its owner through a list of the page.
// - Each heap has caches of freed blocks of the arena of up to 2 KiB (8 blocks a size), in its
//   slot of the control block. A free that fits one claims the block with a compare-and-swap on its
//   header (used -> cached), so two threads freeing one block cannot both succeed; a malloc of a
//   size whose cache holds a block takes it back. Neither takes the lock: a cached block belongs to
//   its heap alone, and the words these paths write are ones no other thread writes while the block
//   is used or cached. Any thread may cache any block of the arena: it has no owner.
// - Everything else takes the lock and runs the fast preset's own code over the arena.
//
// Accounting: the shared `inUse` counts cached blocks as in use (the lock-free paths do not touch
// it); each heap publishes how many blocks and bytes its caches hold in its slot, and stats()
// subtracts them, and counts the slots in use from every heap's pages. There are no large blocks
// in mappings of their own (a mapping made by one thread would be unknown to the others).
//
// Memory is never unmapped, nor made read-only, while a heap over it is open in any thread: free
// pages at the top are given back as read-only zero pages only from the free lists (no thread's
// cache holds them), pages of the small-object arena only from the supply (no heap owns them),
// destroy() marks the heap dead for every thread, and both arenas are released when the last heap
// over them is closed (or reclaimed).

import { HeapError, destroyedError } from './errors.js';
import { FREED_BYTE, doubleFree } from './fast-arena.js';
import { checkRealloc, toAddress } from './arguments.js';
import { CACHE_MAX_BLOCK, CACHE_MAX_REQUEST, FastHeap, SCRIBBLE_BYTE, TRIM_MIN } from './fast.js';
import { Block, Flag, Word, fastBlockSize } from '../layout/fast.js';
import { resolveOptions } from './options.js';
import type { Address, HeapStats, SharedHeapHandle } from './types.js';
import { releaseReservation } from '../os/memory.js';
import { Page, slotKeeps } from '../layout/pages.js';
import { SharedSlots } from './shared-slots.js';
import { CACHE_CLASSES, F, FIXED_BYTES, I, MAGIC, Slot, acquire, release } from './shared-control.js';

/** Blocks a size's cache holds in each thread: few, since a thread's cache is lost to the others. */
const CACHE_DEPTH = 8;
// A module-level const, so that V8 folds it (an imported binding is read through a cell per use).
const blockSize = fastBlockSize;

/**
 * The shared preset, made by `new Heap({ shared: true })` or `Heap.attach(handle)`: a fast heap
 * whose every call but the cached ones takes one lock, so that worker threads can share it.
 */
export class SharedHeap extends SharedSlots {
  // ---------------------------------------------------------------------------------------------
  // Every call, under the lock. Written out one by one rather than through a helper taking a
  // closure: a closure made per call would be garbage on the hot path.

  override malloc(size: number, name?: string): number {
    // The fast path, small enough for V8 to inline into the caller (with free's): a slot of one of
    // this heap's pages, as in the fast preset's malloc, with plain reads and writes (the page is
    // this heap's alone). Anything else takes mallocShared.
    if (typeof size === 'number' && (size >>> 0) === size && size <= Page.SMALL_MAX && name === undefined) {
      const c = size === 0 ? 1 : (size + 15) >>> 4;
      const pages = this.pages;
      const page = pages.avail[c]!;
      if (page !== 0 && this.ints[I.DESTROYED] === 0) {
        // SmallPages.takeSlot, written out: that method also serves the unshared heaps' pages,
        // and a call site seeing both kinds of pages is slower for both.
        const info = pages.pageInfo[page]!;
        const g = (page << Page.GRANULES_SHIFT) | ((info >>> Page.INFO_HEAD_SHIFT) & Page.INFO_HEAD);
        const marks = pages.marks;
        const next = marks[g]!;
        pages.pageInfo[page] = c | (next << Page.INFO_HEAD_SHIFT) | (((info >>> Page.INFO_USED_SHIFT) + 1) << Page.INFO_USED_SHIFT);
        marks[g] = Page.LIVE;
        if (next === Page.END) pages.unlinkAvail(c, page);
        const ptr = pages.base + (g << Page.GRANULE_SHIFT);
        if (this.scribble === true) this.scribbleSlot(ptr, c);
        return ptr;
      }
    }
    return +this.mallocShared(size, name);
  }

  private scribbleSlot(ptr: number, c: number): void {
    const o = ptr - this.pages.base;
    this.pages.bytes.fill(SCRIBBLE_BYTE, o, o + (c << 4));
  }

  /** malloc past the fast path: a slot after the slow path of the pages, a cached block, or the arena under the lock. */
  private mallocShared(size: number, name: string | undefined): number {
    if (typeof size === 'number' && (size >>> 0) === size && size <= Page.SMALL_MAX && name === undefined) {
      const ptr = this.mallocSmallSlow(size === 0 ? 1 : (size + 15) >>> 4);
      if (ptr !== 0) return ptr;
      // No page to be had: a block of the arena.
    }
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

  /**
   * A slot of class `c` when no page of this heap's has one free: the slots other threads freed
   * are taken back first, then a page from the pool or the supply. 0 when none can be had.
   */
  private mallocSmallSlow(c: number): number {
    if (this.closed || this.ints[I.DESTROYED] !== 0) throw destroyedError();
    const pages = this.pages;
    if (Atomics.load(this.slotInts, this.slot * Slot.INTS + Slot.I_REMOTE_PAGES) !== 0) pages.collectRemote();
    if (pages.avail[c] === 0 && pages.refill(c, Infinity) === 0) return 0;
    const ptr = pages.takeSlot(c);
    if (this.scribble === true) this.scribbleSlot(ptr, c);
    return ptr;
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

  override realloc(ptr: Address, size: number, name?: string): number {
    if (name !== undefined) noNames('realloc');
    if (typeof ptr !== 'number') ptr = toAddress('realloc', ptr);
    if (typeof ptr === 'number' && typeof size === 'number') {
      const o = ptr - this.pages.base;
      const g = (o >>> 0) === o && o < this.pages.top ? this.pages.locate(o) : -1;
      if (g >= 0) return this.reallocSlot(ptr, o, g, size);
    }
    this.enter();
    try {
      return super.realloc(ptr, size);
    } finally {
      this.leave();
    }
  }

  /**
   * realloc of the slot at granule `g` (offset `o` of the small-object arena), of this heap's
   * pages or another's: it stays while its class fits, as in the fast preset; else it moves through
   * malloc and free, which know whose pages are whose.
   */
  private reallocSlot(ptr: number, o: number, g: number, size: number): number {
    checkRealloc(ptr, size, undefined);
    if (this.closed || this.ints[I.DESTROYED] !== 0) throw destroyedError();
    const pages = this.pages;
    if (!pages.isLive(g)) throw doubleFree('realloc', ptr);
    const slotSize = pages.slotSize(o >>> Page.SHIFT);
    if (size === 0) {
      this.free(ptr);
      return 0;
    }
    if (slotKeeps(size, slotSize)) {
      if (this.scribble === true) pages.bytes.fill(SCRIBBLE_BYTE, o + size, o + slotSize);
      return ptr;
    }
    const moved = this.malloc(size);
    if (moved === 0) return 0;
    const n = Math.min(slotSize, size);
    const to = moved - pages.base;
    if (to >= 0 && to < pages.top) pages.bytes.copyWithin(to, o, o + n);
    else this.bytesView.set(pages.bytes.subarray(o, o + n), moved - this.base);
    this.free(ptr);
    return moved;
  }

  override free(ptr: Address): void {
    if (typeof ptr === 'number') {
      const pages = this.pages;
      const o = ptr - pages.base;
      if ((o >>> 0) === o && o < pages.top) {
        // A slot in use of one of this heap's pages: as in the fast preset's free, with no lock and
        // no atomic operation. (SmallPages.releaseSlot, written out.)
        const page = o >>> Page.SHIFT;
        const g = o >>> Page.GRANULE_SHIFT;
        const marks = pages.marks;
        if (this.pageOwners[page] === this.tag && (o & 15) === 0 && marks[g] === Page.LIVE && this.ints[I.DESTROYED] === 0) {
          const info = pages.pageInfo[page]!;
          const c = info & Page.INFO_CLASS;
          const head = (info >>> Page.INFO_HEAD_SHIFT) & Page.INFO_HEAD;
          const used = (info >>> Page.INFO_USED_SHIFT) - 1;
          marks[g] = head;
          pages.pageInfo[page] = c | ((g & (Page.GRANULES - 1)) << Page.INFO_HEAD_SHIFT) | (used << Page.INFO_USED_SHIFT);
          if (this.scribble === true) pages.bytes.fill(FREED_BYTE, o, o + (c << 4));
          if (head === Page.END || (used === 0 && pages.avail[c] !== page)) pages.changed(page, used);
          return;
        }
      }
    }
    this.freeShared(ptr);
  }

  /** free() past the fast path: a slot of another heap's, a block into this thread's cache, or the arena under the lock. */
  private freeShared(ptr: Address): void {
    if (typeof ptr !== 'number') return this.free(toAddress('free', ptr));
    const o = ptr - this.pages.base;
    if ((o >>> 0) === o && o < this.pages.top) return this.freeSmallElsewhere(ptr, o);
    // Without the lock: an unnamed block of up to 2 KiB, at a recorded block start, whose size the
    // next header confirms, into this thread's cache if it has room. The compare-and-swap on its
    // size word (used -> cached) claims it: of two threads freeing one block, one wins and the
    // other takes the locked path, which reports the double free. The checks are FastHeap.free's,
    // written out again because there they stay inline in the unshared hot path.
    if (this.ints[I.DESTROYED] === 0) {
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
          if (this.scribble === true) this.scribbleFreed(h, size);
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
   * free() of an address in the small-object arena that is not a slot in use of this heap's pages:
   * a slot of another heap's, claimed with a compare-and-swap of its mark (LIVE -> REMOTE) and
   * counted on its page, which goes on its owner's list when it is the page's first; or an error.
   */
  private freeSmallElsewhere(ptr: number, o: number): void {
    if (this.closed || this.ints[I.DESTROYED] !== 0) throw destroyedError();
    const pages = this.pages;
    const page = o >>> Page.SHIFT;
    const owner = this.pageOwners[page]!;
    const g = o >>> Page.GRANULE_SHIFT;
    // No slot starts here: the careful path names the error.
    if (owner === 0 || (o & 15) !== 0 || pages.marks[g] === Page.NOT_SLOT) return this.freeSlow(ptr);
    if (owner === this.tag || Atomics.compareExchange(pages.marks, g, Page.LIVE, Page.REMOTE) !== Page.LIVE) throw doubleFree('free', ptr);
    if (Atomics.add(pages.remoteCounts, page, 1) !== 0) return;
    const at = (owner - 1) * Slot.INTS + Slot.I_REMOTE_PAGES;
    for (;;) {
      const head = Atomics.load(this.slotInts, at);
      pages.remoteNext[page] = head;
      if (Atomics.compareExchange(this.slotInts, at, head, page) === head) return;
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


  override usableSize(ptr: Address): number {
    this.enter();
    try {
      return super.usableSize(ptr);
    } finally {
      this.leave();
    }
  }

  /** @internal See HeapOperations. */
  override span(op: string, ptr: Address, length?: number): Uint8Array {
    this.enter();
    try {
      return super.span(op, ptr, length);
    } finally {
      this.leave();
    }
  }

  /**
   * The arena's every committed byte (which of them another thread has touched is not tracked
   * across threads), and the small-object pages ever handed out but those given back.
   */
  protected override mapped(): number {
    return this.top + this.supply.held();
  }

  /** The arena's top and the small-object arena's committed pages (every heap's). */
  protected override committed(): number {
    return this.top + this.supply.committed();
  }

  /**
   * The same in every thread: the arena's blocks (blocks in threads' caches count as free), and
   * every heap's small-object pages as the fast preset counts its own (a slot another thread freed
   * is free at once; an empty page is one free block). `peakInUse` is the most seen by a call that
   * took the lock: slots come and go in each thread's pages without it.
   */
  override stats(): HeapStats {
    this.enter();
    try {
      this.reclaimDeadSlots();
      const cached = this.cachedEverywhere();
      const small = this.pages.usage();
      const pages = this.pages.census();
      const inUse = this.inUse - cached.bytes + small.bytes;
      const mapped = this.mapped();
      if (inUse > this.peakInUse) this.peakInUse = inUse;
      if (mapped > this.peakMapped) this.peakMapped = mapped;
      return {
        mapped,
        peakMapped: this.peakMapped,
        inUse,
        peakInUse: this.peakInUse,
        freeBytes: mapped - inUse,
        blocks: this.blockCount + pages.slots + pages.emptyPages,
        usedBlocks: this.blockCount - this.lists.count - cached.blocks + small.slots,
        freeBlocks: this.lists.count + cached.blocks + pages.slots - small.slots + pages.emptyPages,
        regions: (this.top > 0 ? 1 : 0) + pages.classPages + pages.emptyPages,
        mmapCalls: this.mmapCalls,
        munmapCalls: this.munmapCalls,
      };
    } finally {
      this.leave();
    }
  }

  /** check() compares the walk with the counters only while no other heap is open over the arena. */
  protected override countedInUse(): number | undefined {
    return this.ints[I.OPEN] === 1 ? this.inUse - this.cachedBytesHere + this.pages.usage().bytes : undefined;
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
      // Slots other threads freed in this heap's pages come back first, so that their pages may go.
      this.pages.collectRemote();
      super.trim();
      this.munmapCalls += this.supply.giveBackIdle();
    } finally {
      this.leave();
    }
  }

  /** Before the arena grows, the caches of ended threads go back to the lists (the memory may serve). */
  protected override growTop(need: number): number {
    this.reclaimSometimes();
    return super.growTop(need);
  }

  /**
   * Growth takes all that is committed: the top is the one fact of the arena's extent the control
   * block keeps, so no memory is committed past it that another thread would not know of.
   */
  protected override grownTop(): number {
    return this.committedTop;
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
        // Pages with slots in use stay tagged with this slot until another heap adopts them.
        this.leaveSlot(this.pages.release());
      } finally {
        this.leave();
      }
    } else {
      // The arena is dead: nothing in it to repair or give back, only the slot table to update.
      acquire(this.ints, I.LOCK, this.threadId);
      try {
        this.leaveSlot(false);
        this.reclaimDeadSlots(false);
        if (this.ints[I.OPEN] === 0) {
          releaseReservation(this.reservation!);
          releaseReservation(this.supply.arena);
          this.floats[F.MUNMAP_CALLS]! += 2;
        }
      } finally {
        release(this.ints, I.LOCK);
      }
    }
    this.pages.avail.fill(0);
    this.tag = -1;
    // The lock-free paths see an empty cache and an empty heap from now on, and take the locked
    // paths, which refuse a closed heap. (The slot's own arrays may be another heap's already.)
    this.cacheHeads = new Uint32Array(CACHE_CLASSES);
    this.cacheCounts = new Int32Array(CACHE_CLASSES);
    this.top = 0;
    this.committedTop = 0;
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

/** Heap.attach: checks the handle and opens a heap over its arena. */
export function attachShared(handle: unknown): SharedHeap {
  const h = handle as Partial<SharedHeapHandle> | null;
  if (typeof h !== 'object' || h === null || h.kind !== 'ffi-heap/shared' || !(h.control instanceof SharedArrayBuffer) ||
      h.control.byteLength < FIXED_BYTES || typeof h.options !== 'object' || h.options === null) {
    throw new TypeError('Heap.attach: expected the handle of a shared heap, from heap.handle()');
  }
  if (h.version !== 1) throw new TypeError(`Heap.attach: a handle of version ${String(h.version)}; this ffi-heap reads version 1`);
  if (Atomics.load(new Int32Array(h.control, 0, 1), I.MAGIC) !== MAGIC) {
    throw new TypeError('Heap.attach: the handle\'s control block is not a shared heap\'s');
  }
  const { scribble, limit, throwOnOutOfMemory } = h.options;
  return new SharedHeap(resolveOptions({ scribble, limit, throwOnOutOfMemory, shared: true }), h as SharedHeapHandle);
}
