// The fast preset's engine: O(1) malloc and free in three tiers. (Its introspection, snapshot,
// stats and check, is the concrete class FastHeap in ./fast.ts.)
// - Requests of up to SMALL_MAX bytes (256) come from 1 KiB pages of one size class each
//   (src/heap/pages.ts, src/layout/pages.ts): no header, and every fact about a slot in JavaScript;
//   each class's slot cache holds its last freed slots for the next mallocs.
// - Larger ones are blocks of the medium arena (./fast-arena.ts, its state and block operations;
//   ./fast-growth.ts, its growth and trimming), with small-block caches.
// - Requests at or above `largeThreshold` get mappings of their own (./fast-large.ts).
//
// This file holds the public calls: the hot paths and their slow paths, and the rest; realloc is
// ./fast-realloc.ts.
// Addresses are validated in O(1): a small block by its page's bitmap, a medium one by the arena's
// start bitmap, a large one by its map, all kept in JavaScript, so only the exact start of a live
// block passes, whatever bytes sit in the heap.
//
// Hot paths (malloc, free, and realloc in place) use Numbers and typed arrays only: no FFI call, no
// object allocated. The page paths of malloc and free are small enough for V8 to inline both into
// the caller; the medium paths (mallocMedium, freeMedium) and slow paths live apart.

import { Block, Flag, Word, fastBlockSize } from '../layout/fast.js';
import { CLASS_OF, CLASS_SIZE, Page } from '../layout/pages.js';
import { callocBytes, checkAddress, checkName, checkSize, toAddress } from './arguments.js';
import { destroyedError } from './errors.js';
import type { Address } from './types.js';
import {
  Cache, CACHE_MAX_BLOCK, CACHE_MAX_REQUEST, CACHE_WIDE_KEEP, CACHE_WIDE_MAX, CACHE_WIDE_SLOTS, EMPTY_BYTES, EMPTY_WORDS, SCRIBBLE_BYTE, FREED_BYTE, TRIM_MIN, doubleFree,
} from './fast-arena.js';
import { FastRealloc } from './fast-realloc.js';
import { releaseReservation, unmapMemory } from '../os/memory.js';

export { CACHE_CLASSES, CACHE_DEPTH, CACHE_MAX_BLOCK, CACHE_MAX_REQUEST, SCRIBBLE_BYTE, TRIM_MIN, type LargeBlock } from './fast-arena.js';

// The block-size function and the class tables through module-level consts: V8 folds the const
// to the function or array and inlines it, where each use of the imported binding would read a
// module cell and check it.
const blockSize = fastBlockSize;
const classOfRequest = CLASS_OF;
const classSize = CLASS_SIZE;

/** The fast preset's every operation but introspection; FastHeap (./fast.ts) completes it. */
export abstract class FastEngine extends FastRealloc {
  override malloc(size: number, name?: string): number {
    // The fast path, small enough for V8 to inline into the caller (with free's): an unnamed
    // request of at most SMALL_MAX bytes whose class's slot cache holds a slot, or has a page
    // with a free slot. Anything else takes mallocMedium.
    if (typeof size === 'number' && (size >>> 0) === size && size <= Page.SMALL_MAX && name === undefined) {
      // The class and its size by arithmetic (src/layout/pages.ts): no table to load.
      const c = size === 0 ? 1 : (size + 15) >>> 4;
      const small = this.small;
      const cache = small.slotCache;
      const n = cache[c << Page.CACHE_SHIFT]!;
      if (n !== 0) {
        // SmallPages.takeCached, written out: the slot freed last.
        const g = cache[(c << Page.CACHE_SHIFT) | n]!;
        cache[c << Page.CACHE_SHIFT] = n - 1;
        small.marks[g] = Page.LIVE + c;
        if ((this.inUse += c << 4) > this.peakInUse) this.peakInUse = this.inUse;
        const ptr = small.base + (g << Page.GRANULE_SHIFT);
        if (this.scribble === true) this.scribbleSmall(ptr, c);
        return ptr;
      }
      if (small.avail[c] !== 0) {
        if ((this.inUse += c << 4) > this.peakInUse) this.peakInUse = this.inUse;
        const ptr = small.base + (small.takeSlot(c) << Page.GRANULE_SHIFT);
        // `=== true`: a pointer comparison, where a bare truth test of the field is generic.
        if (this.scribble === true) this.scribbleSmall(ptr, c);
        return ptr;
      }
    }
    // mallocMedium returns an offset from the arena's base, a small integer: an address returned
    // from a call that is not inlined would be boxed in a new HeapNumber at every call. (The base
    // is read after the call, which may reserve the arena.)
    const o = this.mallocMedium(size, name);
    return this.base + o;
  }

