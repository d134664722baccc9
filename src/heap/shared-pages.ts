// The shared preset's small-object pages: one arena for every thread, each page owned by the heap
// (the thread) that took it. It is SmallPages (./pages.ts) with the facts other threads read in
// the control block (./shared-control.ts) instead of the heap object:
//
//   marks[g]               as in SmallPages, over the whole shared arena; written by p's owner only
//   classes[p]             the class whose slots page p holds (0 for none, Page.GIVEN_BACK for a page
//                          in the supply whose memory went back), written by p's owner when it
//                          changes; the rest of SmallPages.pageInfo (the free list's head, the slots
//                          in use) is the owner's alone, in an array of its heap object, so that
//                          no cache line the hot paths write is another thread's too
//   owners[p]              the tag (slot + 1) of the heap that owns page p, 0 when no heap does
//   remoteCounts[p]        slots of page p freed by other threads, not yet taken back by its owner
//   remoteNext[p]          the next page on the owner's list of pages with such slots, whose head
//                          is in the owner's slot record (Slot.I_REMOTE_PAGES)
//
// A heap allocates from and frees into its own pages exactly as the unshared preset does, with
// plain reads and writes: no lock, no atomic operation. Another thread frees a slot of it by a
// compare-and-swap of its mark from LIVE to REMOTE (of two threads freeing one slot, one wins; the
// other is told it is a double free), counts it on the page, and, when it is the page's first,
// pushes the page on its owner's list with a compare-and-swap. The owner takes the list whole
// (Atomics.exchange) when a class runs out of free slots, and turns each REMOTE slot into a free
// one. A free by the owner races a free by another thread of the same slot only through a double
// free in the program; then one of the two goes unreported, and the slot is freed once.
//
// Pages come from the shared supply, under the shared lock, a few at a time (PageSupply, which
// SharedHeap implements), and go back to it when a heap holds more empty pages than it keeps.
// When a heap's thread ends, or it closes holding pages with slots in use, another heap adopts its
// pages (adopt): each page's free list is rebuilt from its marks, which are the truth whatever the
// thread was doing when it stopped.

import { SmallPages } from './pages.js';
import { CLASS_SIZE, CLASS_SLOTS, Page, isClass } from '../layout/pages.js';
import type { Reservation } from '../os/memory.js';

const classSize = CLASS_SIZE;
const classSlots = CLASS_SLOTS;

/** What a heap asks of the shared supply of pages; each call takes the shared lock. */
export interface PageSupply {
  /** Up to `want` pages for this heap (no class's, marks NOT_SLOT), written to `into`; how many. */
  takePages(into: Int32Array, want: number): number;
  /** Gives back the first `count` pages of `pages` (no class's, marks NOT_SLOT) to the supply. */
  givePages(pages: Int32Array, count: number): void;
}

/** Pages taken from the supply at once. */
const BATCH = 8;
/** Empty pages a heap keeps; past twice as many, the rest go back to the supply. */
const POOL_KEEP = 32;
/** Pages taken from the supply between two looks for pages whose remote frees no list holds. */
const STRAY_PERIOD = 64;

export interface SharedPagesState {
  readonly arena: Reservation;
  /** The arena's bytes (its reservation's buffer may span more than it). */
  readonly bytes: Uint8Array;
  readonly marks: Int8Array;
  readonly classes: Int32Array;
  readonly owners: Int32Array;
  readonly remoteCounts: Int32Array;
  readonly remoteNext: Int32Array;
  /** The slot records as Int32, and the index of this heap's list head in it. */
  readonly slotInts: Int32Array;
  readonly remoteHeadAt: number;
  /** This heap's tag: its slot + 1. */
  readonly tag: number;
  readonly supply: PageSupply;
  /** The byte a freed slot is filled with, or -1 (see SmallPages). */
  readonly freedFill: number;
}

