// The shared preset: one heap used by many worker threads. `new Heap({ shared: true })` makes it,
// `heap.handle()` gives a structured-cloneable handle to post to a worker, and
// `Heap.attach(handle)` there makes a heap over the same memory. This file holds its calls; its
// state, arenas and locks are ./shared-state.ts, its table of heaps and their threads
// ./shared-slots.ts, the calls that span the arenas (allocate, stats, check...) ./shared-arenas.ts.
//
// Native addresses are valid in every thread of the process, so one heap's blocks are every
// thread's: any thread may use, free or reallocate any block. Three paths:
// - Small requests (up to 512 bytes) come from pages of a small-object arena that each heap owns
//   (./shared-pages.ts): malloc and free of its own slots run the fast preset's page paths with
//   plain reads and writes, no lock and no atomic operation. A slot of another heap's page is freed
//   with a compare-and-swap of its mark and handed back to its owner through a list of the page.
// - Larger blocks come from the heap's home arena, a thread arena no other heap calls home while
//   there are no more heaps than thread arenas (else the fewest share one), or from the main arena
//   when the home has no room. Each heap has caches of freed blocks of its home of up to 2 KiB (8
//   blocks a size), in its slot of the control block. A free that fits one claims the block with a
//   compare-and-swap on its header (used -> cached), so two threads freeing one block cannot both
//   succeed; a malloc of a size whose cache holds a block takes it back. Neither takes a lock: a
//   cached block belongs to its heap alone, and the words these paths write are ones no other
//   thread writes while the block is used or cached.
// - Everything else takes the lock of the block's arena (a malloc, its home's) and runs the fast
//   preset's own code over that arena: uncontended, but for another thread's free, realloc or
//   read of one of its blocks.
// - Blocks of LARGE_MIN bytes or more, and any no arena can hold, have mappings of their own,
//   found by any thread in the large-block table (./shared-large.ts), under the global lock; an
//   address outside the reservation is one of theirs or no block's.
//
// Accounting: an arena's `inUse` counts cached blocks as in use (the lock-free paths do not touch
// it); stats() subtracts what every heap's caches hold (their counts, in the control block, which
// the lock-free paths write anyway), and counts the slots in use from every heap's pages, and the
// large blocks.
//
// Memory a view made in another thread may lie over is never unmapped while a heap over it is
// open in any thread, and only memory no block holds is made read-only: free pages at an arena's
// top are given back as read-only zero pages only from the free lists (no thread's cache holds
// them), a freed large block's range likewise when another heap viewed it (else it is unmapped,
// as the fast preset unmaps its large blocks), pages of the small-object arena only from the
// supply (no heap owns them); destroy() marks the heap dead for every thread, and the
// reservation and the large blocks' ranges are released when the last heap over it is closed
// (or reclaimed).

import { HeapError, destroyedError } from './errors.js';
import { FREED_BYTE, doubleFree } from './fast-arena.js';
import { callocBytes, checkRealloc, toAddress } from './arguments.js';
import { CACHE_MAX_BLOCK, CACHE_MAX_REQUEST, SCRIBBLE_BYTE } from './fast.js';
import { Block, Flag, Word, fastBlockSize } from '../layout/fast.js';
import { resolveOptions } from './options.js';
import type { Address, SharedHeapHandle } from './types.js';
import { copyMemory, releaseReservation } from '../os/memory.js';
import { LARGE_MIN } from './shared-large.js';
import { CLASS_OF, Page, slotKeeps } from '../layout/pages.js';
import { SharedArenas } from './shared-arenas.js';
import { CACHE_CLASSES, F, FIXED_BYTES, I, MAGIC, PENDING_SLOT, Slot } from './shared-control.js';

/** Blocks a size's cache holds in each thread: few, since a thread's cache is lost to the others. */
const CACHE_DEPTH = 8;
/**
 * Larger sizes a malloc whose own cache is empty looks in (16 bytes apart): NEAR, or an eighth of
 * the block's size if that is more (a block up to an eighth larger, kept whole). With random
 * sizes, a thread's caches seldom hold the very size asked for, and a miss takes the arena's lock
 * (what each reach cost and saved: docs/design.md, "Per-thread caches").
 */
