// Small-object pages (src/layout/pages.ts): the fast preset's home for requests of up to SMALL_MAX
// bytes. It owns the small arena (a reservation of its own, committed from its bottom as pages are
// needed) and every fact about its pages, all in typed arrays out of native code's reach:
//
//   pageInfo[p]    packed (see Page.INFO_*): the class whose slots page p holds (0 for a committed
//                  page no class owns, in the pool; Page.GIVEN_BACK for one given back to the
//                  kernel), how many of its slots are in use, and the first of its free slots
//   marks[g]       one byte for each 16-byte granule g of the arena (page g >>> 6): Page.LIVE + c
//                  at the first granule of a slot of class c in use (or Page.NOTED, for one with a
//                  name or an owner); at a free slot's, the next free slot of its page (its
//                  page-relative granule, or Page.END); Page.NOT_SLOT everywhere else. So each
//                  page's free slots form a list (last freed, first taken) kept in JavaScript, and
//                  free() proves an address and learns its size with one load: only a slot's first
//                  byte can have a live mark.
//   avail[c]       the first page of class c with a free slot; next[p]/prev[p] link the others
//   slotCache      each class's cache of freed slots (the fast preset's hot paths): its count at
//                  c << Page.CACHE_SHIFT, then their granules, the last freed last. A cached slot
//                  is marked Page.CACHED and its page counts it as in use, so a malloc+free pair
//                  of one class touches a count, an entry and a mark, and no page's packed word.
//
// The arena's memory, its growth and the pool of pages no class owns (ready for any class) are the
// base class's, PagePool (./page-pool.ts): a page comes from it in refill and goes back in toPool.
//
// Invariants, which check() proves: a page's free list starts at its head, visits only first
// granules of its class's slots, ends at END, and has as many entries as slots not in use; every
// other slot of the page is LIVE or CACHED, and every granule that starts no slot is NOT_SLOT;
// each CACHED slot is in its class's slot cache once, and the cache holds nothing else; a page is on
// its class's avail list exactly when it has a free slot, and only its head may have every slot
// free; a page no class owns has only NOT_SLOT marks; the pool holds exactly the pages of class 0
// below `fresh`. (The bytes in use are the heap's count to prove: FastCheck.check compares it with
// usage().)
//
// The hot paths that use these arrays are FastHeap.malloc and FastHeap.free, written out there so
// that V8 can inline them; what they cannot do (a class with no page that has room, a page that
// becomes empty or stops being full) is here.

import { CLASS_SIZE, CLASS_SLOTS, Page, isClass, isLiveMark } from '../layout/pages.js';
import { PagePool } from './page-pool.js';

// The tables through module-level consts: V8 folds these, where each use of an imported binding
// reads a module cell and checks it for the temporal dead zone.
const classSize = CLASS_SIZE;
const classSlots = CLASS_SLOTS;

export class SmallPages extends PagePool {
  /** The byte a freed slot is filled with (a scribbling heap's), or -1 for none. */
  readonly freedFill: number;

  constructor(freedFill = -1) {
    super();
    this.freedFill = freedFill;
  }
  /** An Int8Array: V8's map of Uint8Array turns unstable once koffi makes a view, and every load of such a field then checks its map. */
  marks: Int8Array = new Int8Array(0);
  next: Int32Array = new Int32Array(0);
  prev: Int32Array = new Int32Array(0);
  readonly avail = new Int32Array(Page.CLASSES + 1);
  /** Each class's cache of freed slots (see the opening comment); only the fast preset's malloc and free fill it. */
  readonly slotCache = new Int32Array((Page.CLASSES + 1) << Page.CACHE_SHIFT);
  /** Slots in all pages some class owns. (What is in use is counted by the walk in usage(), off the hot paths.) */
  slotsInPages = 0;
  /** Pages some class owns. */
  pagesInUse = 0;

