// The small arena's memory, under the pages of src/heap/pages.ts: a reservation of address space
// of its own, committed from its bottom in growth steps; the pool of committed pages no class owns;
// and the units given back to the kernel (spares), still reserved. Everything here is JavaScript
// state: pageInfo is the one per-page array it shares with SmallPages, which writes the rest of
// it (0 here is "no class": in the pool or fresh; Page.GIVEN_BACK, a page whose unit went back).
//
// The kernel backs memory in its own pages (4 KiB), each UNIT pages of ours: the arena is committed,
// counted as held and given back in whole units, so what `committed` says is what the process holds.
// A unit taken for one page puts its other pages in the pool; only a unit whose pages are all
// pooled is given back. The first unit is never committed, so page number 0 means "none".
//
// Invariants (SmallPages.fault proves them): the pool holds exactly the pages of class 0 below
// `fresh`, each once; the spares are the first pages of the units given back; `committed` is the
// bytes of the pages below `fresh` that were not given back.

import { alignPage, commit, discard, getPageSize, releaseReservation, reserveAddressSpace, type Reservation } from '../os/memory.js';
import { Page } from '../layout/pages.js';

/** Address space for the small arena, and the least worth having. */
const ARENA_BYTES = 2 ** 30;
const ARENA_MIN_BYTES = 2 ** 20;
/**
 * Commit steps: half of what is committed, at least GROWTH_MIN, at most GROWTH_MAX bytes. Pages
 * committed and never handed out cost the process nothing (the kernel backs a page when it is first
 * touched), and are not counted as held; so the steps can be long, and the mmap calls few.
 */
const GROWTH_DIVISOR = 2;
const GROWTH_MIN = 256 * 1024;
const GROWTH_MAX = 64 * 1024 * 1024;
/**
 * The pool gives back only pages that sat in it for two whole epochs, an epoch being the time it
 * takes classes to take POOL_EPOCH pages. The pool is a stack, so the pages below the lowest it
 * came down to in both epochs are exactly those no class took all that time; past the first
 * POOL_RESERVE of them, their whole units go back to the kernel when an epoch ends. A page given
 * back costs a page fault (and the kernel's zeroing) when it is used again, so the pages that a
 * program takes again in every phase stay (any phase of up to two epochs' pages falls whole in
 * the window), and pages idle while it took that many others go. An epoch counts pages taken, not
 * pages put back: a program freeing a phase's blocks takes none, and its pages are not idle yet.
 */
const POOL_EPOCH = 4096;
const POOL_RESERVE = 256;

const EMPTY_BYTES = new Uint8Array(0);
const EMPTY_WORDS = new Int32Array(0);

/** The small arena's memory and its pool of pages; SmallPages (./pages.ts) keeps the slots in them. */
export abstract class PagePool {
  reservation: Reservation | null = null;
  /** The arena's address; 0 until reserved. */
  base = 0;
  /** Bytes from the arena's start that are committed pages or page 0; pages past it were never committed. */
  top = 0;
  /** Pages from here to `top` are committed and were never handed out (the kernel has not backed them). */
  fresh = 0;
  /**
   * Null, or (for the viewer: FastHeap.viewRegionLog) the address of every page that took a class,
   * went to the pool or was given back, as it happened: the changes outside the slot paths.
   */
  changes: number[] | null = null;
  /** Our pages in one of the kernel's: a unit. */
  readonly unitPages = Math.max(1, getPageSize() >>> Page.SHIFT);
  /** The first page past the arena's first unit, which is never committed. */
  readonly firstPage = this.unitPages;
  bytes: Uint8Array = EMPTY_BYTES;
  /** The arena as 32-bit words, for copies between slots (their offsets are multiples of 16). */
  words: Int32Array = EMPTY_WORDS;
  /** Per page, packed (Page.INFO_*, written by SmallPages): its class, slots in use and first free slot; 0 for no class, Page.GIVEN_BACK for a page given back. */
  pageInfo: Int32Array = new Int32Array(0);
  /** Pages no class owns, as stacks: the pool's memory is held; the spares' (first pages of units) was given back (discard). */
  protected pool: Int32Array = new Int32Array(0);
  protected pooled = 0;
  /** The fewest pages the pool held this epoch and the one before, and the pages classes took this epoch. */
  private poolLow = 0;
  private poolLowBefore = 0;
  private poolEpoch = 0;
  protected spare: Int32Array = new Int32Array(0);
  protected spares = 0;
  /** Bytes of pages handed out at least once and not given back: what the pages cost the process. */
  committed = 0;
  mmapCalls = 0;
  munmapCalls = 0;

  /** Whether the arena could not be reserved (then small requests go to the medium lists). */
  unavailable = false;

  /** Grows every per-page array to hold `pages` pages. */
  protected abstract ensureCapacity(pages: number): void;

  /** One more page taken this epoch; at its end, what stayed below both epochs' low marks, past the reserve, goes back. */
  private tick(): void {
    if (++this.poolEpoch < POOL_EPOCH) return;
    const idle = Math.min(this.poolLow, this.poolLowBefore);
    // The pages given back all lay below this epoch's mark: the ones above it move down as many places.
    const given = idle > POOL_RESERVE ? this.givePool(idle - POOL_RESERVE, idle) : 0;
    this.poolLowBefore = this.poolLow - given;
    this.poolLow = this.pooled;
    this.poolEpoch = 0;
  }