const NEAR = 4;
// A module-level const, so that V8 folds it (an imported binding is read through a cell per use).
const blockSize = fastBlockSize;
const classOfRequest = CLASS_OF;

/**
 * The shared preset, made by `new Heap({ shared: true })` or `Heap.attach(handle)`: a fast heap
 * that worker threads share, each allocating from small-object pages and an arena of its own.
 */
export class SharedHeap extends SharedArenas {
  // ---------------------------------------------------------------------------------------------
  // Every call, under an arena's lock but the lock-free paths. Written out one by one rather than
  // through a helper taking a closure: a closure made per call would be garbage on the hot path.

  override malloc(size: number, name?: string): number {
    // The fast path, small enough for V8 to inline into the caller (with free's): a slot of one of
    // this heap's pages, as in the fast preset's malloc, with plain reads and writes (the page is
    // this heap's alone). Anything else takes mallocShared.
    if (typeof size === 'number' && (size >>> 0) === size && size <= Page.SHARED_SMALL_MAX && name === undefined) {
      const c = classOfRequest[(size + 15) >>> 4]!;
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
        marks[g] = Page.LIVE + c;
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

  /** malloc past the fast path: a slot after the slow path of the pages, a cached block, or an arena under its lock. */
  private mallocShared(size: number, name: string | undefined): number {
    if (typeof size === 'number' && (size >>> 0) === size && size <= Page.SHARED_SMALL_MAX && name === undefined) {
      const ptr = this.mallocSmallSlow(classOfRequest[(size + 15) >>> 4]!, false);
      if (ptr !== 0) return ptr;
      // No page to be had: a block of the arena.
    }
    // Without a lock: a block of this size from this thread's cache, or else of one of the next
    // sizes (see NEAR; kept whole). Its header is ours alone while it is cached, so plain reads
    // and writes do.
    if (typeof size === 'number' && size <= CACHE_MAX_REQUEST && (size >>> 0) === size && name === undefined &&
        this.ints[I.DESTROYED] === 0 && this.bound === this.home) {
      let k = blockSize(size) >>> 4;
      let h = this.cacheHeads[k]!;
      if (h === 0) {
        const near = k >>> 3 > NEAR ? k >>> 3 : NEAR;
        const last = k + near < CACHE_CLASSES ? k + near : CACHE_CLASSES - 1;
        while (k < last && (h = this.cacheHeads[++k]!) === 0);
      }
      if (h !== 0) {
        const ptr = this.takeCached(k, h);
        if (ptr !== 0) return ptr;
      }
    }
    if (name !== undefined) noNames('malloc');
    if (this.depth > 0) {
      // Inside a call under an arena's lock (calloc, realloc): a block of that arena.
      const ptr = +this.mallocSlow(size, undefined);
      if (ptr !== 0) this.pending(ptr - this.base - Block.HEADER);
      return ptr;
    }
    return this.allocate(-1, size, size);
  }

  /**
   * Takes block `h`, the first of cache `k` (blocks of k * 16 bytes), and returns its address; 0
   * when the block or its link is not what the cache holds, and nothing is written. The malloc
   * then takes the locked path: a fault in the request's own size's cache is reported there; one
   * in a larger size's, when the caches are next flushed or checked (flushCaches proves every
   * cache before it moves a block).
   */
  private takeCached(k: number, h: number): number {
    const size = k << 4;
    const mem = this.mem;
    const w = h >>> 2;
    const next = mem[w + Word.NEXT_FREE]!;
    const left = this.cacheCounts[k]! - 1;
    // As in FastHeap.malloc: the link is 0 at the cache's last block, else a recorded block start.
    if (mem[w + Word.SIZE] !== (size | Flag.CACHED) || !(next === 0 ? left === 0 : left > 0 && next < this.top &&
        (next & Flag.MASK) === Block.HEADER && (this.starts[next >>> 9]! & (1 << ((next >>> 4) & 31))) !== 0)) {
      return 0;
    }
    this.cacheHeads[k] = next;
    this.cacheCounts[k] = left;
    mem[w + Word.SIZE] = size;
    if (this.scribble === true) this.bytesView.fill(SCRIBBLE_BYTE, h + Block.HEADER, h + size);
    // Inside a call of this heap's (realloc, calloc): the block it hands out, until it returns.
    if (this.depth !== 0 || this.keepPending) this.pending(h);
    return this.base + h + Block.HEADER;
  }

  /**
   * A slot of class `c` when no page of this heap's has one free (or for a move): the slots other
   * threads freed are taken back first, then a page from the pool or the supply. 0 when none can
   * be had. With `pending` (mallocForMove), the slot is recorded as this heap's pending block
   * (PENDING_SLOT, then its address) before its mark says it is in use, so no moment leaves it
   * taken and unrecorded.
   */
  private mallocSmallSlow(c: number, pending: boolean): number {
    if (this.closed || this.ints[I.DESTROYED] !== 0) throw destroyedError();
    const pages = this.pages;
    if (Atomics.load(this.slotInts, this.slot * Slot.INTS + Slot.I_REMOTE_PAGES) !== 0) pages.collectRemote();
    // About to take pages from the supply: the pages and caches of ended threads may serve (no
    // lock is held at depth 0).
    if (pages.avail[c] === 0 && pages.pooledPages === 0 && this.depth === 0) this.reclaimSometimes();
    if (pages.avail[c] === 0 && pages.refill(c, Infinity) === 0) return 0;
    if (pending) {
      // takeSlot takes the first free slot of the class's first page: this one.
      const page = pages.avail[c]!;
      const g = (page << Page.GRANULES_SHIFT) | ((pages.pageInfo[page]! >>> Page.INFO_HEAD_SHIFT) & Page.INFO_HEAD);
      this.slotInts[this.slot * Slot.INTS + Slot.I_PENDING_ARENA] = PENDING_SLOT;
      this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = pages.base + (g << Page.GRANULE_SHIFT);
    }
    const ptr = pages.base + (pages.takeSlot(c) << Page.GRANULE_SHIFT);
    if (this.scribble === true) this.scribbleSlot(ptr, c);
    return ptr;
  }

  /**
   * malloc for a move (moveOut, reallocLarge), whose new block is the slot's pending block until
   * the move is done: a reclaim frees it if the thread ends in between, since the call never
   * returned it. A slot of the pages is recorded by mallocSmallSlow; a block of an arena or a
   * large block inside its malloc, under the lock that takes it (keepPending).
   */
  protected override mallocForMove(size: number): number {
    if ((size >>> 0) === size && size <= Page.SHARED_SMALL_MAX) {
      const ptr = this.mallocSmallSlow(classOfRequest[(size + 15) >>> 4]!, true);
      if (ptr !== 0) return ptr;
    }
    return this.malloc(size);
  }

  /** calloc in the first arena that has room, in allocate's order. */
  override calloc(count: number, size: number, name?: string): number {
    if (name !== undefined) noNames('calloc');
    // Checked here: a count below 0 is how allocate tells a malloc.
    const total = callocBytes(count, size);
    return this.allocate(count, size, total < 0 ? Infinity : total);
  }

  override realloc(ptr: Address, size: number, name?: string): number {
    if (name !== undefined) noNames('realloc');
    if (typeof ptr !== 'number') ptr = toAddress('realloc', ptr);
    if (typeof ptr === 'number' && typeof size === 'number') {
      const o = ptr - this.pages.base;
      const g = (o >>> 0) === o && o < this.pages.top ? this.pages.locate(o) : -1;
      if (g >= 0) return this.reallocSlot(ptr, o, g, size);
      if (ptr === 0) return this.malloc(size);
      if (this.outside(ptr)) return this.reallocLarge(ptr, size);
    }
    // In the block's arena: in place, or moved within it; when it has no room, moved to another.
    const k = typeof ptr === 'number' ? this.arenaOf(ptr) : -1;
    if (k >= 0 && typeof size === 'number' && size >= LARGE_MIN) {
      // Grown to a large block's size: moved to a mapping of its own.
      checkRealloc(ptr as number, size, undefined);
      const kept = this.usableSize(ptr as number);
      return this.moveOut(ptr as number, size, Math.min(kept, size), true);
    }
    let usable = 0;
    this.trying = k >= 0;
    this.enter(k >= 0 ? k : this.home);
    try {
      const moved = super.realloc(ptr, size);
      if (moved !== 0 || size === 0 || k < 0) return moved;
      usable = super.usableSize(ptr);
    } finally {
      this.trying = false;
      this.leave();
    }
    return this.moveOut(ptr as number, size, Math.min(usable, size), true);
  }

  /**
   * The end of a realloc that moves a block outside any lock (to another arena, or out of the
   * pages): a block of `size` bytes, the first `n` bytes of `ptr` copied to it, then `ptr` freed;
   * or, when none can be had, out of memory (`report`) or 0. From inside its malloc's call under
   * the arena's lock (or from before a slot of the pages is taken) until the free returns, the new
   * block is recorded as the one this call hands out (mallocForMove): a thread terminated in
   * between (a terminate asked for during a long copy or commit lands at the next call's first
   * instruction) loses it to the next reclaim rather than for good, and the call costs one block,
   * the old one.
   */
  private moveOut(ptr: number, size: number, n: number, report: boolean): number {
    this.keepPending = true;
    try {
      const moved = this.mallocForMove(size);
      if (moved === 0) return report ? this.outOfMemory('realloc', size) : 0;
      const at = this.blocks.address;
      // Within the reservation through its view; to or from a large block's mapping by memcpy.
      if (this.outside(ptr) || this.outside(moved)) copyMemory(moved, ptr, n);
      else this.wholeBytes.copyWithin(moved - at, ptr - at, ptr - at + n);
      this.free(ptr);
      return moved;
    } finally {
      this.keepPending = false;
      this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = 0;
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
    return this.moveOut(ptr, size, Math.min(slotSize, size), false);
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
        if (this.pageOwners[page] === this.tag && (o & 15) === 0 && marks[g]! <= Page.LIVE_MAX && this.ints[I.DESTROYED] === 0) {
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

  /** free() past the fast path: a slot of another heap's, a block into this thread's cache, or the block's arena under its lock. */
  private freeShared(ptr: Address): void {
    if (typeof ptr !== 'number') return this.free(toAddress('free', ptr));
    const o = ptr - this.pages.base;
    if ((o >>> 0) === o && o < this.pages.top) return this.freeSmallElsewhere(ptr, o);
    if (this.outside(ptr)) return this.freeLarge(ptr);
    // Without a lock: an unnamed block of the home arena of up to 2 KiB, at a recorded block start,
    // whose size ends at a recorded start that records it, into this thread's cache if it has room. The compare-and-swap on its
    // size word (used -> cached) claims it: of two threads freeing one block, one wins and the
    // other takes the locked path, which reports the double free. The checks are FastHeap.free's,
    // written out again because there they stay inline in the unshared hot path.
    if (this.ints[I.DESTROYED] === 0 && this.bound === this.home) {
      const h = ptr - this.base - Block.HEADER;
      // `top` may be stale here: a block past it takes the locked path, which loads it afresh.
      if ((h >>> 0) === h && h >= Block.HEADER && h < this.top && (h & Flag.MASK) === Block.HEADER &&
          (this.starts[h >>> 9]! & (1 << ((h >>> 4) & 31))) !== 0) {
        const mem = this.mem;
        const w = h >>> 2;
        const size = mem[w + Word.SIZE]!;
        const c = size >>> 4;
        // The size ends at a recorded start (or the sentinel) whose prev size echoes it: an echo
        // alone could be any word of a neighbour's data.
        const n = h + size;
        if (size <= CACHE_MAX_BLOCK && (size & Flag.MASK) === 0 && size !== 0 && n <= this.top - Block.HEADER && mem[n >>> 2] === size &&
            ((this.starts[n >>> 9]! & (1 << ((n >>> 4) & 31))) !== 0 || n === this.top - Block.HEADER) && this.cacheCounts[c]! < CACHE_DEPTH &&
            Atomics.compareExchange(mem, w + Word.SIZE, size, size | Flag.CACHED) === size) {
          mem[w + Word.NEXT_FREE] = this.cacheHeads[c]!;
          this.cacheHeads[c] = h;
          this.cacheCounts[c]!++;
          if (this.scribble === true) this.scribbleFreed(h, size);
          return;
        }
      }
    }
    this.enter(this.arenaFor(ptr));
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
    // A live mark (LIVE + the page's class) is claimed whole: of two threads freeing the slot, one
    // swaps it for REMOTE and the other finds REMOTE.
    const mark = Atomics.load(pages.marks, g);
    if (owner === this.tag || mark > Page.LIVE_MAX || Atomics.compareExchange(pages.marks, g, mark, Page.REMOTE) !== mark) throw doubleFree('free', ptr);
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

  /** The caches go back to the free lists (when the heap would grow, on trim, on close): this heap's, of its home arena. */
  protected override flushCaches(): void {
    if (this.bound !== this.home) return super.flushCaches(); // none shown: nothing to move
    // Cached blocks count as in use in the shared counter; on the lists they are free.
    this.inUse -= this.cachedIn(this.slot, true);
    super.flushCaches();
  }


  override usableSize(ptr: Address): number {
    if (typeof ptr !== 'number') ptr = toAddress('usableSize', ptr);
    if (this.outside(ptr)) return this.usableLarge(ptr);
    this.enter(this.arenaFor(ptr));
    try {
      return super.usableSize(ptr);
    } finally {
      this.leave();
    }
  }

  /** @internal See HeapOperations. */
  override span(op: string, ptr: Address, length?: number): Uint8Array {
    if (typeof ptr !== 'number') ptr = toAddress(op, ptr);
    if (this.outside(ptr)) return this.spanLarge(op, ptr, length);
    this.enter(this.arenaFor(ptr));
    try {
      return super.span(op, ptr, length);
    } finally {
      this.leave();
    }
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
    if (this.ints[I.DESTROYED] === 0) {
      let destroyed = false;
      try {
        this.enter(this.home);
      } catch (e) {
        if (!(e instanceof HeapError && e.code === 'ERR_HEAP_DESTROYED')) throw e;
        destroyed = true;
      }
      if (!destroyed) {
        try {
          if (this.cachedBlocks() > 0) this.flushCaches();
        } finally {
          this.leave();
        }
        // Pages with slots in use stay tagged with this slot until another heap adopts them.
        const orphan = this.pages.release();
        this.lockGlobal();
        try {
          this.leaveSlot(orphan);
        } finally {
          this.unlockGlobal();
        }
      }
    }
    if (!this.closed) {
      // The arena is dead: nothing in it to repair or give back, only the slot table to update.
      this.lockGlobal();
      try {
        this.leaveSlot(false);
        this.reclaimDeadSlots(false);
        if (this.ints[I.OPEN] === 0) {
          releaseReservation(this.blocks);
          releaseReservation(this.supply.arena);
          this.floats[F.MUNMAP_CALLS]! += 2 + this.largeTable.releaseAll();
        }
      } finally {
        this.unlockGlobal();
      }
    }
    this.pages.avail.fill(0);
    this.largeTable.forgetViews();
    this.tag = -1;
    // The lock-free paths see an empty cache and an empty heap from now on, and take the locked
    // paths, which refuse a closed heap. (The slot's own arrays may be another heap's already.)
    this.homeCacheHeads = this.cacheHeads = new Uint32Array(CACHE_CLASSES);
    this.homeCacheCounts = this.cacheCounts = new Int32Array(CACHE_CLASSES);
    for (const view of this.arenas) view.seenTop = 0;
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
    this.lockGlobal();
    this.ints[I.DESTROYED] = 1; // enter() and the lock-free paths check it first
    this.unlockGlobal();
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