  /**
   * Gives class `c` a page with a free slot and returns it (now the head of avail[c]), or 0 when
   * no page can be had within `room` more committed bytes.
   */
  refill(c: number, room: number): number {
    let page = this.takePage(room);
    if (page === 0) return 0;
    const slots = classSlots[c]!;
    const step = classSize[c]! >>> Page.GRANULE_SHIFT;
    // The free list in address order: slot i's mark names slot i + 1's granule.
    const g = page << Page.GRANULES_SHIFT;
    const marks = this.marks;
    for (let i = 0, at = 0; i < slots; i++, at += step) marks[g + at] = i + 1 < slots ? at + step : Page.END;
    this.pageInfo[page] = c; // the free list starts at granule 0, and no slot is in use
    this.changes?.push(this.base + (page << Page.SHIFT));
    this.pagesInUse++;
    this.slotsInPages += slots;
    this.pushAvail(c, page);
    return page;
  }

  /**
   * Takes the first free slot of class `c`'s first page (the class must have one) and returns its
   * granule: a small integer, which a call that V8 does not inline returns with no HeapNumber made
   * for it (the address is `base + (granule << Page.GRANULE_SHIFT)`).
   */
  takeSlot(c: number): number {
    const page = this.avail[c]!;
    const info = this.pageInfo[page]!;
    const g = (page << Page.GRANULES_SHIFT) | ((info >>> Page.INFO_HEAD_SHIFT) & Page.INFO_HEAD);
    const marks = this.marks;
    const next = marks[g]!;
    this.pageInfo[page] = c | (next << Page.INFO_HEAD_SHIFT) | (((info >>> Page.INFO_USED_SHIFT) + 1) << Page.INFO_USED_SHIFT);
    marks[g] = Page.LIVE + c;
    if (next === Page.END) this.unlinkAvail(c, page);
    return g;
  }

  /**
   * The granule of the slot whose first byte is at offset `o` of the arena, in use or free; -1 when
   * `o` is no slot's first byte.
   */
  locate(o: number): number {
    if ((o >>> 0) !== o || o >= this.top || (o & ((1 << Page.GRANULE_SHIFT) - 1)) !== 0) return -1;
    const g = o >>> Page.GRANULE_SHIFT;
    return this.marks[g] === Page.NOT_SLOT ? -1 : g;
  }

  /**
   * The granule of the slot whose bytes hold offset `o` of the arena (any of them, in use or free);
   * -1 when no slot's do (a page no class owns, or a page's tail past its last slot).
   */
  slotAt(o: number): number {
    if ((o >>> 0) !== o || o >= this.top) return -1;
    const page = o >>> Page.SHIFT;
    const c = this.classOf(page);
    if (!isClass(c)) return -1;
    const size = classSize[c]!;
    const first = page << Page.SHIFT;
    const start = first + Math.floor((o - first) / size) * size;
    if (start + size > first + (1 << Page.SHIFT)) return -1;
    const g = start >>> Page.GRANULE_SHIFT;
    return this.marks[g] === Page.NOT_SLOT ? -1 : g;
  }

  /** Whether the slot at granule `g` (from locate) is in use. */
  isLive(g: number): boolean {
    return isLiveMark(this.marks[g]!);
  }

  /** Frees the slot at granule `g`, which is in use. */
  releaseSlot(g: number): void {
    const page = g >>> Page.GRANULES_SHIFT;
    const info = this.pageInfo[page]!;
    const c = info & Page.INFO_CLASS;
    if (this.freedFill >= 0) this.bytes.fill(this.freedFill, g << Page.GRANULE_SHIFT, (g << Page.GRANULE_SHIFT) + classSize[c]!);
    const head = (info >>> Page.INFO_HEAD_SHIFT) & Page.INFO_HEAD;
    const used = (info >>> Page.INFO_USED_SHIFT) - 1;
    this.marks[g] = head;
    this.pageInfo[page] = c | ((g & (Page.GRANULES - 1)) << Page.INFO_HEAD_SHIFT) | (used << Page.INFO_USED_SHIFT);
    if (head === Page.END || (used === 0 && this.avail[c] !== page)) this.changed(page, used);
  }

