// The shared preset's calls that span its arenas of blocks (./shared-state.ts has the arenas and
// their locks): where a request goes (allocate: the home arena, then arenas with room to spare,
// then growth), which arena an address lies in, and stats, snapshot, check and trim, which visit
// every arena under its lock in turn. The arenas grow and trim as the fast preset's arena does,
// but for two rules: growth makes blocks of all it commits (the record keeps the top alone), and a
// request an arena cannot hold is out of memory there, for the next arena to be tried.

import { Block } from '../layout/fast.js';
import { SCRIBBLE_BYTE, TRIM_MIN } from './fast.js';
import { MAX_VIEW_BYTES, alignPage, copyMemory, fillMemory } from '../os/memory.js';
import { checkAddress, checkRealloc, checkSize } from './arguments.js';
import { hex } from './errors.js';
import { LARGE_MIN } from './shared-large.js';
import type { HeapSnapshot, HeapStats, RegionInfo } from './types.js';
import { SharedSlots } from './shared-slots.js';
import { AF, AI, F, I, PENDING_LARGE, Slot } from './shared-control.js';

export abstract class SharedArenas extends SharedSlots {
  /** malloc for a move, its new block recorded as the slot's pending block until the move is done (SharedHeap's). */
  protected abstract mallocForMove(size: number): number;

