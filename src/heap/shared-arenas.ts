// The shared preset's calls that span its arenas of blocks (./shared-state.ts has the arenas and
// their locks): where a request goes (allocate: the home arena, then arenas with room to spare,
// then growth), which arena an address lies in, and stats, snapshot, check and trim, which visit
// every arena under its lock in turn. The arenas grow and trim as the fast preset's arena does,
// but for two rules: growth makes blocks of all it commits (the record keeps the top alone), and a
// request an arena cannot hold is out of memory there, for the next arena to be tried.

import { Block } from '../layout/fast.js';
import { TRIM_MIN } from './fast.js';
import type { HeapSnapshot, HeapStats, RegionInfo } from './types.js';
import { SharedSlots } from './shared-slots.js';
import { AF, AI, F, I } from './shared-control.js';

export abstract class SharedArenas extends SharedSlots {
  /**
   * A block for a malloc of `size` bytes (`count` < 0) or a calloc of `count` × `size`, from the
   * first arena that has room, in this order: the home arena without growing it (unless the
   * request would take more than a quarter of it); the main arena and the thread arenas no heap
   * calls home, without growing them (what threads that ended left there serves before more is
   * committed); the home arena, or the main arena, grown; any arena grown. Out of memory after all.
   */
  protected allocate(count: number, size: number, bytes: number): number {
    const home = this.home;
    const first = bytes < this.arenas[home]!.reservation.size / 4 ? home : 0;
    this.trying = true;
    try {
      let ptr = first === home ? this.attempt(home, false, count, size) : 0;
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
    return count < 0 ? this.outOfMemory('malloc', size) : this.outOfMemory('calloc', `${count} × ${size}`);
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
    return this.arenaTops() + this.supply.held();
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
    return this.arenaTops() + this.supply.committed();
  }

  private arenaTops(): number {
    let tops = 0;
    for (let k = 0; k < this.arenas.length; k++) tops += k === this.bound && this.depth > 0 ? this.top : this.arenas[k]!.floats[AF.TOP]!;
    return tops;
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
    const inUse = arenaInUse - cached.bytes + small.bytes;
    const mapped = this.mapped();
    if (inUse > this.floats[F.PEAK_IN_USE]!) this.floats[F.PEAK_IN_USE] = inUse;
    if (mapped > this.floats[F.PEAK_MAPPED]!) this.floats[F.PEAK_MAPPED] = mapped;
    return {
      mapped,
      peakMapped: this.floats[F.PEAK_MAPPED]!,
      inUse,
      peakInUse: this.floats[F.PEAK_IN_USE]!,
      freeBytes: mapped - inUse,
      blocks: blocks + pages.slots + pages.emptyPages,
      usedBlocks: blocks - listed - cached.blocks + small.slots,
      freeBlocks: listed + cached.blocks + pages.slots - small.slots + pages.emptyPages,
      regions: regions + pages.classPages + pages.emptyPages,
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

  /** No mappings of its own: a request the arena cannot hold is out of memory (in this arena: see `trying`). */
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