  /**
   * Page `page` was full and has just gained a free slot (`used` slots are in use), or has every
   * slot free (used = 0) and does not head its class's list. (Every class has at least two slots
   * a page, so a page that was full has some in use still.) A page whose slots are all free leaves
   * its class for the pool, except the head of the class's list, which the class's next malloc
   * takes from (so a malloc/free pair moves no page); it leaves when another page takes its place.
   * A class holds at most one page with every slot free.
   */
  changed(page: number, used: number): void {
    const c = this.pageInfo[page]! & Page.INFO_CLASS;
    if (used !== 0) {
      const head = this.avail[c]!;
      if (head !== 0 && this.usedOf(head) === 0) this.toPool(head);
      this.pushAvail(c, page);
    } else {
      this.toPool(page);
    }
  }

  /** Bytes in slots handed out and not freed, and how many slots that is: a walk of the pages. */
  usage(): { bytes: number; slots: number } {
    let bytes = 0;
    let slots = 0;
    for (let p = this.firstPage; p < this.fresh >>> Page.SHIFT; p++) {
      const c = this.classOf(p);
      const n = this.usedOf(p);
      if (!isClass(c) || n === 0) continue;
      bytes += n * classSize[c]!;
      slots += n;
    }
    // Cached slots count as in use on their pages, and are free.
    for (let c = 1; c <= Page.CLASSES; c++) {
      const n = this.slotCache[c << Page.CACHE_SHIFT]!;
      bytes -= n * classSize[c]!;
      slots -= n;
    }
    return { bytes, slots };
  }

  /** Takes the slot class `c`'s cache freed last (the cache must hold one) and returns its granule, as takeSlot. */
  takeCached(c: number): number {
    const n = this.slotCache[c << Page.CACHE_SHIFT]!;
    const g = this.slotCache[(c << Page.CACHE_SHIFT) | n]!;
    this.slotCache[c << Page.CACHE_SHIFT] = n - 1;
    this.marks[g] = Page.LIVE + c;
    return g;
  }

  /**
   * Frees the slot in use at granule `g`, of class `c`, with nothing to scribble: onto its class's
   * slot cache, or to its page when the cache is full. (FastEngine.free writes the same out.)
   */
  cacheSlot(g: number, c: number): void {
    const at = c << Page.CACHE_SHIFT;
    const n = this.slotCache[at]! + 1;
    if (n <= Page.CACHE_SLOTS) {
      this.slotCache[at] = n;
      this.slotCache[at | n] = g;
      this.marks[g] = Page.CACHED;
    } else {
      this.releaseSlot(g);
    }
  }

  /** Gives every slot the caches hold back to its page (heap.trim()), which may free whole pages. */
  flushSlotCaches(): void {
    for (let c = 1; c <= Page.CLASSES; c++) {
      const at = c << Page.CACHE_SHIFT;
      for (let n = this.slotCache[at]!; n > 0; n--) {
        this.slotCache[at] = n - 1;
        this.releaseSlot(this.slotCache[at + n]!);
      }
    }
  }

  /** Page `page` of class `c` had no free slot and now has one: it goes back on its class's list. */
  pushAvail(c: number, page: number): void {
    const head = this.avail[c]!;
    this.next[page] = head;
    this.prev[page] = 0;
    if (head !== 0) this.prev[head] = page;
    this.avail[c] = page;
  }

  /** Page `page` of class `c` has no free slot left, or is leaving the class: off its list. */
  unlinkAvail(c: number, page: number): void {
    const n = this.next[page]!;
    const p = this.prev[page]!;
    if (p === 0) this.avail[c] = n;
    else this.next[p] = n;
    if (n !== 0) this.prev[n] = p;
    this.next[page] = 0;
    this.prev[page] = 0;
  }



  /** Page `page`, whose slots are all free, leaves its class for the pool. */
  protected toPool(page: number): void {
    const c = this.pageInfo[page]! & Page.INFO_CLASS;
    this.unlinkAvail(c, page);
    this.pageInfo[page] = 0;
    this.changes?.push(this.base + (page << Page.SHIFT));
    this.slotsInPages -= classSlots[c]!;
    this.marks.fill(Page.NOT_SLOT, page << Page.GRANULES_SHIFT, (page + 1) << Page.GRANULES_SHIFT);
    this.pagesInUse--;
    this.pool[this.pooled++] = page;
  }