  /** Gives back every pooled page it can (heap.trim(), or growth past the heap's peak), and starts the watch for idle pages anew. */
  givePoolBack(): void {
    this.givePool(this.pooled, this.pooled);
    this.poolLow = this.poolLowBefore = 0;
  }

  /** Committed pages no class owns. */
  get pooledPages(): number {
    return this.pooled;
  }

  /**
   * A page no class owns, ready for use: from the pool, or a spare, or a fresh one (of a new growth
   * step if need be). `room` bounds what more the process may come to hold.
   */
  protected takePage(room: number): number {
    this.tick();
    if (this.pooled > 0) {
      if (--this.pooled < this.poolLow) this.poolLow = this.pooled;
      return this.pool[this.pooled]!;
    }
    const unitBytes = this.unitPages << Page.SHIFT;
    if (room < unitBytes) return 0;
    let page: number;
    if (this.spares > 0) {
      // A unit given back is still mapped: the kernel backs it again when it is touched.
      page = this.spare[--this.spares]!;
    } else {
      if (this.fresh === this.top && !this.grow()) return 0;
      page = this.fresh >>> Page.SHIFT;
      this.fresh += unitBytes;
    }
    // The unit's other pages wait in the pool, the lowest on top.
    for (let k = this.unitPages - 1; k >= 1; k--) {
      this.pageInfo[page + k] = 0;
      this.pool[this.pooled++] = page + k;
      this.changes?.push(this.base + ((page + k) << Page.SHIFT));
    }
    this.pageInfo[page] = 0;
    this.committed += unitBytes;
    return page;
  }

  /** Commits a growth step at the top: fresh pages. False when none can be had. */
  private grow(): boolean {
    if (this.unavailable) return false;
    if (this.reservation === null) {
      this.mmapCalls++;
      const arena = reserveAddressSpace(ARENA_BYTES, ARENA_MIN_BYTES);
      if (arena === null) {
        this.unavailable = true;
        return false;
      }
      this.reservation = arena;
      this.base = arena.address;
      this.bytes = new Uint8Array(arena.buffer);
      this.words = new Int32Array(arena.buffer);
      this.top = this.firstPage << Page.SHIFT; // the first unit stays reserved and never committed
      this.fresh = this.top;
    }
    const arena = this.reservation;
    let step = alignPage(Math.min(GROWTH_MAX, Math.max(GROWTH_MIN, this.top / GROWTH_DIVISOR)));
    if (this.top + step > arena.size) step = arena.size - this.top;
    if (step < Page.BYTES) return false;
    this.mmapCalls++;
    // A step the kernel refuses whole may still be had a page at a time.
    if (!commit(arena, this.top, step)) {
      step = Page.BYTES;
      if (!commit(arena, this.top, step)) return false;
    }
    this.top += step;
    this.ensureCapacity(this.top >>> Page.SHIFT);
    return true;
  }

  /**
   * Gives back to the kernel the memory of up to `count` pooled pages, in units whose pages are all
   * among the pool's first `among` (the highest first, one call a run of neighbouring units); their
   * pages become spares, mapped still. Returns how many pages it gave back.
   */
  private givePool(count: number, among: number): number {
    if (count <= 0) return 0;
    const unit = this.unitPages;
    // A typed array's sort is numeric, and native: the pool may hold thousands of pages.
    const pages = this.pool.slice(0, among).sort();
    // Units wholly pooled: their first pages, from the highest down.
    const whole: number[] = [];
    for (let i = pages.length - unit; i >= 0; i--) {
      const first = pages[i]!;
      if (first % unit === 0 && pages[i + unit - 1] === first + unit - 1) whole.push(first);
    }
    const give = whole.slice(0, Math.ceil(count / unit)).sort((a, b) => a - b);
    if (give.length === 0) return 0;
    for (let i = 0; i < give.length;) {
      let j = i + 1;
      while (j < give.length && give[j] === give[j - 1]! + unit) j++;
      discard(this.reservation!, give[i]! << Page.SHIFT, ((j - i) * unit) << Page.SHIFT);
      this.munmapCalls++;
      for (let k = i; k < j; k++) {
        this.spare[this.spares++] = give[k]!;
        for (let p = give[k]!; p < give[k]! + unit; p++) {
          this.pageInfo[p] = Page.GIVEN_BACK;
          this.changes?.push(this.base + (p << Page.SHIFT));
        }
      }
      i = j;
    }
    this.committed -= (give.length * unit) << Page.SHIFT;
    // The pages kept stay in the order they had, so the pool's top is still the pages used last.
    // (A pooled page's class is 0; a page given back is GIVEN_BACK now.)
    let kept = 0;
    for (let i = 0; i < this.pooled; i++) {
      const p = this.pool[i]!;
      if (this.pageInfo[p] !== Page.GIVEN_BACK) this.pool[kept++] = p;
    }
    this.pooled = kept;
    return give.length * unit;
  }

  /** Gives the arena back, and forgets every page. */
  destroy(): void {
    if (this.reservation !== null) {
      releaseReservation(this.reservation);
      this.munmapCalls++;
    }
    this.reservation = null;
    this.bytes = EMPTY_BYTES;
    this.words = EMPTY_WORDS;
    this.top = 0;
    this.fresh = 0;
    this.committed = 0;
    this.pooled = 0;
    this.poolLow = 0;
    this.poolLowBefore = 0;
    this.poolEpoch = 0;
    this.spares = 0;
    this.pageInfo = new Int32Array(0);
  }
}