  /**
   * malloc past the page path: an unnamed request of at most CACHE_MAX_REQUEST bytes whose size's
   * cache holds a block. Anything else takes mallocSlow. Returns the address less `base` (see malloc).
   */
  private mallocMedium(size: number, name: string | undefined): number {
    if (typeof size === 'number' && (size >>> 0) === size && size <= Cache.MAX_REQUEST && name === undefined) {
      const need = blockSize(size);
      const c = need >>> 4;
      const h = this.cacheHeads[c]!;
      if (h !== 0) {
        const mem = this.mem;
        const w = h >>> 2;
        const next = mem[w + Word.NEXT_FREE]!;
        const left = this.cacheCounts[c]! - 1;
        // The head is a cached block of this size (it was proved when it became the head); its link
        // is 0 at the cache's last block, else a recorded block start. cacheNext says why not.
        if (mem[w + Word.SIZE] === (need | Flag.CACHED) && (next === 0 ? left === 0 : left > 0 && next < this.top &&
            (next & Flag.MASK) === Block.HEADER && (this.starts[next >>> 9]! & (1 << ((next >>> 4) & 31))) !== 0)) {
          this.cacheHeads[c] = next;
          this.cacheCounts[c] = left;
          mem[w + Word.SIZE] = need;
          if ((this.inUse += need) > this.peakInUse) this.peakInUse = this.inUse;
          if (this.scribble === true) this.dress(h, need, undefined);
          return h + Block.HEADER;
        }
      }
    } else if (this.wideCount !== 0 && typeof size === 'number' && size < this.largeThreshold && (size >>> 0) === size && name === undefined) {
      // A block the wide cache holds at exactly this size (sqlite's page buffers, a buffer freed
      // and asked for again): no split, no merge. Else the lists, as mallocSlow would come to.
      const need = blockSize(size);
      const h = this.takeWide(need);
      if (h !== 0) return this.use(h, need, undefined);
      return this.mallocListed(need, undefined) - this.base;
    }
    // Exact: addresses are integers below 2^53, and 0 (out of memory) comes back as 0.
    return this.mallocSlow(size, name) - this.base;
  }

  protected mallocSlow(size: number, name: string | undefined): number {
    // One test passes every size below 4 GiB; anything else takes the careful path.
    if (typeof size !== 'number' || (size >>> 0) !== size) return this.mallocChecked(size, name);
    if (name !== undefined) checkName('malloc', name);
    // Small requests go to pages once the heap holds `pagesFrom` bytes in use (0 by default) or has
    // pages; below it (a heap that asked for that) they are blocks of the lists.
    if (size <= Page.SMALL_MAX && !this.small.unavailable && (this.small.committed !== 0 || this.inUse >= this.pagesFrom)) {
      const ptr = this.mallocSmall(size, name);
      if (ptr !== 0) return ptr;
      // No page to be had (the small arena is full, or past the limit): the medium lists may have room.
    }
    if (size > CACHE_MAX_REQUEST) {
      return size >= this.largeThreshold ? this.mallocLarge(size, name) : this.mallocFromLists(blockSize(size), name);
    }
    const need = blockSize(size);
    const c = need >>> 4;
    const h = this.cacheHeads[c]!;
    if (h === 0) return this.mallocFromLists(need, name);
    // A named request served from a cache, or a cache whose first block was overwritten.
    const next = this.cacheNext(h, c);
    this.cacheHeads[c] = next;
    this.cacheCounts[c]!--;
    this.mem[(h >>> 2) + Word.SIZE] = need;
    if ((this.inUse += need) > this.peakInUse) this.peakInUse = this.inUse;
    this.dress(h, need, name);
    return this.base + h + Block.HEADER;
  }