  /** Gives back every page whose slots are all free, its class's last one too, and the pool (heap.trim()). */
  trim(): void {
    this.flushSlotCaches();
    for (let c = 1; c <= Page.CLASSES; c++) {
      for (let page = this.avail[c]!; page !== 0;) {
        const next = this.next[page]!;
        if (this.usedOf(page) === 0) this.toPool(page);
        page = next;
      }
    }
    this.givePoolBack();
  }

  /** Grows every per-page array to hold `pages` pages, doubling. */
  protected override ensureCapacity(pages: number): void {
    if (pages <= this.pageInfo.length) return;
    const n = Math.max(pages, 2 * this.pageInfo.length, 256);
    const grow = <T extends Int8Array | Int32Array>(old: T, make: (k: number) => T, k = n): T => {
      const made = make(k);
      made.set(old);
      return made;
    };
    this.pageInfo = grow(this.pageInfo, (k) => new Int32Array(k));
    this.next = grow(this.next, (k) => new Int32Array(k));
    this.prev = grow(this.prev, (k) => new Int32Array(k));
    this.pool = grow(this.pool, (k) => new Int32Array(k));
    this.spare = grow(this.spare, (k) => new Int32Array(k));
    const marks = grow(this.marks, (k) => new Int8Array(k), n << Page.GRANULES_SHIFT);
    marks.fill(Page.NOT_SLOT, this.marks.length);
    this.marks = marks;
  }

  /** The class of page `page` (0 for none, Page.GIVEN_BACK for a page given back). */
  classOf(page: number): number {
    return this.pageInfo[page]! & Page.INFO_CLASS;
  }

  /** How many of page `page`'s slots are free. */
  freeOf(page: number): number {
    return classSlots[this.classOf(page)]! - this.usedOf(page);
  }

  /** How many of page `page`'s slots are in use. */
  usedOf(page: number): number {
    return this.pageInfo[page]! >>> Page.INFO_USED_SHIFT;
  }

  /** The slot size of page `page`'s class (0 for a page no class owns). */
  slotSize(page: number): number {
    return classSize[this.classOf(page)]!;
  }


  /** Every page ever handed out, in address order, for snapshots (fresh pages never were). */
  *pages(): Generator<number> {
    for (let p = this.firstPage; p < this.fresh >>> Page.SHIFT; p++) yield p;
  }

  /** Proves the invariants in this file's opening comment; returns a fault, or undefined. */
  fault(): string | undefined {
    const pages = this.top >>> Page.SHIFT;
    let inUse = 0;
    const onList = new Uint8Array(pages);
    for (let c = 1; c <= Page.CLASSES; c++) {
      let steps = 0;
      for (let p = this.avail[c]!, before = 0; p !== 0; before = p, p = this.next[p]!) {
        if (p <= 0 || p >= pages || ++steps > pages) return `class ${c}'s page list leaves the arena`;
        if (this.classOf(p) !== c) return `page ${p} is on class ${c}'s list but holds class ${this.classOf(p)}`;
        if (this.prev[p] !== before) return `page ${p}'s prev link disagrees with its list`;
        if (onList[p] !== 0) return `page ${p} is on a list twice`;
        if (before !== 0 && this.usedOf(p) === 0) return `page ${p} has every slot free but does not head class ${c}'s list`;
        onList[p] = 1;
      }
    }
    for (let p = this.firstPage; p < pages; p++) {
      const c = this.classOf(p);
      const g = p << Page.GRANULES_SHIFT;
      if (c === 0 || c === Page.GIVEN_BACK) {
        for (let i = 0; i < Page.GRANULES; i++) if (this.marks[g + i] !== Page.NOT_SLOT) return `page ${p} belongs to no class but marks a slot`;
        if (onList[p] !== 0) return `page ${p} belongs to no class but is on a list`;
        continue;
      }
      if (!isClass(c)) return `page ${p} holds class ${c}, which does not exist`;
      const fault = this.pageFault(p, c);
      if (fault !== undefined) return fault;
      const free = this.freeOf(p);
      if ((free > 0) !== (onList[p] === 1)) return `page ${p} ${free > 0 ? 'has room but is not' : 'is full but is'} on its class's list`;
      inUse++;
    }
    if (inUse !== this.pagesInUse) return `${inUse} pages in use, counted ${this.pagesInUse}`;
    const cacheFault = this.slotCacheFault(pages);
    if (cacheFault !== undefined) return cacheFault;
    let pooled = 0;
    let givenBack = 0;
    for (let p = this.firstPage; p < this.fresh >>> Page.SHIFT; p++) {
      if (this.pageInfo[p] === 0) pooled++;
      if (this.pageInfo[p] === Page.GIVEN_BACK) givenBack++;
    }
    if (pooled !== this.pooled) return `${pooled} pages no class owns, ${this.pooled} in the pool`;
    if (givenBack !== this.spares * this.unitPages) return `${givenBack} pages given back, ${this.spares} spare units`;
    const held = this.fresh === 0 ? 0 : (this.fresh >>> Page.SHIFT) - this.firstPage - givenBack;
    if (held << Page.SHIFT !== this.committed) return `${held} pages held, counted ${this.committed >>> Page.SHIFT}`;
    return undefined;
  }

