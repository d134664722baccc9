// The shared preset's table of heaps (./shared-control.ts has its layout): each heap over the arena
// holds a slot, which names its thread, its home arena and its small-block caches (of blocks of
// that arena), and tags the small-object pages it owns (./shared-pages.ts). The table and the
// supply of pages are under the global lock. When a heap's thread ends without close(), or is
// terminated, the next thread to look (attach, stats, check, trim, threads()) reclaims it: its
// pending block and cached blocks go back to their arenas' free lists, and its pages, with those of
// heaps closed while their slots were in use, are adopted by the looking heap. A slot is then free
// again, so any number of threads may attach over the heap's life, MAX_OPEN at once.

import { Flag, Word } from '../layout/fast.js';
import { Page, isClass } from '../layout/pages.js';
import { FREED_BYTE } from './fast-arena.js';
import { destroyedError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { SharedHeapHandle, SharedThreadStats } from './types.js';
import { SharedSmallPages, type PageSupply } from './shared-pages.js';
import { SharedState } from './shared-state.js';
import {
  AI, CACHE_CLASSES, CACHE_COUNTS_AT, CACHE_HEADS_AT, CACHE_STRIDE, F, I, MAX_OPEN, PENDING_LARGE, PENDING_SLOT, SLOT_ORPHAN, Slot, THREAD_ARENAS,
  reclaimMark,
  markAdopting, reclaimerOf, threadGone,
} from './shared-control.js';

/** Int32s from one slot's cache counts to the next's. */
const COUNTS_STRIDE = CACHE_STRIDE >>> 2;
/** How often attach and growth look for ended threads' heaps, at most. */
const RECLAIM_PERIOD_MS = 100;

export abstract class SharedSlots extends SharedState {
  /** This heap's tag on the pages it owns: its slot + 1 (0 before it has a slot, -1 once closed). */
  protected tag = 0;
  /** This heap's small-object pages. */
  protected pages!: SharedSmallPages;
  /** Every slot's cache counts (slot s's at s * COUNTS_STRIDE): what its caches hold, read by stats and check. */
  private readonly allCacheCounts = new Int32Array(this.control, CACHE_COUNTS_AT, COUNTS_STRIDE * MAX_OPEN);
  /** This heap's slot was a closed heap's that still owned pages (see claimSlot). */
  private orphaned = false;
  /** What this heap's pages ask of the supply: each call takes the lock. */
  private readonly pageSupply: PageSupply = {
    takePages: (into, want) => this.takePages(into, want),
    givePages: (pages, count) => this.givePages(pages, count),
  };

  constructor(options: ResolvedOptions, handle?: SharedHeapHandle) {
    super(options, handle);
    // The slot: taken under the global lock, after the heaps of threads that have ended are reclaimed.
    this.slot = -1;
    if (this.ints[I.DESTROYED] !== 0) throw destroyedError();
    this.reclaimSometimes();
    this.lockGlobal();
    try {
      if (this.ints[I.DESTROYED] !== 0) throw destroyedError();
      let slot = this.claimSlot(this.thread?.start ?? 0);
      if (slot < 0) {
        this.unlockGlobal();
        this.reclaimDeadSlots();
        this.lockGlobal();
        slot = this.claimSlot(this.thread?.start ?? 0);
      }
      if (slot < 0) throw new Error(`Heap.attach: ${MAX_OPEN} heaps are open over this shared heap in threads still running; close some first`);
      this.slot = slot;
      this.usePages();
    } finally {
      this.unlockGlobal();
    }
    this.homeCacheHeads = new Uint32Array(this.control, CACHE_HEADS_AT + CACHE_STRIDE * this.slot, CACHE_CLASSES);
    this.homeCacheCounts = new Int32Array(this.control, CACHE_COUNTS_AT + CACHE_STRIDE * this.slot, CACHE_CLASSES);
    this.home = this.slotInts[this.slot * Slot.INTS + Slot.I_HOME]!;
    this.bind(this.home);
  }

  /** This heap's small-object pages, once it has a slot; they adopt the pages its slot's last heap left. Under the lock. */
  protected usePages(): void {
    const supply = this.supply;
    this.tag = this.slot + 1;
    this.pages = new SharedSmallPages({
      arena: supply.arena,
      bytes: this.smallBytes,
      marks: supply.marks,
      classes: supply.classes,
      owners: supply.owners,
      remoteCounts: supply.remoteCounts,
      remoteNext: new Int32Array(this.control, this.layout.nextAt, this.layout.smallPages),
      slotInts: this.slotInts,
      remoteHeadAt: this.slot * Slot.INTS + Slot.I_REMOTE_PAGES,
      tag: this.tag,
      supply: this.pageSupply,
      freedFill: this.scribble ? FREED_BYTE : -1,
    });
    // The fast preset's own page paths never run here: small requests are SharedHeap.malloc's.
    this.pages.unavailable = true;
    this.small = this.pages;
    // A slot that was free had no pages (they were given back or adopted before it was freed).
    if (this.orphaned) this.adoptPagesOf(this.tag);
  }

  /** Every page tagged `tag` (a heap that is gone) is adopted by this heap, or given back when it has no slot in use. */
  protected adoptPagesOf(tag: number): void {
    const owners = this.pageOwners;
    const empty = new Int32Array(64);
    let n = 0;
    for (let p = 0; p < this.layout.smallPages; p++) {
      if (owners[p] !== tag || this.pages.adopt(p)) continue;
      empty[n++] = p;
      if (n === empty.length) {
        this.supply.give(empty, n);
        n = 0;
      }
    }
    this.supply.give(empty, n);
  }

  /** Pages for this heap's small-object pages, from the supply: under the global lock. */
  protected takePages(into: Int32Array, want: number): number {
    this.lockGlobal();
    try {
      const n = this.supply.take(into, want, this.tag, this.limit - this.committed());
      this.floats[F.MMAP_CALLS]! += this.supply.commits;
      this.supply.commits = 0;
      const mapped = this.mapped();
      if (mapped > this.floats[F.PEAK_MAPPED]!) this.floats[F.PEAK_MAPPED] = mapped;
      return n;
    } finally {
      this.unlockGlobal();
    }
  }

  /** Empty pages of this heap's back to the supply: under the global lock. */
  protected givePages(pages: Int32Array, count: number): void {
    this.lockGlobal();
    try {
      this.supply.give(pages, count);
    } finally {
      this.unlockGlobal();
    }
  }

  /**
   * A free slot for this heap, its caches empty, and its home: the thread arena fewest heaps call
   * home; else the slot of a closed heap whose pages are still in use, which this heap then adopts
   * (usePages); -1 when none is. Under the global lock.
   */
  protected claimSlot(start: number): number {
    const ints = this.slotInts;
    for (const from of [0, SLOT_ORPHAN]) {
      for (let s = 0; s < MAX_OPEN; s++) {
        const at = s * Slot.INTS + Slot.I_THREAD;
        if (ints[at] !== from || Atomics.compareExchange(ints, at, from, this.threadId) !== from) continue;
        this.orphaned = from === SLOT_ORPHAN;
        this.slotFloats[s * Slot.FLOATS + Slot.F_START] = start;
        this.slotFloats[s * Slot.FLOATS + Slot.F_PENDING] = 0;
        Atomics.store(this.slotInts, s * Slot.INTS + Slot.I_REMOTE_PAGES, 0);
        let home = 1;
        for (let k = 2; k <= THREAD_ARENAS; k++) if (this.arenas[k]!.ints[AI.HOMES]! < this.arenas[home]!.ints[AI.HOMES]!) home = k;
        this.slotInts[s * Slot.INTS + Slot.I_HOME] = home;
        new Uint32Array(this.control, CACHE_HEADS_AT + CACHE_STRIDE * s, CACHE_CLASSES).fill(0);
        new Int32Array(this.control, CACHE_COUNTS_AT + CACHE_STRIDE * s, CACHE_CLASSES).fill(0);
        this.recount();
        return s;
      }
    }
    return -1;
  }

  /**
   * reclaimDeadSlots, unless some heap did it in the last RECLAIM_PERIOD_MS: each look asks /proc
   * about every open heap's thread. For attach; stats, checks, trims and threads() always look.
   */
  protected reclaimSometimes(): void {
    const last = this.floats[F.LAST_RECLAIM]!;
    const now = Date.now();
    if (!(now - last < RECLAIM_PERIOD_MS && now >= last)) this.reclaimDeadSlots();
  }

  /**
   * Takes back the slots of heaps whose threads have ended without closing them: their pending and
   * cached blocks go back to their arenas' free lists (unless `flush` is false: the heap is
   * destroyed), each under its arena's lock; then, under the global lock, their pages, with those
   * of closed heaps, are adopted by this heap (once it has pages of its own), and their slots are
   * free for new heaps. Called holding no lock. Returns how many threads it found gone.
   */
  protected override reclaimDeadSlots(flush = true): number {
    this.floats[F.LAST_RECLAIM] = Date.now();
    const ints = this.slotInts;
    const gone: number[] = [];
    // A damaged arena stops one slot's blocks from coming back, not the others', nor the slot's return.
    let failed: unknown = undefined;
    for (let s = 0; s < MAX_OPEN; s++) {
      const at = s * Slot.INTS + Slot.I_THREAD;
      const thread = ints[at]!;
      if (s === this.slot) continue;
      // A slot another reclaimer marked, and that reclaimer's thread has ended since: taken over
      // (an adoption it left goes back to the orphans, for the pass below).
      const reclaimer = reclaimerOf(thread);
      if (reclaimer >= 0) {
        if (!threadGone(reclaimer, 0)) continue;
        if (markAdopting(thread)) {
          Atomics.compareExchange(ints, at, thread, SLOT_ORPHAN);
          continue;
        }
      } else if (thread <= 0 || !threadGone(thread, this.slotFloats[s * Slot.FLOATS + Slot.F_START]!)) {
        continue;
      }
      // One reclaimer wins the slot; it bears that reclaimer's mark until its blocks are back.
      if (Atomics.compareExchange(ints, at, thread, reclaimMark(this.threadId, false)) !== thread) continue;
      gone.push(s);
      if (!flush) continue;
      try {
        this.reclaimPending(s);
        this.reclaimCaches(s);
      } catch (e) {
        failed ??= e;
      }
    }
    if (failed !== undefined) {
      this.finishReclaim(gone, false);
      throw failed;
    }
    return this.finishReclaim(gone, flush);
  }

  /** The slots in `gone`, their blocks back, are free for new heaps; with `adopt`, this heap adopts the pages of every closed or ended heap. */
  private finishReclaim(gone: number[], adopt: boolean): number {
    const ints = this.slotInts;
    this.lockGlobal();
    try {
      for (const s of gone) {
        this.slotFloats[s * Slot.FLOATS + Slot.F_START] = 0;
        this.ints[I.RECLAIMED]!++;
        // The slot's word last: a reclaimer terminated before it leaves its mark, for the next.
        Atomics.store(ints, s * Slot.INTS + Slot.I_THREAD, SLOT_ORPHAN);
      }
      this.recount();
      if (this.tag === 0 || !adopt) return gone.length;
      for (let s = 0; s < MAX_OPEN; s++) {
        const at = s * Slot.INTS + Slot.I_THREAD;
        if (ints[at] !== SLOT_ORPHAN || Atomics.compareExchange(ints, at, SLOT_ORPHAN, reclaimMark(this.threadId, true)) !== SLOT_ORPHAN) continue;
        this.adoptPagesOf(s + 1);
        Atomics.store(ints, at, 0);
      }
    } finally {
      this.unlockGlobal();
    }
    return gone.length;
  }

  /**
   * The block a call of slot `s`'s heap was handing out when its thread ended inside it (a calloc
   * filling it, a realloc copying into it): the call never returned, so no one else has the
   * address, and the block is freed. Whatever else that call had done, repair() undid. A large
   * block (arena PENDING_LARGE) is known by its address.
   */
  protected reclaimPending(s: number): void {
    const pendingAt = s * Slot.FLOATS + Slot.F_PENDING;
    const arena = this.slotInts[s * Slot.INTS + Slot.I_PENDING_ARENA]!;
    // A large block this heap was moving out (a realloc's claim) is live again, where it was.
    this.lockGlobal();
    try {
      this.largeTable.unclaimAll(s);
      if (arena === PENDING_LARGE) {
        // A large block, by its address: freed if the table still holds it live there.
        const h = this.slotFloats[pendingAt]!;
        this.slotFloats[pendingAt] = 0;
        const e = h === 0 ? -1 : this.largeTable.find(h);
        if (e >= 0 && this.largeTable.address(e) === h) this.largeTable.free(e, 0);
      }
    } finally {
      this.unlockGlobal();
    }
    if (arena === PENDING_LARGE) return;
    if (arena === PENDING_SLOT) {
      this.reclaimPendingSlot(s, this.slotFloats[pendingAt]!);
      this.slotFloats[pendingAt] = 0;
      return;
    }
    if (!(arena >= 0 && arena < this.arenas.length)) {
      this.slotFloats[pendingAt] = 0;
      return;
    }
    this.enter(arena);
    try {
      // Read under the arena's lock: taking it over from a thread that died in it dropped the
      // record of a block that thread had freed (repair), before anyone could allocate it again.
      const h = this.slotFloats[pendingAt]!;
      this.slotFloats[pendingAt] = 0;
      // In use, or (the block a reclaimer of this slot's caches had taken off them when it was
      // terminated) cached.
      const size = h === 0 ? -1 : this.pendingSize(h);
      if (size < 0) return;
      this.mem[(h >>> 2) + Word.SIZE] = size;
      this.inUse -= size;
      this.release(h, size, false);
    } finally {
      this.leave();
    }
  }

  /**
   * The slot of the small-object pages at `ptr` that a move of slot `s`'s heap had taken when its
   * thread ended (SharedHeap.mallocForMove): freed as another thread frees a slot (its mark from
   * LIVE to REMOTE, counted on its page), while the page is still that heap's and the slot in use.
   * No other thread has its address, and the pages of `s` are adopted only after this (or the
   * next reclaimer does this again first, and finds it REMOTE).
   */
  private reclaimPendingSlot(s: number, ptr: number): void {
    const supply = this.supply;
    const o = ptr - supply.arena.address;
    if (!((o >>> 0) === o && o < supply.arena.size && (o & ((1 << Page.GRANULE_SHIFT) - 1)) === 0)) return;
    const page = o >>> Page.SHIFT;
    const c = supply.classes[page]!;
    const g = o >>> Page.GRANULE_SHIFT;
    if (supply.owners[page] !== s + 1 || !isClass(c)) return;
    if (Atomics.compareExchange(supply.marks, g, Page.LIVE + c, Page.REMOTE) === Page.LIVE + c) Atomics.add(supply.remoteCounts, page, 1);
  }

  /**
   * The cached blocks of slot `s`, whose thread has ended, go back to its home arena's free lists.
   * Its thread may have died inside a cache's push or pop: a list is followed only while each block
   * proves to be a cached block of its size at a recorded start, and a block it does not reach
   * stays lost.
   */
  protected reclaimCaches(s: number): void {
    this.enter(this.slotInts[s * Slot.INTS + Slot.I_HOME]!);
    try {
      this.releaseCachesOf(s);
    } finally {
      this.leave();
    }
  }

  private releaseCachesOf(s: number): void {
    const heads = new Uint32Array(this.control, CACHE_HEADS_AT + CACHE_STRIDE * s, CACHE_CLASSES);
    const counts = new Int32Array(this.control, CACHE_COUNTS_AT + CACHE_STRIDE * s, CACHE_CLASSES);
    const mem = this.mem;
    const pendingAt = s * Slot.FLOATS + Slot.F_PENDING;
    this.slotInts[s * Slot.INTS + Slot.I_PENDING_ARENA] = this.bound;
    for (let c = 1; c < CACHE_CLASSES; c++) {
      const size = c << 4;
      // One block at a time: off the cache, recorded as the slot's pending block, then released.
      // A reclaimer terminated anywhere in between leaves the rest of the cache, and the block in
      // hand, to the next (reclaimPending frees it first).
      while (heads[c] !== 0 && counts[c]! > 0) {
        const h = heads[c]!;
        const w = h >>> 2;
        if (!this.isStart(h) || mem[w + Word.SIZE] !== (size | Flag.CACHED) || !this.sizeAgrees(h, size)) break;
        this.slotFloats[pendingAt] = h;
        heads[c] = mem[w + Word.NEXT_FREE]!;
        counts[c]!--;
        mem[w + Word.SIZE] = size;
        this.inUse -= size;
        this.release(h, size, false);
        this.slotFloats[pendingAt] = 0;
      }
      heads[c] = 0;
      counts[c] = 0;
    }
  }

  /**
   * The heap is closed, and its slot free again; or, when it still owns pages with slots in use
   * (`orphan`), left for the next reclaim to adopt them. Under the global lock.
   */
  protected leaveSlot(orphan: boolean): void {
    this.closed = true;
    this.slotFloats[this.slot * Slot.FLOATS + Slot.F_START] = 0;
    Atomics.store(this.slotInts, this.slot * Slot.INTS + Slot.I_THREAD, orphan ? SLOT_ORPHAN : 0);
    this.recount();
  }

  /**
   * The heaps open (I.OPEN) and each arena's homes (AI.HOMES), counted afresh from the slots whose
   * word names a thread: kept as counts, a thread terminated between a slot's change and the
   * count's would leave them wrong for good. Under the global lock.
   */
  private recount(): void {
    const homes = new Int32Array(this.arenas.length);
    let open = 0;
    for (let s = 0; s < MAX_OPEN; s++) {
      if (this.slotInts[s * Slot.INTS + Slot.I_THREAD]! <= 0) continue;
      open++;
      const home = this.slotInts[s * Slot.INTS + Slot.I_HOME]!;
      if (home > 0 && home < homes.length) homes[home]!++;
    }
    this.ints[I.OPEN] = open;
    for (let k = 0; k < homes.length; k++) this.arenas[k]!.ints[AI.HOMES] = homes[k]!;
  }

  /**
   * The bytes (`bytes`) or blocks the caches of slot `s` hold, from their counts: the counts are
   * what the lock-free paths write anyway, so publishing totals as well would cost them stores.
   */
  protected cachedIn(s: number, bytes: boolean): number {
    const counts = this.allCacheCounts;
    const at = s * COUNTS_STRIDE;
    let total = 0;
    for (let c = 1; c < CACHE_CLASSES; c++) {
      const n = counts[at + c]!;
      if (n > 0) total += bytes ? n * (c << 4) : n;
    }
    return total;
  }

  /** Blocks and bytes every open thread's caches hold. */
  protected cachedEverywhere(): { blocks: number; bytes: number } {
    let blocks = 0;
    let bytes = 0;
    for (let s = 0; s < MAX_OPEN; s++) {
      if (this.slotInts[s * Slot.INTS + Slot.I_THREAD]! <= 0) continue;
      blocks += this.cachedIn(s, false);
      bytes += this.cachedIn(s, true);
    }
    return { blocks, bytes };
  }

  /**
   * The heaps open over the arena, and what was taken back from threads that ended: heaps never
   * closed, and the lock taken over from a thread that died holding it. Ended threads' heaps are
   * reclaimed first.
   */
  threads(): SharedThreadStats {
    this.assertLive();
    this.reclaimDeadSlots();
    return { open: this.ints[I.OPEN]!, reclaimed: this.ints[I.RECLAIMED]!, repairs: this.ints[I.REPAIRS]! };
  }
}