export class SharedSmallPages extends SmallPages {
  readonly classes: Int32Array;
  readonly owners: Int32Array;
  readonly remoteCounts: Int32Array;
  readonly remoteNext: Int32Array;
  private readonly slotInts: Int32Array;
  private readonly remoteHeadAt: number;
  readonly tag: number;
  private readonly supply: PageSupply;
  private readonly batch = new Int32Array(BATCH);
  private readonly arenaPages: number;
  private taken = 0;

  constructor(state: SharedPagesState) {
    super(state.freedFill);
    this.reservation = state.arena;
    this.base = state.arena.address;
    this.top = state.arena.size;
    this.fresh = state.arena.size;
    this.bytes = state.bytes;
    this.words = new Int32Array(state.bytes.buffer, state.bytes.byteOffset, state.bytes.byteLength >>> 2);
    this.marks = state.marks;
    this.classes = state.classes;
    this.owners = state.owners;
    this.remoteCounts = state.remoteCounts;
    this.remoteNext = state.remoteNext;
    this.slotInts = state.slotInts;
    this.remoteHeadAt = state.remoteHeadAt;
    this.tag = state.tag;
    this.supply = state.supply;
    this.arenaPages = state.arena.size >>> Page.SHIFT;
    this.pool = new Int32Array(2 * POOL_KEEP + BATCH + 1);
  }

  /** This heap's arrays reach page `page`: its next and prev links and its pageInfo are grown to hold it. */
  private ensureLinks(page: number): void {
    if (page < this.next.length) return;
    const n = Math.min(this.arenaPages, Math.max(page + 1, 2 * this.next.length, 256));
    this.next = grownTo(this.next, n);
    this.prev = grownTo(this.prev, n);
    this.pageInfo = grownTo(this.pageInfo, n);
  }

  /** Only the links and pageInfo are this heap's to grow: the other page facts are the control block's. */
  protected override ensureCapacity(pages: number): void {
    if (pages > 0) this.ensureLinks(pages - 1);
  }

  /** An empty page of this heap's: from its pool, or a few from the shared supply. */
  protected override takePage(_room: number): number {
    if (this.pooled > 0) return this.pool[--this.pooled]!;
    if (++this.taken % STRAY_PERIOD === 0) this.collectStrays();
    const n = this.supply.takePages(this.batch, BATCH);
    for (let i = 0; i < n; i++) this.ensureLinks(this.batch[i]!);
    for (let i = n - 1; i >= 1; i--) this.pool[this.pooled++] = this.batch[i]!;
    return n === 0 ? 0 : this.batch[0]!;
  }

  /** Gives class `c` a page, as SmallPages.refill, and publishes the page's class. */
  override refill(c: number, room: number): number {
    const page = super.refill(c, room);
    if (page !== 0) this.classes[page] = c;
    return page;
  }

  /** The class of page `page`, any heap's: as its owner published it. */
  override classOf(page: number): number {
    return this.classes[page]! & Page.INFO_CLASS;
  }

  /** A page whose slots are all free leaves its class; past twice POOL_KEEP empty pages, the oldest go back to the supply. */
  protected override toPool(page: number): void {
    super.toPool(page);
    this.classes[page] = 0;
    if (this.pooled <= 2 * POOL_KEEP) return;
    const give = this.pooled - POOL_KEEP;
    this.supply.givePages(this.pool, give);
    this.pool.copyWithin(0, give, this.pooled);
    this.pooled -= give;
  }

  /** Every empty page goes back to the supply (trim, growth past the heap's peak, close). */
  override givePoolBack(): void {
    if (this.pooled === 0) return;
    this.supply.givePages(this.pool, this.pooled);
    this.pooled = 0;
  }

  /** The granule of the slot at offset `o`, in use or free, in a page some heap owns; else -1. */
  override locate(o: number): number {
    if ((o >>> 0) !== o || o >= this.top || (o & ((1 << Page.GRANULE_SHIFT) - 1)) !== 0 || this.owners[o >>> Page.SHIFT] === 0) return -1;
    const g = o >>> Page.GRANULE_SHIFT;
    return this.marks[g] === Page.NOT_SLOT ? -1 : g;
  }