  /** A slot for a request of `size` bytes (at most SMALL_MAX), from a page with room or a new one; 0 if none can be had. */
  private mallocSmall(size: number, name: string | undefined): number {
    if (this.destroyed) throw destroyedError();
    const c = classOfRequest[(size + 15) >>> 4]!;
    const small = this.small;
    // A class with no page that has room takes from its slot cache first (a named request comes
    // here with slots still cached).
    const cached = small.avail[c] === 0 && small.slotCache[c << Page.CACHE_SHIFT] !== 0;
    if (small.avail[c] === 0 && !cached) {
      // A page from a new unit would take the heap past the most it has held: the slot caches give
      // their slots back to their pages first (a page they empty joins the pool), then the medium
      // arena's idle memory goes back, as the small pool's does before the arena grows.
      if (small.pooledPages === 0 && this.mapped() + (small.unitPages << Page.SHIFT) > this.peakMapped) {
        small.flushSlotCaches();
        if (small.pooledPages === 0) this.releaseIdleArena();
      }
      if (small.refill(c, this.limit - this.committed()) === 0) return 0;
      if (this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
    }
    if ((this.inUse += classSize[c]!) > this.peakInUse) this.peakInUse = this.inUse;
    const ptr = small.base + ((cached ? small.takeCached(c) : small.takeSlot(c)) << Page.GRANULE_SHIFT);
    if (name !== undefined) this.nameSmall(ptr, name);
    if (this.scribble) this.scribbleSmall(ptr, c);
    return ptr;
  }

  private scribbleSmall(ptr: number, c: number): void {
    const o = ptr - this.small.base;
    this.small.bytes.fill(SCRIBBLE_BYTE, o, o + classSize[c]!);
  }

  /** Names and scribbles a new block, when asked to: kept off the inlined fast path. */
  private dress(h: number, size: number, name: string | undefined): void {
    if (name !== undefined) this.nameBlock(h, name);
    if (this.scribble) this.bytesView.fill(SCRIBBLE_BYTE, h + Block.HEADER, h + size);
  }

  /** malloc of a size that is not a Number below 4 GiB: an error, or a request no view can hold. */
  private mallocChecked(size: number, name: string | undefined): number {
    checkSize('malloc', 'size', size);
    checkName('malloc', name);
    return this.mallocLarge(size, name);
  }

  private mallocFromLists(need: number, name: string | undefined): number {
    if (this.wideCount !== 0) {
      const held = this.takeWide(need);
      if (held !== 0) return this.base + this.use(held, need, name);
    }
    return this.mallocListed(need, name);
  }

  /** A block of `need` bytes for a request the wide cache did not serve: from the lists, else by growth, else a mapping. */
  private mallocListed(need: number, name: string | undefined): number {
    // Blocks past CACHE_WIDE_KEEP are held only until a request they do not serve.
    if (this.wideLarge !== 0) this.flushWide();
    let h = this.lists.takeFit(need);
    if (h > 0 && h + need > this.touchedTop) h = this.pastTouched(h, need);
    if (h <= 0) {
      h = h === 0 ? this.growFor(need) : this.corruptedList();
      // The arena is full (or could not be reserved): a mapping of its own is still worth a try.
      if (h === 0) return this.mallocLarge(need - Block.HEADER, name);
    }
    return this.base + this.use(h, need, name);
  }

  /**
   * Turns free block `h`, already off its list, into a used block of `need` bytes. Returns its
   * address less `base` (see malloc).
   */
  private use(h: number, need: number, name: string | undefined): number {
    const mem = this.mem;
    const w = h >>> 2;
    const sizeWord = mem[w + Word.SIZE]!;
    let size = sizeWord & Flag.SIZE_MASK;
    if ((sizeWord & Flag.FREE) === 0 || size < need || h + size > this.top - Block.HEADER) {
      return this.corrupted(h, 'a block on a free list is not a free block of the size its class promises');
    }
    const rest = size - need;
    // The block and the remainder's header are written: their pages count as held again.
    // Each call only when it has work: neither is inlined, and a wide-cache hit pays for both.
    if (this.purgedBytes !== 0) this.unpurge(h, rest >= Block.MIN ? h + need + Block.MIN : h + size + Block.HEADER);
    if (rest >= Block.MIN) {
      this.splitOff(h, need, rest);
      size = need;
    }
    mem[w + Word.SIZE] = size;
    if (h + size > this.touchedTop) this.touch(h + size);
    if ((this.inUse += size) > this.peakInUse) this.peakInUse = this.inUse;
    if (name !== undefined || this.scribble === true) this.dress(h, size, name);
    return h + Block.HEADER;
  }

  override free(ptr: Address): void {
    // The fastest path, small enough to inline: the first byte of a slot in use with no name or
    // owner. Everything it reads is JavaScript state. The slot goes to its class's slot cache, or
    // to its page when the cache is full. Anything else, and anything doubtful, takes freeMedium.
    if (typeof ptr === 'number') {
      const small = this.small;
      const o = ptr - small.base;
      // A live mark is only ever at a slot's first granule: one load proves the address, and says
      // the slot's class (a slot with a name or an owner is marked NOTED, and takes the slow path).
      if ((o >>> 0) === o && o < small.top && (o & 15) === 0) {
        const marks = small.marks;
        const g = o >>> Page.GRANULE_SHIFT;
        const mark = marks[g]!;
        if (mark <= Page.LIVE_MAX) {
          const c = mark - Page.LIVE;
          this.inUse -= c << 4;
          if (this.scribble === true) small.bytes.fill(FREED_BYTE, o, o + (c << 4));
          const cache = small.slotCache;
          const n = (cache[c << Page.CACHE_SHIFT]! + 1) | 0;
          if (n <= Page.CACHE_SLOTS) {
            cache[c << Page.CACHE_SHIFT] = n;
            cache[(c << Page.CACHE_SHIFT) | n] = g;
            marks[g] = Page.CACHED;
          } else {
            // The cache is full: the slot heads its page's free list. A call, which keeps free
            // small enough for V8 to inline beside malloc and realloc; it passes only integers.
            small.releaseSlot(g);
          }
          return;
        }
      }
      // Anything else in the arena's 4 GiB goes to freeMedium as an offset, a small integer: an
      // address passed to a call that is not inlined would be boxed in a new HeapNumber.
      const offset = ptr - this.base;
      if ((offset >>> 0) === offset) return this.freeMedium(offset);
    }
    this.freeSlow(ptr);
  }

  /**
   * free() past the page path, apart so that free stays small enough for V8 to inline: a medium
   * block of at most CACHE_MAX_BLOCK bytes, at a recorded block start, whose size ends at another
   * recorded start (or the sentinel) that records it, with room in its size's cache. Anything else
   * takes freeSlow. `o` is the address less `base`, a whole number below 2^32.
   */
  private freeMedium(o: number): void {
    // `o | 0` is an int32 for V8 to work in; an offset of 2 GiB or more turns negative and fails
    // the first test, and takes freeSlow whole.
    const h = (o | 0) - Block.HEADER;
    if (h >= Block.HEADER && h < this.top && (h & Flag.MASK) === Block.HEADER && (this.starts[h >>> 9]! & (1 << ((h >>> 4) & 31))) !== 0) {
      const mem = this.mem;
      const w = h >>> 2;
      const size = mem[w + Word.SIZE]!;
      const c = size >>> 4;
      // The size ends at a recorded start (or the sentinel) whose prev size echoes it: an echo
      // alone could be any word of a neighbour's data.
      const n = h + size;
      if ((size & Flag.MASK) === 0 && size !== 0 && n <= this.top - Block.HEADER && mem[n >>> 2] === size &&
          ((this.starts[n >>> 9]! & (1 << ((n >>> 4) & 31))) !== 0 || n === this.top - Block.HEADER)) {
        if (size <= Cache.MAX_BLOCK) {
          if (this.cacheCounts[c]! < Cache.DEPTH) {
            this.inUse -= size;
            mem[w + Word.SIZE] = size | Flag.CACHED;
            mem[w + Word.NEXT_FREE] = this.cacheHeads[c]!;
            this.cacheHeads[c] = h;
            this.cacheCounts[c]!++;
            if (this.scribble === true) this.scribbleFreed(h, size);
            return;
          }
        } else if (size <= CACHE_WIDE_KEEP && this.cacheDepth !== 0 && !this.wouldTrim(h, size)) {
          this.inUse -= size;
          if (this.scribble === true) this.scribbleFreed(h, size);
          return this.holdWide(h, size);
        }
      }
    }
    this.freeSlow(this.base + o);
  }

  protected freeSlow(ptr: Address): void {
    if (typeof ptr !== 'number') return this.free(toAddress('free', ptr));
    const at = this.small.locate(ptr - this.small.base);
    if (at >= 0) return this.freeSmall(ptr, at);
    // (h >>> 0) === h: an integer offset inside the arena's 4 GiB; the rest is the careful path.
    const h = ptr - this.base - Block.HEADER;
    if ((h >>> 0) !== h || h < Block.HEADER || h >= this.top || (h & Flag.MASK) !== Block.HEADER ||
        (this.starts[h >>> 9]! & (1 << ((h >>> 4) & 31))) === 0) {
      return this.freeOutsideHeap(ptr);
    }
    const mem = this.mem;
    const w = h >>> 2;
    const sizeWord = mem[w + Word.SIZE]!;
    const size = sizeWord & Flag.SIZE_MASK;
    if ((sizeWord & Flag.MASK) !== 0 || !this.sizeAgrees(h, size)) this.freeUnusual(h, ptr, sizeWord);
    if (!this.claim(w, sizeWord)) throw doubleFree('free', ptr);
    this.inUse -= size;
    if (this.scribble === true) this.scribbleFreed(h, size);
    if (size <= CACHE_MAX_BLOCK) {
      const c = size >>> 4;
      if (this.cacheCounts[c]! < this.cacheDepth) {
        mem[w + Word.SIZE] = size | Flag.CACHED;
        mem[w + Word.NEXT_FREE] = this.cacheHeads[c]!;
        this.cacheHeads[c] = h;
        this.cacheCounts[c]!++;
        return;
      }
    } else if (size <= CACHE_WIDE_MAX && this.cacheDepth !== 0) {
      // A block whose free would trim the top is not held, and the blocks held below it merge
      // back with it, so that the top goes back to the kernel whatever order the frees came in.
      if (this.wouldTrim(h, size)) this.flushWide();
      else if (size <= CACHE_WIDE_KEEP || this.wideCount < CACHE_WIDE_SLOTS) return this.holdWide(h, size);
    }
    this.release(h, size, true);
  }

  /** free() of the slot at granule `g` (from SmallPages.locate), at `ptr`. */
  private freeSmall(ptr: number, g: number): void {
    if (!this.small.isLive(g)) throw doubleFree('free', ptr);
    if (this.smallNamed !== 0 && this.smallNames.delete(ptr)) this.smallNamed--;
    this.owners?.forget(ptr);
    this.inUse -= this.small.slotSize(g >>> Page.GRANULES_SHIFT);
    this.small.releaseSlot(g);
  }

  /** The slot size of the small block in use at `ptr`, or -1 when `ptr` is not a small block's slot; a free one is an error. */
  private smallLive(ptr: number, op: string): number {
    const g = this.small.locate(ptr - this.small.base);
    if (g < 0) return -1;
    if (!this.small.isLive(g)) throw doubleFree(op, ptr);
    return this.small.slotSize(g >>> Page.GRANULES_SHIFT);
  }

  /** Claims used block `w` for free(); false when another thread claimed it first (see SharedHeap). */
  protected claim(_w: number, _sizeWord: number): boolean {
    return true;
  }

  /** free() of a block with flags set or a size in doubt: throws, or forgets the block's name. */
  private freeUnusual(h: number, ptr: number, sizeWord: number): void {
    // The header is proved whole before its flags are believed: an overflow into it is corruption,
    // not a double free.
    this.checkHeader(h, sizeWord);
    if ((sizeWord & (Flag.FREE | Flag.CACHED)) !== 0) throw doubleFree('free', ptr);
    if ((sizeWord & Flag.NAMED) !== 0) this.names.delete(h);
    if ((sizeWord & Flag.OWNED) !== 0) this.owners?.forget(ptr);
  }

  /** Every call after destroy() throws ERR_HEAP_DESTROYED (the base class's helpers ask here first). */
  protected override assertLive(): void {
    if (this.destroyed) throw destroyedError();
  }

  protected override markOwned(ptr: number): void {
    // A small block's mark becomes NOTED, so that its free takes the path that forgets the owner.
    const g = this.small.locate(ptr - this.small.base);
    if (g >= 0) {
      this.small.marks[g] = Page.NOTED;
      return;
    }
    const h = ptr - this.base - Block.HEADER;
    if (h >= Block.HEADER && h < this.top) this.mem[(h >>> 2) + Word.SIZE]! |= Flag.OWNED;
  }

  override calloc(count: number, size: number, name?: string): number {
    const total = callocBytes(count, size);
    if (total < 0) return this.outOfMemory('calloc', `${count} × ${size}`);
    const ptr = this.malloc(total, name);
    // Fresh mappings are zero already (unless scribbled); the heap's blocks and slots may not be.
    if (ptr !== 0) {
      const offset = ptr - this.base;
      const o = ptr - this.small.base;
      if (o >= 0 && o < this.small.top) this.small.bytes.fill(0, o, o + total);
      else if (offset >= 0 && offset < this.top) this.bytesView.fill(0, offset, offset + total);
      else if (this.scribble) this.viewOf(ptr, total).fill(0);
    }
    return ptr;
  }

  override usableSize(ptr: Address): number {
    if (typeof ptr !== 'number') ptr = toAddress('usableSize', ptr);
    checkAddress('usableSize', ptr);
    const slotSize = this.smallLive(ptr, 'usableSize');
    if (slotSize >= 0) return slotSize;
    const h = ptr - this.base - Block.HEADER;
    if (h >= Block.HEADER && h < this.top) return (this.liveWord(h, ptr, 'usableSize') & Flag.SIZE_MASK) - Block.HEADER;
    return this.largeBlock(ptr, 'usableSize').mapping.size;
  }

  override destroy(): void {
    if (this.destroyed) return;
    this.owners?.clear();
    this.small.destroy();
    this.smallNames.clear();
    this.smallNamed = 0;
    for (const block of this.large.values()) {
      unmapMemory(block.mapping);
      this.munmapCalls++;
    }
    this.large.clear();
    this.released.clear();
    if (this.reservation !== null) {
      releaseReservation(this.reservation);
      this.munmapCalls++;
    }
    this.reservation = null;
    this.mem = EMPTY_WORDS;
    this.bytesView = EMPTY_BYTES;
    this.lists.mem = EMPTY_WORDS;
    this.lists.clear();
    this.cacheHeads.fill(0);
    this.cacheCounts.fill(0);
    this.wideCount = 0;
    this.wideLarge = 0;
    this.names.clear();
    this.top = 0;
    this.committedTop = 0;
    this.touchedTop = 0;
    this.purged = new Uint8Array(0);
    this.purgedBytes = 0;
    this.largeBytes = 0;
    this.inUse = 0;
    this.blockCount = 0;
    this.destroyed = true;
  }
}