  /**
   * A block for a malloc of `size` bytes (`count` < 0) or a calloc of `count` × `size`, from the
   * first arena that has room, in this order: the home arena without growing it (unless the
   * request would take more than a quarter of it); the main arena and the thread arenas no heap
   * calls home, without growing them (what threads that ended left there serves before more is
   * committed); the home arena, or the main arena, grown; any arena grown. Out of memory after all.
   */
  protected allocate(count: number, size: number, bytes: number): number {
    // Proved here for the large path (the arenas' path proves it again): calloc's were, by callocBytes.
    if (count < 0) checkSize('malloc', 'size', size);
    const home = this.home;
    const first = bytes < this.arenas[home]!.reservation.size / 4 ? home : 0;
    this.trying = true;
    try {
      // A large request: a mapping of its own first.
      let ptr = bytes >= LARGE_MIN ? this.allocateLarge(bytes, count < 0) : 0;
      if (ptr !== 0) return ptr;
      ptr = first === home ? this.attempt(home, false, count, size) : 0;
      for (let k = 0; k < this.arenas.length && ptr === 0; k++) {
        const arena = this.arenas[k]!;
        if (k === home || (k !== 0 && arena.ints[AI.HOMES] !== 0) || arena.floats[AF.TOP] === 0) continue;
        ptr = this.attempt(k, false, count, size);
      }
      if (ptr === 0) ptr = this.attempt(first, true, count, size);
      for (let k = 0; k < this.arenas.length && ptr === 0; k++) if (k !== first) ptr = this.attempt(k, true, count, size);
      if (ptr !== 0) return ptr;
    } finally {
      this.trying = false;
    }
    // No arena can hold it: a mapping of its own, as glibc's malloc falls back to mmap.
    const ptr = bytes < LARGE_MIN ? this.allocateLarge(bytes, count < 0) : 0;
    if (ptr !== 0) return ptr;
    return count < 0 ? this.outOfMemory('malloc', size) : this.outOfMemory('calloc', `${count} × ${size}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Large blocks: each in a mapping of its own, recorded in the table of ./shared-large.ts, under
  // the global lock. Addresses outside the reservation are theirs, or no block's.

  /** Whether `ptr` lies outside the reservation (the arenas of blocks and the small-object arena). */
  protected outside(ptr: number): boolean {
    const d = ptr - this.blocks.address;
    return !(d >= 0 && d < this.wholeBytes.length);
  }

  /**
   * A block of `bytes` bytes in a mapping of its own (scribbled when `scribble` and the heap
   * scribbles; fresh pages are zero, so calloc needs nothing), or 0 when none can be had.
   */
  protected allocateLarge(bytes: number, scribble: boolean): number {
    if (!(bytes <= MAX_VIEW_BYTES)) return 0;
    const length = alignPage(Math.max(bytes, 1));
    let ptr = 0;
    this.lockGlobal();
    try {
      this.assertLive();
      // The limit under the lock: two threads' large blocks cannot both pass it.
      const most = this.limit - this.committed();
      if (length > most) return 0;
      ptr = this.largeTable.allocate(length, bytes >= LARGE_MIN, most);
      if (ptr !== 0) this.notePeaksOfLarge();
      // A block a move will copy into (moveOut in ./shared.ts, reallocLarge): pending until the move is done.
      if (ptr !== 0 && this.keepPending && this.slot >= 0) {
        this.slotInts[this.slot * Slot.INTS + Slot.I_PENDING_ARENA] = PENDING_LARGE;
        this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = ptr;
      }
    } finally {
      this.unlockGlobal();
    }
    if (ptr !== 0 && scribble && this.scribble) fillMemory(ptr, SCRIBBLE_BYTE, length);
    return ptr;
  }

  /** free() of an address outside the reservation: NULL, a large block, or an error. */
  protected freeLarge(ptr: number): void {
    checkAddress('free', ptr);
    this.assertLive();
    if (ptr === 0) return;
    this.lockGlobal();
    try {
      this.largeTable.free(this.largeAt(ptr, 'free'), this.id);
    } finally {
      this.unlockGlobal();
    }
  }

  /**
   * realloc of a large block: kept while it fits and would not be more than half empty; else
   * resized where it lies (over the freed range or free address space after it, or its tail given
   * back) while the size is at least half LARGE_MIN (an arena's block moves to a mapping only at
   * LARGE_MIN: a block resized about the threshold does not move at every call); else moved:
   * claimed under the lock (another thread's free or realloc of it is then an error, and cannot
   * unmap it under the copy), copied to a new block outside the lock, and freed. A thread ended
   * in the middle leaves the old block live (its claim ended by the reclaim) and the new one
   * pending, which the reclaim frees.
   */
  protected reallocLarge(ptr: number, size: number): number {
    checkRealloc(ptr, size, undefined);
    this.assertLive();
    if (size === 0) {
      this.freeLarge(ptr);
      return 0;
    }
    let old = 0;
    this.lockGlobal();
    try {
      const e = this.largeAt(ptr, 'realloc');
      old = this.largeTable.size(e);
      if (size <= old && size > old / 2) {
        if (this.scribble) fillMemory(ptr + size, SCRIBBLE_BYTE, old - size);
        return ptr;
      }
      const length = alignPage(size);
      if (size >= LARGE_MIN / 2 && size <= MAX_VIEW_BYTES && this.committed() - old + length <= this.limit &&
          this.largeTable.resize(e, length, this.id)) {
        this.notePeaksOfLarge();
        if (this.scribble) fillMemory(ptr + Math.min(old, size), SCRIBBLE_BYTE, length - Math.min(old, size));
        return ptr;
      }
      // To be moved: claimed, so that no other thread's free unmaps it while it is copied.
      this.largeTable.claim(e, this.slot);
    } finally {
      this.unlockGlobal();
    }
    let moved = 0;
    this.keepPending = true;
    try {
      moved = this.mallocForMove(size);
      if (moved !== 0) copyMemory(moved, ptr, Math.min(old, size));
    } finally {
      this.keepPending = false;
      this.lockGlobal();
      try {
        const claimed = this.largeTable.claimedAt(ptr);
        if (claimed >= 0) {
          if (moved !== 0) this.largeTable.free(claimed, this.id);
          else this.largeTable.unclaim(claimed);
        }
        this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = 0;
      } finally {
        this.unlockGlobal();
      }
    }
    return moved !== 0 ? moved : this.outOfMemory('realloc', size);
  }

  /** usableSize of an address outside the reservation. */
  protected usableLarge(ptr: number): number {
    checkAddress('usableSize', ptr);
    this.assertLive();
    this.lockGlobal();
    try {
      return this.largeTable.size(this.largeAt(ptr, 'usableSize'));
    } finally {
      this.unlockGlobal();
    }
  }

  /** span (bytes() and its kin) of an address outside the reservation: inside a large block, or an error. */
  protected spanLarge(op: string, ptr: number, length: number | undefined): Uint8Array {
    checkAddress(op, ptr);
    if (length !== undefined) checkSize(op, 'length', length);
    this.assertLive();
    this.lockGlobal();
    try {
      const table = this.largeTable;
      const e = table.find(ptr);
      if (e < 0) throw table.notBlock(ptr, op);
      const start = table.address(e);
      const room = start + table.size(e) - ptr;
      const n = length ?? room;
      if (n > room) {
        throw new RangeError(`${op}(${hex(ptr)}, ${n}): the block has only ${room} usable bytes` +
          (ptr === start ? '' : ` from that address (${ptr - start} bytes into the block)`));
      }
      return table.view(e, ptr, n, this.id);
    } finally {
      this.unlockGlobal();
    }
  }

  /** The entry of the large block that starts at `ptr`; else the error naming `op`. Under the global lock. */
  private largeAt(ptr: number, op: string): number {
    const e = this.largeTable.find(ptr);
    if (e < 0 || this.largeTable.address(e) !== ptr) throw this.largeTable.notBlock(ptr, op);
    return e;
  }

  /**
   * Raises the peaks to what a large block's malloc or growth made them: the bytes mapped, and
   * in use the arenas' records (their cached blocks counted, their pages not, as a call under an
   * arena's lock sees them) and the large blocks; stats() raises it to everything.
   */
  private notePeaksOfLarge(): void {
    let inUse = this.largeTable.bytes();
    for (const arena of this.arenas) inUse += arena.floats[AF.IN_USE]!;
    if (inUse > this.floats[F.PEAK_IN_USE]!) this.floats[F.PEAK_IN_USE] = inUse;
    const mapped = this.mapped();
    if (mapped > this.floats[F.PEAK_MAPPED]!) this.floats[F.PEAK_MAPPED] = mapped;
  }


  /** allocate's try of arena `k`, growing it only when `grow`: the block, or 0. */
  private attempt(k: number, grow: boolean, count: number, size: number): number {
    this.noGrowth = !grow;
    this.enter(k);
    try {
      const ptr = count < 0 ? +this.mallocSlow(size, undefined) : super.calloc(count, size);
      // A block a move out of another arena will copy into: pending until the move is done.
      if (ptr !== 0 && this.keepPending) this.pending(ptr - this.base - Block.HEADER);
      return ptr;
    } finally {
      this.noGrowth = false;
      this.leave();
    }
  }

  /** The arena whose lock a call on `ptr` takes: the one it lies in, else (to name the error) home. */
  protected arenaFor(ptr: number): number {
    const k = this.arenaOf(ptr);
    return k >= 0 ? k : this.home;
  }

  /**
   * Every arena's committed bytes (which of them another thread has touched is not tracked across
   * threads), and the small-object pages ever handed out but those given back. The bound arena's
   * from the fields, the others' from their records (a call behind, at most).
   */
  protected override mapped(): number {
    return this.arenasSum(AF.TOP, this.top) - this.arenasSum(AF.PURGED, this.purgedBytes) + this.supply.held() + this.largeTable.bytes();
  }

  /**
   * Only a reach of more than an eighth of the arena past the touched top: an arena's footprint
   * is all it has committed (mapped()), which its blocks tile to its top, so handing out more of
   * it shows in no peak. Merging the caches at every byte past the touched top, as the fast
   * preset does, made three in four of a random 16-512 B churn's cache misses at the peak take
   * the lock (docs/benchmarks.md#shared-heap); the eighth keeps the merges where a top block
   * would run far ahead of the blocks below it.
   */
  protected override passesPeak(end: number): boolean {
    return this.mapped() + (end - this.touchedTop) - (this.top >>> 3) > this.peakMapped;
  }

  /** The arenas' tops and the small-object arena's committed pages (every heap's). */
  protected override committed(): number {
    return this.arenasSum(AF.TOP, this.top) + this.supply.committed() + this.largeTable.bytes();
  }

  /**
   * Record `field` of every arena, summed: the bound arena's from `current` (its field, ahead of
   * its record while this heap holds its lock), the others' from their records (a call behind, at most).
   */
  private arenasSum(field: AF, current: number): number {
    let sum = 0;
    for (let k = 0; k < this.arenas.length; k++) sum += k === this.bound && this.depth > 0 ? current : this.arenas[k]!.floats[field]!;
    return sum;
  }

  /**
   * The same in every thread: every arena's blocks (blocks in threads' caches count as free), and
   * every heap's small-object pages as the fast preset counts its own (a slot another thread freed
   * is free at once; an empty page is one free block). Each arena's counters are read under its
   * lock, one arena after another. `peakInUse` is the most a call under an arena's lock saw of the
   * arenas' blocks, or stats() of everything.
   */
  override stats(): HeapStats {
    this.assertLive();
    this.reclaimDeadSlots();
    let blocks = 0;
    let listed = 0;
    let arenaInUse = 0;
    let regions = 0;
    let mmapCalls = this.floats[F.MMAP_CALLS]!;
    let munmapCalls = this.floats[F.MUNMAP_CALLS]!;
    for (let k = 0; k < this.arenas.length; k++) {
      this.enter(k);
      try {
        blocks += this.blockCount;
        listed += this.lists.count;
        arenaInUse += this.inUse;
        if (this.top > 0) regions++;
        mmapCalls += this.mmapCalls;
        munmapCalls += this.munmapCalls;
      } finally {
        this.leave();
      }
    }
    const cached = this.cachedEverywhere();
    const small = this.pages.usage();
    const pages = this.pages.census();
    this.lockGlobal();
    const largeBytes = this.largeTable.bytes();
    const large = this.largeTable.blocks();
    this.unlockGlobal();
    const inUse = arenaInUse - cached.bytes + small.bytes + largeBytes;
    const mapped = this.mapped();
    if (inUse > this.floats[F.PEAK_IN_USE]!) this.floats[F.PEAK_IN_USE] = inUse;
    if (mapped > this.floats[F.PEAK_MAPPED]!) this.floats[F.PEAK_MAPPED] = mapped;
    return {
      mapped,
      peakMapped: this.floats[F.PEAK_MAPPED]!,
      inUse,
      peakInUse: this.floats[F.PEAK_IN_USE]!,
      freeBytes: mapped - inUse,
      blocks: blocks + pages.slots + pages.emptyPages + large,
      usedBlocks: blocks - listed - cached.blocks + small.slots + large,
      freeBlocks: listed + cached.blocks + pages.slots - small.slots + pages.emptyPages,
      regions: regions + pages.classPages + pages.emptyPages + large,
      mmapCalls,
      munmapCalls,
    };
  }

  /** check() compares an arena's walk with its counters only while no other heap is open over it. */
  protected override countedInUse(): number | undefined {
    const cached = this.bound === this.home ? this.cachedIn(this.slot, true) : 0;
    return this.ints[I.OPEN] === 1 ? this.inUse - cached + this.pages.usage().bytes : undefined;
  }

  /** This thread's caches are walked in its home arena; all cached blocks are accounted for when it is alone. */
  protected override checkCaches(cachedBlocks: number): void {
    const here = this.bound === this.home ? this.cachedIn(this.slot, false) : 0;
    super.checkCaches(this.ints[I.OPEN] === 1 ? cachedBlocks : here);
  }

  /** Every arena's blocks and free lists (this thread's caches with its home's), under each arena's lock in turn; then the pages. */
  override snapshot(): HeapSnapshot {
    this.assertLive();
    const regions: RegionInfo[] = [];
    const freeList: number[] = [];
    for (let k = 0; k < this.arenas.length; k++) {
      this.enter(k);
      try {
        if (this.top > 0) regions.push({ address: this.base, size: this.top, blocks: this.heapBlocks() });
        this.viewFreeList(freeList);
      } finally {
        this.leave();
      }
    }
    regions.push(...this.smallRegions());
    this.lockGlobal();
    try {
      regions.push(...this.largeTable.regions());
    } finally {
      this.unlockGlobal();
    }
    return { regions, freeList };
  }

  /** Every arena, under its lock in turn, and this heap's pages (reclaiming the heaps of ended threads first). */
  override check(): void {
    this.assertLive();
    this.reclaimDeadSlots();
    for (let k = 0; k < this.arenas.length; k++) {
      this.enter(k);
      try {
        super.check();
      } finally {
        this.leave();
      }
    }
    this.lockGlobal();
    try {
      this.largeTable.check();
    } finally {
      this.unlockGlobal();
    }
  }

  /**
   * Every arena's free top given back, and the supply's idle pages; slots other threads freed in
   * this heap's pages come back first, so that their pages may go.
   */
  override trim(): void {
    this.assertLive();
    this.reclaimDeadSlots();
    this.pages.collectRemote();
    for (let k = 0; k < this.arenas.length; k++) {
      this.enter(k);
      try {
        super.trim();
      } finally {
        this.leave();
      }
    }
    this.lockGlobal();
    try {
      this.floats[F.MUNMAP_CALLS]! += this.supply.giveBackIdle();
    } finally {
      this.unlockGlobal();
    }
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

  /** Not from an arena: a request the arena cannot hold is out of memory there (see `trying`); allocate then tries a mapping of its own. */
  protected override mallocLarge(size: number): number {
    return this.outOfMemory('malloc', size);
  }

  /** In allocate's first tries, an arena is not grown: only a free block at its top that serves already is taken. */
  protected override growTop(need: number): number {
    if (!this.noGrowth) return super.growTop(need);
    const last = this.top > 0 ? this.freeBefore(this.top - Block.HEADER) : 0;
    return last !== 0 && this.top - Block.HEADER - last >= need ? last : 0;
  }

  /** Out of memory in one arena while another is still to be tried is 0, whatever the options say. */
  protected override outOfMemory(op: string, bytes: number | string): number {
    return this.trying ? 0 : super.outOfMemory(op, bytes);
  }
}