  /** Proves page `p` of class `c`: its free list, its live marks and the marks between its slots. */
  protected pageFault(p: number, c: number): string | undefined {
    const g = p << Page.GRANULES_SHIFT;
    const step = classSize[c]! >>> Page.GRANULE_SHIFT;
    const slots = classSlots[c]!;
    const onFree = new Uint8Array(Page.GRANULES);
    let free = 0;
    for (let at = (this.pageInfo[p]! >>> Page.INFO_HEAD_SHIFT) & Page.INFO_HEAD; at !== Page.END; at = this.marks[g + at]!) {
      if (at < 0 || at > Page.END || at % step !== 0 || at / step >= slots) return `page ${p}'s free list leads to granule ${at}, which starts none of its slots`;
      if (onFree[at] !== 0) return `page ${p}'s free list visits granule ${at} twice`;
      onFree[at] = 1;
      free++;
    }
    if (free !== this.freeOf(p)) return `page ${p} counts ${this.freeOf(p)} free slots, its free list ${free}`;
    for (let i = 0; i < Page.GRANULES; i++) {
      const start = i % step === 0 && i / step < slots;
      const mark = this.marks[g + i]!;
      if (!start && mark !== Page.NOT_SLOT) return `page ${p} marks granule ${i}, which starts no slot`;
      // REMOTE: freed by another thread than the page's owner, not yet taken back (the shared preset).
      if (start && onFree[i] === 0 && mark !== Page.LIVE + c && mark !== Page.NOTED && mark !== Page.REMOTE && mark !== Page.CACHED) {
        return `page ${p}'s slot at granule ${i} is neither free nor in use by its class`;
      }
    }
    return undefined;
  }

  /** Proves the slot caches: each entry a CACHED slot of its class's pages, once; every CACHED slot in one. */
  private slotCacheFault(pages: number): string | undefined {
    const seen = new Set<number>();
    for (let c = 0; c <= Page.CLASSES; c++) {
      const at = c << Page.CACHE_SHIFT;
      const n = this.slotCache[at]!;
      if (n < 0 || n > Page.CACHE_SLOTS || (n !== 0 && !isClass(c))) return `class ${c}'s slot cache counts ${n} slots`;
      for (let i = 1; i <= n; i++) {
        const g = this.slotCache[at + i]!;
        const p = g >>> Page.GRANULES_SHIFT;
        if (g <= 0 || p >= pages || this.marks[g] !== Page.CACHED || this.classOf(p) !== c) return `class ${c}'s slot cache holds granule ${g}, which is no cached slot of the class`;
        if (seen.has(g)) return `class ${c}'s slot cache holds granule ${g} twice`;
        seen.add(g);
      }
    }
    let marked = 0;
    for (let g = this.firstPage << Page.GRANULES_SHIFT; g < pages << Page.GRANULES_SHIFT; g++) if (this.marks[g] === Page.CACHED) marked++;
    if (marked !== seen.size) return `${marked} slots are marked cached, the slot caches hold ${seen.size}`;
    return undefined;
  }

  /** Gives the arena back. */
  override destroy(): void {
    super.destroy();
    this.slotsInPages = 0;
    this.pagesInUse = 0;
    this.avail.fill(0);
    this.slotCache.fill(0);
    this.marks = new Int8Array(0);
  }
}