  // -------------------------------------------------------------------------------------------
  // Slots freed by other threads.

  /** Takes back the slots other threads freed in this heap's pages: the pages on its list. */
  collectRemote(): void {
    let p = Atomics.exchange(this.slotInts, this.remoteHeadAt, 0);
    // The list is the control block's (pushed by compare-and-swap): bounded, in case of a bug.
    for (let steps = 0; p > 0 && p < this.arenaPages && steps < this.arenaPages; steps++) {
      const next = this.remoteNext[p]!;
      // A page adopted by another heap since it was pushed is that heap's (collectStrays finds it).
      if (this.owners[p] === this.tag) this.collectPage(p);
      p = next;
    }
  }

  /**
   * Pages of this heap with slots freed by other threads that no list holds (pushed onto the list
   * of a heap that owned them before this one adopted them, or by a thread that died in between).
   */
  collectStrays(): void {
    for (let p = this.firstPage; p < this.arenaPages; p++) {
      if (this.remoteCounts[p] !== 0 && this.owners[p] === this.tag) this.collectPage(p);
    }
  }

  /** Every REMOTE slot of page `p`, which this heap owns, becomes free. */
  private collectPage(p: number): void {
    Atomics.exchange(this.remoteCounts, p, 0);
    const c = this.classOf(p);
    if (!isClass(c)) return;
    const step = classSize[c]! >>> Page.GRANULE_SHIFT;
    const g = p << Page.GRANULES_SHIFT;
    for (let i = 0, at = 0; i < classSlots[c]!; i++, at += step) {
      // releaseSlot may give the page to the pool (its marks become NOT_SLOT): the loop then finds none.
      if (this.marks[g + at] === Page.REMOTE) this.releaseSlot(g + at);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Pages of heaps that are gone.

  /**
   * Page `p`, of a heap whose thread ended or that closed: its free list is rebuilt from its marks
   * (its LIVE slots stay in use; REMOTE and free ones are free), and this heap owns it if any slot
   * is in use. Returns false when it has none (or is no class's): then its marks are NOT_SLOT and
   * it is the caller's to give back to the supply. Under the shared lock.
   */
  adopt(p: number): boolean {
    Atomics.store(this.remoteCounts, p, 0);
    const c = this.classOf(p);
    const g = p << Page.GRANULES_SHIFT;
    let head: number = Page.END;
    let used = 0;
    if (isClass(c)) {
      const step = classSize[c]! >>> Page.GRANULE_SHIFT;
      for (let i = classSlots[c]! - 1; i >= 0; i--) {
        const at = i * step;
        if (this.marks[g + at] === Page.LIVE + c) {
          used++;
        } else {
          this.marks[g + at] = head;
          head = at;
        }
      }
    }
    if (used === 0) {
      this.marks.fill(Page.NOT_SLOT, g, g + Page.GRANULES);
      this.classes[p] = 0;
      this.owners[p] = 0;
      return false;
    }
    this.ensureLinks(p);
    this.owners[p] = this.tag;
    this.pageInfo[p] = c | (head << Page.INFO_HEAD_SHIFT) | (used << Page.INFO_USED_SHIFT);
    this.pagesInUse++;
    this.slotsInPages += classSlots[c]!;
    this.next[p] = 0;
    this.prev[p] = 0;
    if (head !== Page.END) this.pushAvail(c, p);
    return true;
  }

  /** This heap is closing: its empty pages go back, and it owns pages still only if some slot is in use. */
  release(): boolean {
    this.collectRemote();
    this.trim();
    this.avail.fill(0);
    return this.pagesInUse > 0;
  }

  // -------------------------------------------------------------------------------------------
  // Introspection over the whole arena (every heap's pages) or this heap's.

  /** Every page some heap owns, in address order. */
  override *pages(): Generator<number> {
    for (let p = this.firstPage; p < this.arenaPages; p++) if (this.owners[p] !== 0) yield p;
  }

  /**
   * Slots in use in every heap's pages, and their bytes, counted from their marks (a page's count
   * of slots in use is its owner's alone): slots freed by other threads and not yet taken back are free.
   */
  override usage(): { bytes: number; slots: number } {
    let bytes = 0;
    let slots = 0;
    for (let p = this.firstPage; p < this.arenaPages; p++) {
      if (this.owners[p] === 0) continue;
      const c = this.classOf(p);
      if (!isClass(c)) continue;
      const step = classSize[c]! >>> Page.GRANULE_SHIFT;
      const g = p << Page.GRANULES_SHIFT;
      let n = 0;
      for (let i = 0, at = 0; i < classSlots[c]!; i++, at += step) if (this.marks[g + at] === Page.LIVE + c) n++;
      bytes += n * classSize[c]!;
      slots += n;
    }
    return { bytes, slots };
  }

  /** Pages some heap owns: those of a class and their slots, and the empty ones. */
  census(): { classPages: number; slots: number; emptyPages: number } {
    let classPages = 0;
    let slots = 0;
    let emptyPages = 0;
    for (let p = this.firstPage; p < this.arenaPages; p++) {
      if (this.owners[p] === 0) continue;
      const c = this.classOf(p);
      if (isClass(c)) {
        classPages++;
        slots += classSlots[c]!;
      } else {
        emptyPages++;
      }
    }
    return { classPages, slots, emptyPages };
  }

  /** Proves this heap's pages: its lists, each page's slots and marks, and its counts. */
  override fault(): string | undefined {
    const pages = this.arenaPages;
    const onList = new Uint8Array(pages);
    for (let c = 1; c <= Page.CLASSES; c++) {
      let steps = 0;
      for (let p = this.avail[c]!, before = 0; p !== 0; before = p, p = this.next[p]!) {
        if (p <= 0 || p >= pages || ++steps > pages) return `class ${c}'s page list leaves the arena`;
        if (this.owners[p] !== this.tag) return `page ${p} is on class ${c}'s list but is another heap's`;
        if (this.classOf(p) !== c) return `page ${p} is on class ${c}'s list but holds class ${this.classOf(p)}`;
        if (this.prev[p] !== before) return `page ${p}'s prev link disagrees with its list`;
        if (onList[p] !== 0) return `page ${p} is on a list twice`;
        onList[p] = 1;
      }
    }
    let inUse = 0;
    let empty = 0;
    for (let p = this.firstPage; p < pages; p++) {
      if (this.owners[p] !== this.tag) continue;
      const c = this.classOf(p);
      const g = p << Page.GRANULES_SHIFT;
      if (c === 0) {
        for (let i = 0; i < Page.GRANULES; i++) if (this.marks[g + i] !== Page.NOT_SLOT) return `page ${p} belongs to no class but marks a slot`;
        empty++;
        continue;
      }
      if (!isClass(c)) return `page ${p} holds class ${c}, which does not exist`;
      if ((this.pageInfo[p]! & Page.INFO_CLASS) !== c) return `page ${p} holds class ${this.pageInfo[p]! & Page.INFO_CLASS}, but class ${c} is published for it`;
      const fault = this.pageFault(p, c);
      if (fault !== undefined) return fault;
      if ((this.freeOf(p) > 0) !== (onList[p] === 1)) return `page ${p} ${this.freeOf(p) > 0 ? 'has room but is not' : 'is full but is'} on its class's list`;
      inUse++;
    }
    if (inUse !== this.pagesInUse) return `${inUse} pages in use, counted ${this.pagesInUse}`;
    if (empty !== this.pooled) return `${empty} empty pages, ${this.pooled} in the pool`;
    return undefined;
  }
}

/** `a`, grown to `n` entries. */
function grownTo(a: Int32Array, n: number): Int32Array {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}
