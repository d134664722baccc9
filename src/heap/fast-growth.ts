// Growth and trimming of the fast preset's medium arena: the only paths of the arena that call the
// kernel. Growth commits a sixth of what is committed already (geometric, so a million small
// allocations cost about one mmap call a MiB), but the blocks reach only as far as requests need:
// the rest stays committed ahead of the top (committedTop), never written, so the page the
// sentinel is written on lies next to the blocks in use and the kernel holds nothing of a step
// not yet used. A large free block at the top is given back (decommitted, with what is committed
// past it) only when it exceeds twice the growth step, so a malloc/free loop at the boundary
// does not thrash; and growing back what a trim gave back raises that threshold to twice as much
// (up to TRIM_ADAPTED_MAX), so a heap that fills and empties in cycles stops faulting its top back
// in. Before the heap grows, the caches are flushed into the free lists, where their blocks may
// merge into one large enough, and a block of the request's own class that fits is looked for
// (the lists' search looks only at classes whose every block fits); and before it grows past the
// most it has held, the whole pages inside its free blocks are given back (purge), marked in
// `purged` until a block is made over them, and so are the small-object pages no class owns.
//
// It also keeps the caches' other side: flushing them into the lists, the wide cache's takes, and
// the choice of block when the free top would take the footprint past its peak (belowPeak).

import { alignPage, commit, decommit, discard, getPageSize, reserveAddressSpace } from '../os/memory.js';
import { Block, Flag, Word } from '../layout/fast.js';
import { destroyedError } from './errors.js';
import { classOf } from '../strategies/tlsf.js';
import {
  ARENA_BYTES, ARENA_MIN_BYTES, CACHE_MAX_BLOCK, CACHE_WIDE_KEEP, CACHE_WIDE_MAX, CACHE_WIDE_SLOTS, FastArena, TRIM_ADAPTED_MAX, TRIM_MIN,
} from './fast-arena.js';

/** Growth step: committed / GROWTH_DIVISOR, clamped to [GROWTH_MIN, GROWTH_MAX], whole pages. */
const GROWTH_DIVISOR = 6;
const GROWTH_MIN = 4096;
const GROWTH_MAX = 64 * 1024 * 1024;
/** Blocks of a request's own class looked at before the heap grows for it. */
const OWN_FIT_WALK = 16;

/** The fast preset's arena, growing and shrinking; ./fast-large.ts builds on it. */
export abstract class FastGrowth extends FastArena {
  /** The growth step for the heap's current size. */
  protected growthStep(): number {
    const step = alignPage(this.committedTop / GROWTH_DIVISOR);
    return step < GROWTH_MIN ? GROWTH_MIN : step > GROWTH_MAX ? GROWTH_MAX : step;
  }

  protected updateTrimThreshold(): void {
    this.trimThreshold = Math.max(TRIM_MIN, 2 * this.growthStep(), 2 * this.largeThreshold, this.trimFloor);
  }

  /**
   * Finds room for a block of `need` bytes when the free lists have none: first by flushing the
   * caches (their blocks may merge into one large enough), then by growing the heap. Returns the
   * block, off its list, or 0.
   */
  protected growFor(need: number): number {
    if (this.cachedBlocks() > 0) {
      this.flushCaches();
      const found = this.lists.takeFit(need);
      if (found !== 0) return found > 0 ? found : this.corruptedList();
    }
    // A block of need's own class that fits, though the class's first does not.
    const close = this.lists.takeOwnFit(need, OWN_FIT_WALK);
    if (close !== 0) return close > 0 ? close : this.corruptedList();
    const h = this.growTop(need);
    if (h === 0) return 0;
    if (!this.lists.remove(h, this.mem[(h >>> 2) + Word.SIZE]! & Flag.SIZE_MASK)) this.corruptedList();
    return h;
  }

  /**
   * Extends the blocks at the top so that the last block is free and at least `need` bytes,
   * committing more memory first when what is committed ahead does not reach. Returns that
   * block's offset (on its free list), or 0 when no memory can be had.
   */
  protected growTop(need: number): number {
    if (this.destroyed) throw destroyedError();
    if (this.reservation === null && !this.reserveArena()) return 0;
    const mem = this.mem;
    // A free last block already counts towards the need.
    const last = this.top > 0 ? this.freeBefore(this.top - Block.HEADER) : 0;
    const have = last === 0 ? 0 : this.top - Block.HEADER - last;
    // It serves already (a request whose class held it too far down its list for takeOwnFit).
    if (last !== 0 && have >= need) return last;
    const overhead = this.top === 0 ? 2 * Block.HEADER : 0;
    const least = alignPage(need - have + overhead);
    // Only growth that would take the heap past the most it has held gives free pages back: below
    // that mark the memory was held before, and a program whose heap comes and goes in phases
    // would fault its holes back in every phase.
    if (this.mapped() + need > this.peakMapped) {
      this.purgeFreeBlocks();
      this.small.flushSlotCaches();
      this.small.givePoolBack();
    }
    if (this.top + least > this.committedTop && !this.commitAhead(this.top + least - this.committedTop)) return 0;

    const oldTop = this.top;
    // The old sentinel's page was written; what lies below it counts as touched (an upper bound).
    if (oldTop > this.touchedTop) this.touchedTop = oldTop;
    this.top = this.grownTop(oldTop + least);
    this.lists.limit = this.top;
    this.ensureStartsCapacity();
    if (this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
    // The new space becomes one block: at the old sentinel's place, or after the 8-byte pad. It
    // is written free before release merges and files it, as realloc's shrink writes its tail.
    const h = oldTop === 0 ? Block.HEADER : oldTop - Block.HEADER;
    const size = this.top - Block.HEADER - h;
    if (oldTop === 0) mem[(h >>> 2) + Word.PREV_SIZE] = 0;
    this.makeBlock(h, size, size | Flag.FREE);
    mem[((this.top - Block.HEADER) >>> 2) + Word.SIZE] = 0; // the sentinel: size 0, used
    this.updateTrimThreshold();
    this.release(h, size, false);
    const lastSize = mem[(this.top - Block.HEADER) >>> 2]!;
    return this.top - Block.HEADER - lastSize;
  }

  /**
   * The top after growth that needs the blocks to reach `least` (at most committedTop): just that,
   * so the sentinel's page, which the kernel then holds, lies next to the blocks in use rather
   * than a growth step beyond them. The shared preset takes all that is committed (./shared.ts).
   */
  protected grownTop(least: number): number {
    return least;
  }

  /**
   * Commits at least `least` bytes past committedTop, a growth step when it can (one mmap call
   * for many growths); false when no memory can be had.
   */
  private commitAhead(least: number): boolean {
    const arena = this.reservation!;
    // The growth step, or just what the request needs when the step would pass a limit.
    let step = Math.max(least, this.growthStep());
    if (this.committedTop + step > arena.size || this.committed() + step > this.limit) step = least;
    if (this.committedTop + step > arena.size || this.committed() + step > this.limit) return false;
    this.mmapCalls++;
    if (!commit(arena, this.committedTop, step)) return false;
    // Growing back what a trim gave back: the next such trim waits for twice as much free at the top.
    if (this.lastTrim !== 0) {
      this.trimFloor = Math.min(TRIM_ADAPTED_MAX, Math.max(this.trimFloor, 2 * this.lastTrim));
      this.lastTrim = 0;
    }
    this.committedTop += step;
    return true;
  }

  /**
   * Gives back to the kernel the whole pages inside free block `h` of `size` bytes (past its
   * header and links, its first Block.MIN bytes, and before its end) not given back already, and
   * marks them in `purged`: the range stays mapped read-write and reads as zeros when next written.
   */
  protected purge(h: number, size: number, least = this.purgeMin): void {
    const shift = this.pageShift;
    const first = (h + Block.MIN + this.pageBytes - 1) >>> shift;
    const end = (h + size) >>> shift;
    if (end <= first || (end - first) << shift < least) return;
    const purged = this.purged;
    for (let p = first; p < end;) {
      if (purged[p] !== 0) {
        p++;
        continue;
      }
      let q = p;
      while (q < end && purged[q] === 0) purged[q++] = 1;
      discard(this.reservation!, p << shift, (q - p) << shift);
      this.munmapCalls++;
      this.purgedBytes += (q - p) << shift;
      p = q;
    }
  }

  /**
   * Before the arena grows past the most the heap has held: every free block on the lists (the
   * last one aside, which trimTop looks after) whose whole pages span at least `least` bytes
   * (purgeMin; trim() asks for every whole page) gives them back. Such growth is rare
   * (geometric), so the system calls are too, and holes the heap could not fill stop being held
   * just when it would hold more than ever. Every link is proved before it is followed; the walk
   * is bounded by the count.
   */
  protected purgeFreeBlocks(least = this.purgeMin): void {
    const lists = this.lists;
    const last = this.top - Block.HEADER;
    let steps = 0;
    for (let i = classOf(least); i < lists.heads.length; i++) {
      // Each block is proved a free block of the class, linked back to the one before, before any
      // of its words is believed.
      for (let b = lists.heads[i]!, prev = 0; b !== 0;) {
        if (++steps > lists.count || !lists.isFreeIn(b, i) || this.mem[(b >>> 2) + Word.PREV_FREE] !== prev) this.corruptedList(b);
        const size = this.mem[(b >>> 2) + Word.SIZE]! & Flag.SIZE_MASK;
        if (b + size !== last) this.purge(b, size, least);
        prev = b;
        b = this.mem[(b >>> 2) + Word.NEXT_FREE]!;
      }
    }
  }

  /**
   * Gives back the medium arena's idle memory: its cached blocks merge into the free lists, then
   * the whole pages inside its free blocks go back (as before growth past the peak), its free top
   * block's included, whatever their span. Called when the small arena would take the heap past
   * the most it has held.
   */
  protected releaseIdleArena(): void {
    if (this.top === 0) return;
    this.flushCaches();
    this.purgeFreeBlocks();
    // The free top block's pages below the touched top (none past it is held) are given back but
    // stay committed, not trimmed: a heap whose small pages and medium blocks take turns at the
    // peak then faults them in again each turn, where after a trim the arena would also commit
    // its top again, step by step, each turn.
    const last = this.freeBefore(this.top - Block.HEADER);
    if (last !== 0 && this.touchedTop > last) this.purge(last, Math.min(this.top - Block.HEADER, this.touchedTop) - last, 0);
  }

  /**
   * Whether freeing block `h` of `size` bytes to the lists would trim the top: it lies at the top
   * of the blocks, or before a free block there, and the free memory at the top, merged with it
   * and with the free blocks and the wide cache's blocks just below it (flushed first), would then
   * pass the trim threshold. Such a block is not held in the wide cache: the memory goes back.
   */
  protected wouldTrim(h: number, size: number): boolean {
    const n = h + size;
    const end = this.top - Block.HEADER;
    const after = n === end ? 0 : this.freeSizeAt(n);
    if (n !== end && (after === 0 || n + after !== end)) return false;
    // Below it, free blocks and held ones alternate (no two free blocks are neighbours): at most
    // one free block beside each held one, and one more.
    let total = size + after;
    let b = h;
    for (let steps = 2 * this.wideCount + 1; steps > 0; steps--) {
      let p = this.freeBefore(b);
      if (p === 0) p = this.heldBefore(b);
      if (p === 0) break;
      total += b - p;
      b = p;
    }
    return this.trimsAt(total);
  }

  /** The wide cache's block that ends where block `b` starts, or 0: found by the cache's offsets, its size proved. */
  private heldBefore(b: number): number {
    for (let i = 0; i < this.wideCount; i++) {
      const p = this.wide[i]!;
      if (p < b && p + this.wideSize(p) === b) return p;
    }
    return 0;
  }

  /** Gives back the top of free block `h` (the last one) beyond `keep` bytes, in whole pages. */
  protected trimTop(h: number, size: number, keep: number): void {
    const page = getPageSize();
    let newTop = alignPage(h + keep + 2 * Block.HEADER);
    if (h === Block.HEADER && keep === 0) newTop = 0;
    else if (newTop - Block.HEADER - h < Block.MIN) newTop += page;
    if (newTop >= this.top) return;
    if (!this.lists.remove(h, size)) this.corruptedList();
    decommit(this.reservation!, newTop, this.committedTop - newTop);
    this.munmapCalls++;
    this.lastTrim += this.committedTop - newTop;
    this.committedTop = newTop;
    // The new sentinel is written: its page counts as held, as do all past it, given back now.
    for (let p = Math.max(0, newTop - Block.HEADER) >>> this.pageShift; p < this.purged.length; p++) {
      if (this.purged[p] !== 0) {
        this.purged[p] = 0;
        this.purgedBytes -= this.pageBytes;
      }
    }
    this.top = newTop;
    if (this.touchedTop > newTop) this.touchedTop = newTop;
    this.lists.limit = newTop;
    if (newTop === 0) {
      this.clearStart(h);
    } else {
      const rest = newTop - Block.HEADER - h;
      this.mem[(h >>> 2) + Word.SIZE] = rest | Flag.FREE;
      this.mem[(newTop - Block.HEADER) >>> 2] = rest;
      this.mem[((newTop - Block.HEADER) >>> 2) + Word.SIZE] = 0;
      this.lists.insert(h, rest);
    }
    this.updateTrimThreshold();
  }

  /** How many blocks the caches hold (kept per size only, off the hot path). */
  protected cachedBlocks(): number {
    let n = this.wideCount;
    for (let c = 0; c < this.cacheCounts.length; c++) n += this.cacheCounts[c]!;
    return n;
  }

  /**
   * Moves every cached block to the free lists, merging it with its free neighbours. The counts
   * are read once, and only the caches that hold blocks are walked: at the peak a program may
   * flush every few dozen calls, with a few of the 129 sizes cached.
   */
  protected flushCaches(): void {
    const counts = this.cacheCounts;
    const heads = this.cacheHeads;
    const used = this.cachesInUse;
    let n = 0;
    // The counts are state native code cannot reach, and match the caches (check() proves it): a
    // cache counted empty has no head to follow.
    for (let c = 0; c < counts.length; c++) if (counts[c] !== 0) used[n++] = c;
    // Every cache is proved whole first, so a damaged one is reported before any block moves.
    for (let i = 0; i < n; i++) {
      const c = used[i]!;
      for (let h = heads[c]!, left = counts[c]! - 1; h !== 0; left--) h = this.cacheLink(h, c, left);
    }
    this.flushWide();
    for (let i = 0; i < n; i++) {
      const c = used[i]!;
      let h = heads[c]!;
      while (h !== 0) {
        const next = this.mem[(h >>> 2) + Word.NEXT_FREE]!;
        heads[c] = next;
        counts[c]!--;
        this.mem[(h >>> 2) + Word.SIZE] = c << 4;
        this.release(h, c << 4, false);
        h = next;
      }
    }
  }

  /** Moves the wide cache's blocks to the free lists, merging each with its free neighbours; all are proved first. */
  protected flushWide(): void {
    const n = this.wideCount;
    for (let i = 0; i < n; i++) this.wideSize(this.wide[i]!);
    for (let i = 0; i < n; i++) {
      const h = this.wide[i]!;
      const size = this.mem[(h >>> 2) + Word.SIZE]! & Flag.SIZE_MASK;
      this.mem[(h >>> 2) + Word.SIZE] = size;
      this.release(h, size, false);
    }
    this.wideCount = 0;
    this.wideLarge = 0;
  }

  /**
   * Whether handing out the arena up to `end`, past the touched top, counts against a footprint at
   * its peak: every byte past the touched top is counted (not only whole pages), so that at the
   * peak the caches merge and a block below serves instead (belowPeak), which keeps cached
   * blocks from pinning holes (see docs/design.md).
   */
  protected passesPeak(end: number): boolean {
    return this.mapped() + (end - this.touchedTop) > this.peakMapped;
  }

  /**
   * Free block `h`, off its list, would serve `need` bytes by reaching past the touched top. The
   * wide cache's blocks merge first and the lists are searched again, so that no block it holds
   * makes the heap touch more; a block that still reaches past the peak is passed to belowPeak.
   * Returns the block to use, off its list (0 or -1 as takeFit).
   */
  protected pastTouched(h: number, need: number): number {
    if (this.wideCount !== 0) {
      this.lists.insert(h, this.mem[(h >>> 2) + Word.SIZE]! & Flag.SIZE_MASK);
      this.flushWide();
      h = this.lists.takeFit(need);
      if (h <= 0 || h + need <= this.touchedTop) return h;
    }
    return this.passesPeak(h + need) ? this.belowPeak(h, need) : h;
  }

  /**
   * Free block `h`, off its list, would serve `need` bytes by reaching past the touched top and
   * the peak (it is the free block at the top: every other lies below the touched top). Another
   * is taken if one can serve: a listed block that fits, unless the block just below `h` is
   * cached (merged into `h`, it would let `h` reach less far); else, after the caches merge, the
   * best fit again, else a block of a larger class than `h`'s. Returns the block to use, off its
   * list. (Merging the caches moves every cached block: at a heap's peak with random sizes, one
   * malloc in seven came here, and the flush took a third of the time.)
   */
  protected belowPeak(h: number, need: number): number {
    const size = this.mem[(h >>> 2) + Word.SIZE]! & Flag.SIZE_MASK;
    if (!this.cachedBelow(h)) {
      const other = this.lists.takeFit(need);
      if (other !== 0) {
        this.lists.insert(h, size);
        return other;
      }
    }
    this.lists.insert(h, size);
    this.flushCaches();
    let other = this.lists.takeFit(need);
    if (other <= 0) return other;
    if (other + need > this.touchedTop) {
      // The top again (merged or not): a block of any larger class lies below it, and fits.
      const top = other;
      const topSize = this.mem[(top >>> 2) + Word.SIZE]! & Flag.SIZE_MASK;
      other = this.lists.takeFrom(classOf(topSize) + 1);
      if (other === 0) return top;
      this.lists.insert(top, topSize);
    }
    return other;
  }

  /** Whether the block just before block `h` is a recorded start flagged cached (a heuristic's question: nothing follows from it). */
  private cachedBelow(h: number): boolean {
    const p = h - this.mem[h >>> 2]!;
    return p !== h && this.isStart(p) && (this.mem[(p >>> 2) + Word.SIZE]! & Flag.MASK) === Flag.CACHED;
  }

  /**
   * A block of exactly `need` bytes from the wide cache, the last freed first, made free (flagged
   * FREE) for use(); 0 if none. The blocks left keep their order, oldest first.
   */
  protected takeWide(need: number): number {
    const n = this.wideCount;
    const wide = this.wide;
    const mem = this.mem;
    const end = this.top - Block.HEADER;
    for (let i = n - 1; i >= 0; i--) {
      const h = wide[i]!;
      // A header that does not read as cached at this size is passed over here, and proved (or
      // found damaged) when its block leaves the cache.
      if (mem[(h >>> 2) + Word.SIZE] !== (need | Flag.CACHED)) continue;
      // wideSize's proof, written out for the block that matches: a recorded start whose size
      // ends at the sentinel or a recorded start that records it (wideSize names a failure).
      const e = h + need;
      if (!(need > CACHE_MAX_BLOCK && need <= CACHE_WIDE_MAX && (h & Flag.MASK) === Block.HEADER && h < end &&
          (this.starts[h >>> 9]! & (1 << ((h >>> 4) & 31))) !== 0 && e <= end && mem[e >>> 2] === need &&
          (e === end || (this.starts[e >>> 9]! & (1 << ((e >>> 4) & 31))) !== 0))) {
        this.wideSize(h);
      }
      for (let j = i + 1; j < n; j++) wide[j - 1] = wide[j]!;
      this.wideCount = n - 1;
      if (need > CACHE_WIDE_KEEP) this.wideLarge--;
      this.mem[(h >>> 2) + Word.SIZE] = need | Flag.FREE;
      return h;
    }
    return 0;
  }

  /**
   * Holds used block `h` of `size` bytes, just freed (and counted out of inUse), in the wide cache.
   * A full cache first moves its oldest block to the free lists.
   */
  protected holdWide(h: number, size: number): void {
    if (this.wideCount === CACHE_WIDE_SLOTS) this.evictWide();
    this.mem[(h >>> 2) + Word.SIZE] = size | Flag.CACHED;
    this.wide[this.wideCount++] = h;
    if (size > CACHE_WIDE_KEEP) this.wideLarge++;
  }

  /** Moves the wide cache's oldest block (which is there) to the free lists, merged with its free neighbours. */
  protected evictWide(): void {
    const wide = this.wide;
    const old = wide[0]!;
    const size = this.wideSize(old);
    const n = this.wideCount - 1;
    for (let j = 0; j < n; j++) wide[j] = wide[j + 1]!;
    this.wideCount = n;
    if (size > CACHE_WIDE_KEEP) this.wideLarge--;
    this.mem[(old >>> 2) + Word.SIZE] = size;
    this.release(old, size, true);
  }

  /** Releases every free byte at the top of the heap; all of it when nothing is in use there. */
  override trim(): void {
    if (this.destroyed) throw destroyedError();
    this.small.trim();
    if (this.top === 0) return;
    this.flushCaches();
    const last = this.freeBefore(this.top - Block.HEADER);
    if (last !== 0) this.trimTop(last, this.top - Block.HEADER - last, 0);
    // The whole pages inside the free blocks below, as glibc's malloc_trim gives them back.
    this.purgeFreeBlocks(this.pageBytes);
    // What was committed ahead of the blocks goes back too.
    if (this.committedTop > this.top) {
      decommit(this.reservation!, this.top, this.committedTop - this.top);
      this.munmapCalls++;
      this.committedTop = this.top;
    }
    // Asked for: growing back afterwards is no sign of the threshold's being too low.
    this.lastTrim = 0;
  }

  protected reserveArena(): boolean {
    this.mmapCalls++;
    const arena = reserveAddressSpace(ARENA_BYTES, ARENA_MIN_BYTES);
    if (arena === null) return false;
    this.reservation = arena;
    this.base = arena.address;
    this.mem = new Uint32Array(arena.buffer);
    this.bytesView = new Uint8Array(arena.buffer);
    this.lists.mem = this.mem;
    return true;
  }

  /** Grows the start bitmap to cover [0, top), doubling. */
  protected ensureStartsCapacity(): void {
    const pages = this.top >>> this.pageShift;
    if (pages > this.purged.length) {
      const grown = new Uint8Array(Math.max(pages, 2 * this.purged.length));
      grown.set(this.purged);
      this.purged = grown;
    }
    const needWords = Math.ceil(this.top / 16 / 32);
    if (needWords <= this.starts.length) return;
    const grown = new Int32Array(Math.max(needWords, 2 * this.starts.length, 1024));
    grown.set(this.starts);
    this.starts = grown;
    this.lists.starts = grown;
  }
}
