// The fast preset's engine: O(1) malloc and free in three tiers. (Its introspection, snapshot,
// stats and check, is the concrete class FastHeap in ./fast.ts.)
// - Requests of up to SMALL_MAX bytes (256) come from 1 KiB pages of one size class each
//   (src/heap/pages.ts, src/layout/pages.ts): no header, and every fact about a slot in JavaScript.
// - Larger ones come from segregated free lists (src/strategies/tlsf.ts) of blocks with 8-byte
//   headers (src/layout/fast.ts), with small-block caches, in one arena of reserved address space:
//   the medium arena, described below.
// - Requests at or above `largeThreshold` get mappings of their own.
//
// The arena is reserved once (1 GiB, PROT_NONE) and committed from its start as the heap grows,
// so the heap is one contiguous range [0, top) with one typed array over it: an address is
// `base + offset`, a header one array read. Growth commits a sixth of what is committed already
// (geometric, so a million small allocations cost about one mmap call a MiB); a large free block
// at the top is given back (decommitted) only when it exceeds twice the growth step, so a
// malloc/free loop at the boundary does not thrash. Requests at or above `largeThreshold` get a
// mapping of their own, unmapped on free and resized by mremap; like glibc, the threshold rises to
// the size of a freed large block, so a program that keeps allocating buffers of one size stops
// paying for mmap.
//
// Addresses are validated in O(1): a bitmap kept in JavaScript marks where blocks start, so only
// the exact start of a live block passes, whatever bytes sit in the heap.
//
// Every value read from native memory (a size, a prev size, a cache or free-list link) is untrusted:
// a write after free or an overflow can put any bytes there. Before the heap reads or writes
// through one, it proves it against state native code cannot reach: an offset must be a recorded
// block start below `top`, in the state the structure it came from promises (cached of the cache's
// size, free of the list's class, with a matching link back), and a size must end at a recorded
// start whose prev size agrees. Walks are bounded by the counts kept in JavaScript. Anything else
// is ERR_HEAP_CORRUPTED, raised before any write.
//
// Hot paths (malloc, free, realloc in place) use Numbers and typed arrays only: no FFI call, no
// object allocated. The slow paths (growth, trimming, large blocks, errors) live apart.

import {
  alignPage, commit, decommit, getPageSize, mapMemory, releaseReservation, remapMemory, reserveAddressSpace, unmapMemory,
  MAX_VIEW_BYTES, type Mapping, type Reservation,
} from '../os/memory.js';
import { Block, Flag, Word, fastBlockSize } from '../layout/fast.js';
import { CLASS_OF, CLASS_RECIPROCAL, CLASS_SIZE, CLASS_SLOTS, Page } from '../layout/pages.js';
import { SmallPages } from './pages.js';
import { SegregatedLists } from '../strategies/tlsf.js';
import { callocBytes, checkAddress, checkName, checkRealloc, checkSize } from './arguments.js';
import { HeapError, destroyedError, hex } from './errors.js';
import { Heap, type HeapOperations } from './heap.js';

/** Address space to reserve for the arena, and the least we accept when the kernel refuses. */
// 1 GiB rather than the 4 GiB a view may span: V8 reads typed arrays over more than 2 GiB about
// half as fast (measured on Node 20). Blocks that do not fit go to mappings of their own.
const ARENA_BYTES = 2 ** 30;
const ARENA_MIN_BYTES = 16 * 1024 * 1024;
/** The largest request a block of the arena may grow to in place. */
const MAX_ARENA_REQUEST = ARENA_BYTES / 4;
/** Growth step: committed / GROWTH_DIVISOR, clamped to [GROWTH_MIN, GROWTH_MAX], whole pages. */
const GROWTH_DIVISOR = 6;
const GROWTH_MIN = 4096;
const GROWTH_MAX = 64 * 1024 * 1024;
/** Large requests: the threshold starts here and may rise to the maximum. */
const LARGE_THRESHOLD_START = 256 * 1024;
const LARGE_THRESHOLD_MAX = 32 * 1024 * 1024;
/** A free top block is trimmed only above this many bytes, and above twice the growth step. */
export const TRIM_MIN = 128 * 1024;

/**
 * Small-block caches: a freed block of at most CACHE_MAX_BLOCK bytes is parked, unmerged, on a
 * LIFO list of its exact size, up to CACHE_DEPTH blocks a size, and handed straight back by the
 * next malloc of that size. The caches are flushed into the free lists before the heap grows.
 */
export const CACHE_MAX_BLOCK = 2048;
export const CACHE_MAX_REQUEST = CACHE_MAX_BLOCK - Block.HEADER;
export const CACHE_DEPTH = 32;

export const SCRIBBLE_BYTE = 0xaa;


// The block-size function through a module-level const: V8 folds the const to the function and
// inlines it, where each use of the imported binding would read a module cell and check it.
const blockSize = fastBlockSize;
const classOfRequest = CLASS_OF;
const classSize = CLASS_SIZE;
const classSlots = CLASS_SLOTS;
const classReciprocal = CLASS_RECIPROCAL;
const EMPTY_WORDS = new Uint32Array(0);
const EMPTY_BYTES = new Uint8Array(0);

/** A block in a mapping of its own. Data starts at the mapping, so it is page-aligned. */
export interface LargeBlock {
  readonly mapping: Mapping;
  readonly bytes: Uint8Array;
  name: string;
}

/** The fast preset's state and every operation but introspection; FastHeap (./fast.ts) completes it. */
export abstract class FastEngine extends Heap implements HeapOperations {
  protected reservation: Reservation | null = null;
  /** The arena's address; 0 until reserved. */
  protected base = 0;
  protected mem: Uint32Array = EMPTY_WORDS;
  protected bytesView: Uint8Array = EMPTY_BYTES;
  /** Committed bytes from the arena's start; the sentinel header is the last 8 of them. */
  protected top = 0;
  /** Bit (offset >>> 4) is set where a block header starts. */
  protected starts: Int32Array<ArrayBufferLike> = new Int32Array(0);
  protected readonly lists = new SegregatedLists(EMPTY_WORDS);
  /** Per size class (block size / 16): the first cached block, and how many are cached. */
  protected readonly cacheHeads = new Uint32Array(CACHE_MAX_BLOCK / 16 + 1);
  protected readonly cacheCounts = new Int32Array(CACHE_MAX_BLOCK / 16 + 1);
  /** Names of named blocks, by header offset; touched only for blocks flagged Flag.NAMED. */
  protected readonly names = new Map<number, string>();
  /** Small blocks (in pages). */
  protected readonly small = new SmallPages();
  /** Names of named small blocks, by address; while it holds any, frees of small blocks take the slow path. */
  protected readonly smallNames = new Map<number, string>();
  /** smallNames.size, as a field: a Number the inlined free path reads without a call. */
  private smallNamed = 0;
  protected readonly large = new Map<number, LargeBlock>();
  /** Requests of at least this many bytes get mappings of their own. */
  protected largeThreshold = LARGE_THRESHOLD_START;
  /** A free block at the top larger than this is trimmed. */
  protected trimThreshold = TRIM_MIN;
  protected destroyed = false;
  /** Blocks a size's cache may hold: CACHE_DEPTH, or 0 where caching is off (the shared preset). */
  protected cacheDepth = CACHE_DEPTH;

  protected largeBytes = 0;
  protected peakMapped = 0;
  protected inUse = 0;
  protected peakInUse = 0;
  /** Blocks in the arena, used, cached or free (changes only when blocks split or merge). */
  protected blockCount = 0;
  protected mmapCalls = 0;
  protected munmapCalls = 0;

  // ---------------------------------------------------------------------------------------------
  // Hot paths.

  override malloc(size: number, name?: string): number {
    // The fast path, small enough for V8 to inline into the caller (with free's): an unnamed
    // request of at most SMALL_MAX bytes whose class has a page with a free slot. Anything else
    // takes mallocMedium.
    if (typeof size === 'number' && (size >>> 0) === size && size <= Page.SMALL_MAX && name === undefined) {
      const c = classOfRequest[(size + 15) >>> 4]!;
      const small = this.small;
      if (small.avail[c] !== 0) {
        if ((this.inUse += classSize[c]!) > this.peakInUse) this.peakInUse = this.inUse;
        const ptr = small.takeSlot(c);
        // `=== true`: a pointer comparison, where a bare truth test of the field is generic.
        if (this.scribble === true) this.scribbleSmall(ptr, c);
        return ptr;
      }
    }
    // The unary plus types the result as a Number: without it V8 merges the two results as tagged
    // values and boxes every fast-path address in a new HeapNumber when malloc is inlined.
    return +this.mallocMedium(size, name);
  }

  /**
   * malloc past the page path: an unnamed request of at most CACHE_MAX_REQUEST bytes whose size's
   * cache holds a block. Anything else takes mallocSlow.
   */
  private mallocMedium(size: number, name: string | undefined): number {
    if (typeof size === 'number' && (size >>> 0) === size && size <= CACHE_MAX_REQUEST && name === undefined) {
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
          return this.base + h + Block.HEADER;
        }
      }
    }
    return +this.mallocSlow(size, name);
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
    if (small.avail[c] === 0) {
      if (small.refill(c, this.limit - this.mapped()) === 0) return 0;
      if (this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
    }
    if ((this.inUse += classSize[c]!) > this.peakInUse) this.peakInUse = this.inUse;
    const ptr = small.takeSlot(c);
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
    let h = this.lists.takeFit(need);
    if (h <= 0) {
      h = h === 0 ? this.growFor(need) : this.corruptedList();
      // The arena is full (or could not be reserved): a mapping of its own is still worth a try.
      if (h === 0) return this.mallocLarge(need - Block.HEADER, name);
    }
    return this.use(h, need, name);
  }

  /** Turns free block `h`, already off its list, into a used block of `need` bytes. */
  private use(h: number, need: number, name: string | undefined): number {
    const mem = this.mem;
    const w = h >>> 2;
    const sizeWord = mem[w + Word.SIZE]!;
    let size = sizeWord & Flag.SIZE_MASK;
    if ((sizeWord & Flag.FREE) === 0 || size < need || h + size > this.top - Block.HEADER) {
      return this.corrupted(h, 'a block on a free list is not a free block of the size its class promises');
    }
    const rest = size - need;
    if (rest >= Block.MIN) {
      const r = h + need;
      const rw = r >>> 2;
      mem[rw + Word.PREV_SIZE] = need;
      mem[rw + Word.SIZE] = rest | Flag.FREE;
      mem[(r + rest) >>> 2] = rest;
      this.markStart(r);
      this.lists.insert(r, rest);
      size = need;
    }
    mem[w + Word.SIZE] = size;
    if ((this.inUse += size) > this.peakInUse) this.peakInUse = this.inUse;
    if (name !== undefined || this.scribble === true) this.dress(h, size, name);
    return this.base + h + Block.HEADER;
  }

  override free(ptr: number): void {
    // The fastest path, small enough to inline: the first byte of a slot in use in a page some class
    // owns, when no small block has a name or an owner. Everything it reads is JavaScript state.
    // Anything else, and anything doubtful, takes freeSlow.
    if (typeof ptr === 'number') {
      const small = this.small;
      const o = ptr - small.base;
      if ((o >>> 0) === o && o < small.top) {
        const page = o >>> Page.SHIFT;
        const info = small.pageInfo[page]!;
        const c = info & Page.INFO_CLASS;
        const size = classSize[c]!;
        const rel = o & (Page.BYTES - 1);
        const slot = (rel * classReciprocal[c]!) >>> Page.RECIPROCAL_SHIFT;
        // A slot number is below 64 whatever the offset, so its bitmap word is the page's own.
        const bits = small.freeBits;
        const w = (page << Page.WORD_SHIFT) + (slot >>> 5);
        const word = bits[w]!;
        const bit = 1 << (slot & 31);
        if (slot < classSlots[c]! && slot * size === rel && (word & bit) === 0 && this.owners === null && this.smallNamed === 0) {
          // SmallPages.releaseSlot, written out: the page's bit, cursor and count in two stores.
          bits[w] = word | bit;
          const cursor = (info >>> Page.INFO_CURSOR_SHIFT) & (Page.WORDS - 1);
          const free = (info >>> Page.INFO_FREE_SHIFT) + 1;
          small.pageInfo[page] = c | ((slot >>> 5 < cursor ? slot >>> 5 : cursor) << Page.INFO_CURSOR_SHIFT) | (free << Page.INFO_FREE_SHIFT);
          this.inUse -= size;
          // SmallPages.changed: a page's first free slot, or every slot free off the head of its list.
          if (free === 1 || (free === classSlots[c] && small.avail[c] !== page)) small.changed(page, free);
          return;
        }
      }
    }
    this.freeMedium(ptr);
  }

  /**
   * free() past the page path, apart so that free stays small enough for V8 to inline: a medium
   * block of at most CACHE_MAX_BLOCK bytes, at a recorded block start, whose size the next header
   * confirms, with room in its size's cache. Anything else takes freeSlow.
   */
  private freeMedium(ptr: number): void {
    if (typeof ptr === 'number') {
      const h = ptr - this.base - Block.HEADER;
      if ((h >>> 0) === h && h >= Block.HEADER && h < this.top && (h & Flag.MASK) === Block.HEADER &&
          (this.starts[h >>> 9]! & (1 << ((h >>> 4) & 31))) !== 0) {
        const mem = this.mem;
        const w = h >>> 2;
        const size = mem[w + Word.SIZE]!;
        const c = size >>> 4;
        if (size <= CACHE_MAX_BLOCK && (size & Flag.MASK) === 0 && size !== 0 && h + size <= this.top - Block.HEADER &&
            mem[(h + size) >>> 2] === size && this.cacheCounts[c]! < CACHE_DEPTH) {
          this.inUse -= size;
          mem[w + Word.SIZE] = size | Flag.CACHED;
          mem[w + Word.NEXT_FREE] = this.cacheHeads[c]!;
          this.cacheHeads[c] = h;
          this.cacheCounts[c]!++;
          return;
        }
      }
    }
    this.freeSlow(ptr);
  }

  protected freeSlow(ptr: number): void {
    if (typeof ptr !== 'number') checkAddress('free', ptr);
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
    if (size <= CACHE_MAX_BLOCK) {
      const c = size >>> 4;
      if (this.cacheCounts[c]! < this.cacheDepth) {
        mem[w + Word.SIZE] = size | Flag.CACHED;
        mem[w + Word.NEXT_FREE] = this.cacheHeads[c]!;
        this.cacheHeads[c] = h;
        this.cacheCounts[c]!++;
        return;
      }
    }
    this.release(h, size, true);
  }

  /** free() of slot `at` (page * MAX_SLOTS + slot, from SmallPages.locate) at `ptr`. */
  private freeSmall(ptr: number, at: number): void {
    const page = (at / Page.MAX_SLOTS) | 0;
    const slot = at & (Page.MAX_SLOTS - 1);
    if (this.small.isFree(page, slot)) throw doubleFree('free', ptr);
    if (this.smallNamed !== 0 && this.smallNames.delete(ptr)) this.smallNamed--;
    this.owners?.forget(ptr);
    this.inUse -= this.small.slotSize(page);
    this.small.releaseSlot(page, slot);
  }

  /** The slot size of the small block in use at `ptr`, or -1 when `ptr` is not a small block's slot; a free one is an error. */
  private smallLive(ptr: number, op: string): number {
    const at = this.small.locate(ptr - this.small.base);
    if (at < 0) return -1;
    const page = (at / Page.MAX_SLOTS) | 0;
    if (this.small.isFree(page, at & (Page.MAX_SLOTS - 1))) throw doubleFree(op, ptr);
    return this.small.slotSize(page);
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

  /**
   * Makes used block `h` of `size` bytes free: merges it with free neighbours, files it, and
   * (when `trim`) gives back the top if it has become too large. Stats for the used block are
   * the caller's.
   */
  private release(h: number, size: number, trim: boolean): void {
    const mem = this.mem;
    const n = h + size;
    // Both neighbours and their list links are proved before either is taken off its list, so a
    // bad one changes nothing.
    const nsize = this.freeMergeable(n);
    const p = this.freeBefore(h);
    if (p !== 0 && !this.lists.linked(p, h - p)) this.corruptedList(p);
    if (nsize !== 0) {
      if (!this.lists.remove(n, nsize)) this.corruptedList();
      this.clearStart(n);
      size += nsize;
    }
    if (p !== 0) {
      const prevSize = h - p;
      if (!this.lists.remove(p, prevSize)) this.corruptedList();
      this.clearStart(h);
      h = p;
      size += prevSize;
    }
    mem[(h >>> 2) + Word.SIZE] = size | Flag.FREE;
    mem[(h + size) >>> 2] = size;
    this.lists.insert(h, size);
    if (trim && size > this.trimThreshold && h + size === this.top - Block.HEADER) this.trimTop(h, size, this.growthStep());
  }

  override realloc(ptr: number, size: number, name?: string): number {
    checkRealloc(ptr, size, name);
    if (ptr === 0) return this.malloc(size, name);
    const slotSize = this.smallLive(ptr, 'realloc');
    if (slotSize >= 0) return this.reallocSmall(ptr, slotSize, size, name);
    const h = ptr - this.base - Block.HEADER;
    if (!(h >= Block.HEADER && h < this.top)) return this.reallocOutsideHeap(ptr, size, name);
    const sizeWord = this.liveWord(h, ptr, 'realloc');
    const current = sizeWord & Flag.SIZE_MASK;
    if (size === 0) {
      this.free(ptr);
      return 0;
    }
    // A block in the arena stays there while it can grow in place, past largeThreshold too (as in
    // glibc): a buffer grown step by step at the top of the heap is never copied.
    if (size > MAX_ARENA_REQUEST) return this.move(ptr, current - Block.HEADER, size, name);
    const need = blockSize(size);
    const mem = this.mem;
    const w = h >>> 2;

    if (need <= current) {
      const split = current - need >= Block.MIN;
      // The tail merges with a free next block: that block is proved before the tail is written.
      if (split) this.freeMergeable(h + current);
      // Scribbled: the bytes past the new size, so that whatever the block regains later reads 0xAA.
      if (this.scribble === true) this.bytesView.fill(SCRIBBLE_BYTE, h + Block.HEADER + size, h + (split ? need : current));
      if (split) {
        // Shrink: the tail becomes a block of its own, freed (and merged with a free next block).
        const t = h + need;
        const tail = current - need;
        mem[w + Word.SIZE] = need | (sizeWord & (Flag.NAMED | Flag.OWNED));
        mem[t >>> 2] = need;
        mem[(t >>> 2) + Word.SIZE] = tail;
        mem[(t + tail) >>> 2] = tail;
        this.markStart(t);
        this.inUse -= tail;
        this.release(t, tail, true);
      }
      if (name !== undefined) this.nameBlock(h, name);
      return ptr;
    }

    // Grow into the next block when it is free and large enough. At the top of the heap (the next
    // block is the sentinel, or a free block just before it), commit more memory first.
    const n = h + current;
    let nsize = this.freeSizeAt(n);
    const atTop = n === this.top - Block.HEADER || (nsize !== 0 && n + nsize === this.top - Block.HEADER);
    // Past largeThreshold, only the last block grows in place (commit is cheaper than a copy);
    // any other moves to a mapping of its own, which mremap then resizes without copying.
    if (size >= this.largeThreshold && !atTop) return this.move(ptr, current - Block.HEADER, size, name);
    if (current + nsize < need && atTop && this.growTop(need - current) !== 0) nsize = this.freeSizeAt(n);
    if (nsize !== 0 && current + nsize >= need) {
      if (!this.lists.remove(n, nsize)) this.corruptedList();
      this.clearStart(n);
      let total = current + nsize;
      const rest = total - need;
      if (rest >= Block.MIN) {
        const r = h + need;
        mem[r >>> 2] = need;
        mem[(r >>> 2) + Word.SIZE] = rest | Flag.FREE;
        mem[(r + rest) >>> 2] = rest;
        this.markStart(r);
        this.lists.insert(r, rest);
        total = need;
      } else {
        mem[(h + total) >>> 2] = total;
      }
      mem[w + Word.SIZE] = total | (sizeWord & (Flag.NAMED | Flag.OWNED));
      if ((this.inUse += total - current) > this.peakInUse) this.peakInUse = this.inUse;
      if (this.scribble === true) this.bytesView.fill(SCRIBBLE_BYTE, h + current, h + total);
      if (name !== undefined) this.nameBlock(h, name);
      return ptr;
    }
    return this.move(ptr, current - Block.HEADER, size, name);
  }

  /** realloc of the small block at `ptr`, in a slot of `slotSize` bytes: it stays while its class does. */
  private reallocSmall(ptr: number, slotSize: number, size: number, name: string | undefined): number {
    if (size === 0) {
      this.free(ptr);
      return 0;
    }
    // It stays while its class holds it and is at most twice as large as it needs (a shrink to a
    // much smaller class moves, so that a large slot is not held for a few bytes).
    if (size <= slotSize && 2 * classSize[classOfRequest[(size + 15) >>> 4]!]! >= slotSize) {
      if (this.scribble && size < slotSize) {
        const o = ptr - this.small.base;
        this.small.bytes.fill(SCRIBBLE_BYTE, o + size, o + slotSize);
      }
      if (name !== undefined) this.nameSmall(ptr, name);
      return ptr;
    }
    return this.move(ptr, slotSize, size, name);
  }

  // ---------------------------------------------------------------------------------------------
  // Validation.

  /**
   * Whether block `h` of `size` bytes ends inside the heap, at a recorded start (or the sentinel)
   * whose header records that size.
   */
  private sizeAgrees(h: number, size: number): boolean {
    const n = h + size;
    return size >= Block.MIN && n <= this.top - Block.HEADER && this.mem[n >>> 2] === size &&
      (n === this.top - Block.HEADER || this.isStart(n));
  }

  /** Whether offset `o` is a recorded block start inside the heap. */
  protected isStart(o: number): boolean {
    return (o >>> 0) === o && o < this.top && (o & Flag.MASK) === Block.HEADER && (this.starts[o >>> 9]! & (1 << ((o >>> 4) & 31))) !== 0;
  }

  private markStart(o: number): void {
    this.starts[o >>> 9]! |= 1 << ((o >>> 4) & 31);
    this.blockCount++;
  }

  private clearStart(o: number): void {
    this.starts[o >>> 9]! &= ~(1 << ((o >>> 4) & 31));
    this.blockCount--;
  }

  /**
   * Proves the size word of block `h` (a recorded start): its size ends inside the heap at a header
   * that records it. (Its prev size is proved where it is followed, in freeBefore.)
   */
  private checkHeader(h: number, sizeWord: number): void {
    const size = sizeWord & Flag.SIZE_MASK;
    if (!this.sizeAgrees(h, size)) this.corrupted(h, `its size ${size} does not match the next header's record of it`);
  }

  /**
   * The size of block `n`, a recorded start or the sentinel, when it is free (on a list); 0 when it
   * is in use or cached. A free block whose header does not prove out is corruption.
   */
  private freeSizeAt(n: number): number {
    const word = this.mem[(n >>> 2) + Word.SIZE]!;
    if ((word & Flag.FREE) === 0) return 0;
    const size = word & Flag.SIZE_MASK;
    if ((word & Flag.MASK) !== Flag.FREE || !this.isStart(n) || !this.sizeAgrees(n, size)) {
      this.corrupted(n, 'a free block\'s header is damaged (was it written after free?)');
    }
    return size;
  }

  /** freeSizeAt(n), with a free block's list links proved too: what a merge with it will follow. */
  private freeMergeable(n: number): number {
    const size = this.freeSizeAt(n);
    if (size !== 0 && !this.lists.linked(n, size)) this.corruptedList(n);
    return size;
  }

  /** The free block just before block `h`, or 0 when that block is in use, cached or absent. */
  private freeBefore(h: number): number {
    const prevSize = this.mem[h >>> 2]!;
    if (prevSize === 0) {
      if (h !== Block.HEADER) this.corrupted(h, 'its prev size is 0, but it is not the first block');
      return 0;
    }
    const p = h - prevSize;
    if (!this.isStart(p)) this.corrupted(h, `its prev size ${prevSize} does not lead to a block start`);
    const word = this.mem[(p >>> 2) + Word.SIZE]!;
    if ((word & Flag.SIZE_MASK) !== prevSize) this.corrupted(h, `its prev size ${prevSize} disagrees with the block before it`);
    if ((word & Flag.FREE) === 0) return 0;
    if ((word & Flag.MASK) !== Flag.FREE) this.corrupted(p, 'a free block\'s header is damaged (was it written after free?)');
    return p;
  }

  /** The link of cached block `h`, the head of the cache of class `c`, once proved (see cacheLink). */
  private cacheNext(h: number, c: number): number {
    return this.cacheLink(h, c, this.cacheCounts[c]! - 1);
  }

  /**
   * The link of block `h` in the cache of class `c`, with `left` blocks after it by the count, once
   * proved: `h` is a cached block of that size, and its link is 0 where the count ends, else a
   * recorded start (whose own header is proved when it is reached).
   */
  protected cacheLink(h: number, c: number, left: number): number {
    const mem = this.mem;
    if (!this.isStart(h) || mem[(h >>> 2) + Word.SIZE] !== ((c << 4) | Flag.CACHED)) {
      this.corrupted(h, `a block in the ${c << 4}-byte cache is not a cached block of that size (was it written after free?)`);
    }
    const next = mem[(h >>> 2) + Word.NEXT_FREE]!;
    if (next === 0 ? left !== 0 : left <= 0 || !this.isStart(next)) {
      this.corrupted(h, `its cache link ${next} is not a cached block (was it written after free?)`);
    }
    return next;
  }

  /** The size word of the live block at header offset `h` (inside the heap), or a HeapError. */
  private liveWord(h: number, ptr: number, op: string): number {
    if (this.destroyed) throw destroyedError();
    if ((h & Flag.MASK) !== Block.HEADER || (this.starts[h >>> 9]! & (1 << ((h >>> 4) & 31))) === 0) {
      throw invalidPointer(op, ptr);
    }
    const sizeWord = this.mem[(h >>> 2) + Word.SIZE]!;
    this.checkHeader(h, sizeWord);
    if ((sizeWord & (Flag.FREE | Flag.CACHED)) !== 0) throw doubleFree(op, ptr);
    return sizeWord;
  }

  /** free() of an address outside the heap: NULL, a large block, or an error. */
  private freeOutsideHeap(ptr: number): void {
    checkAddress('free', ptr);
    if (this.destroyed) throw destroyedError();
    if (ptr === 0) return;
    const h = ptr - this.base - Block.HEADER;
    if (h >= Block.HEADER && h < this.top) this.liveWord(h, ptr, 'free'); // throws: not a live block
    const block = this.large.get(ptr);
    if (block === undefined) throw this.destroyed ? destroyedError() : invalidPointer('free', ptr);
    this.large.delete(ptr);
    this.owners?.forget(ptr);
    const size = block.mapping.size;
    this.largeBytes -= size;
    this.inUse -= size;
    unmapMemory(block.mapping);
    this.munmapCalls++;
    // Like glibc: a program that frees a buffer of this size will likely ask for one again, and
    // from now on it comes from the heap.
    if (size >= this.largeThreshold && size < LARGE_THRESHOLD_MAX) {
      this.largeThreshold = size + 1;
      this.updateTrimThreshold();
    }
  }

  private largeBlock(ptr: number, op: string): LargeBlock {
    const block = this.large.get(ptr);
    if (block !== undefined) return block;
    const h = ptr - this.base - Block.HEADER;
    if (h >= Block.HEADER && h < this.top) this.liveWord(h, ptr, op);
    throw this.destroyed ? destroyedError() : invalidPointer(op, ptr);
  }

  private reallocOutsideHeap(ptr: number, size: number, name: string | undefined): number {
    const block = this.largeBlock(ptr, 'realloc');
    if (size === 0) {
      this.freeOutsideHeap(ptr);
      return 0;
    }
    const capacity = block.mapping.size;
    if (name !== undefined) block.name = name;
    // Stay when the mapping still fits and would not be more than half empty.
    if (size <= capacity && size > capacity / 2) {
      if (this.scribble) block.bytes.fill(SCRIBBLE_BYTE, size);
      return ptr;
    }
    if (size >= this.largeThreshold) {
      const moved = this.remapLarge(ptr, block, size);
      if (moved !== 0) return moved;
    }
    return this.move(ptr, capacity, size, name ?? block.name);
  }

  /** Resizes a large block's mapping in the kernel (no copy, never two at once); 0 if it cannot. */
  private remapLarge(ptr: number, block: LargeBlock, size: number): number {
    const length = alignPage(size);
    if (this.mapped() - block.mapping.size + length > this.limit) return 0;
    const remapped = remapMemory(block.mapping, length);
    if (remapped === null) return 0;
    this.mmapCalls++;
    const old = block.mapping.size;
    this.large.delete(ptr);
    const bytes = new Uint8Array(remapped.buffer);
    this.large.set(remapped.address, { mapping: remapped, bytes, name: block.name });
    this.owners?.moved(ptr, remapped.address);
    this.largeBytes += length - old;
    if ((this.inUse += length - old) > this.peakInUse) this.peakInUse = this.inUse;
    if (this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
    if (this.scribble && length > old) bytes.fill(SCRIBBLE_BYTE, old);
    return remapped.address;
  }

  /** malloc, copy `min(oldUsable, size)` bytes, free. 0 (old block untouched) if malloc fails. */
  private move(ptr: number, oldUsable: number, size: number, name: string | undefined): number {
    const moved = this.malloc(size, name ?? this.nameAt(ptr));
    if (moved === 0) return 0;
    const n = Math.min(oldUsable, size);
    const from = ptr - this.small.base;
    const to = moved - this.small.base;
    // Slot to slot (a small block changing class) or block to block in the medium arena: one
    // copyWithin over the arena's view, no views made.
    const a = ptr - this.base;
    const b = moved - this.base;
    if (from >= 0 && from < this.small.top && to >= 0 && to < this.small.top) this.small.bytes.copyWithin(to, from, from + n);
    else if (a >= 0 && a < this.top && b >= 0 && b < this.top) this.bytesView.copyWithin(b, a, a + n);
    else this.viewOf(moved, n).set(this.viewOf(ptr, n));
    this.owners?.moved(ptr, moved);
    this.free(ptr);
    return moved;
  }

  /** `n` bytes at a validated address, as a view. */
  private viewOf(ptr: number, n: number): Uint8Array {
    const o = ptr - this.small.base;
    if (o >= 0 && o < this.small.top) return this.small.bytes.subarray(o, o + n);
    const large = this.large.get(ptr);
    if (large !== undefined) return large.bytes.subarray(0, n);
    const offset = ptr - this.base;
    return this.bytesView.subarray(offset, offset + n);
  }

  private nameAt(ptr: number): string | undefined {
    if (this.smallNames.has(ptr)) return this.smallNames.get(ptr);
    const large = this.large.get(ptr);
    if (large !== undefined) return large.name;
    return this.names.get(ptr - this.base - Block.HEADER);
  }

  /** Every call after destroy() throws ERR_HEAP_DESTROYED (the base class's helpers ask here first). */
  protected override assertLive(): void {
    if (this.destroyed) throw destroyedError();
  }

  protected override markOwned(ptr: number): void {
    // A small block needs no mark: while any block is owned, small frees take the slow path.
    if (this.small.locate(ptr - this.small.base) >= 0) return;
    const h = ptr - this.base - Block.HEADER;
    if (h >= Block.HEADER && h < this.top) this.mem[(h >>> 2) + Word.SIZE]! |= Flag.OWNED;
  }

  private nameSmall(ptr: number, name: string): void {
    if (name === '') this.smallNames.delete(ptr);
    else this.smallNames.set(ptr, name);
    this.smallNamed = this.smallNames.size;
  }

  private nameBlock(h: number, name: string): void {
    const w = (h >>> 2) + Word.SIZE;
    if (name === '') {
      this.mem[w]! &= ~Flag.NAMED;
      this.names.delete(h);
    } else {
      this.mem[w]! |= Flag.NAMED;
      this.names.set(h, name);
    }
  }

  /** The bytes in use that check() must find; undefined where other threads may be changing it. */
  protected countedInUse(): number | undefined {
    return this.inUse;
  }

  protected corrupted(h: number, what: string): never {
    throw new HeapError('ERR_HEAP_CORRUPTED',
      `heap corrupted at ${hex(this.base + h)}: ${what}`, this.base + h);
  }

  /** A free-list link of `block` (by default, the one the lists last found damaged) is bad. */
  protected corruptedList(block = this.lists.damaged): never {
    return this.corrupted(block, 'its free-list links point outside the heap or disagree (was it written after free?)');
  }

  // ---------------------------------------------------------------------------------------------
  // Growth and trimming: the only paths that call the kernel.

  /** The growth step for the heap's current size. */
  protected growthStep(): number {
    const step = alignPage(this.top / GROWTH_DIVISOR);
    return step < GROWTH_MIN ? GROWTH_MIN : step > GROWTH_MAX ? GROWTH_MAX : step;
  }

  protected updateTrimThreshold(): void {
    this.trimThreshold = Math.max(TRIM_MIN, 2 * this.growthStep(), 2 * this.largeThreshold);
  }

  /**
   * Finds room for a block of `need` bytes when the free lists have none: first by flushing the
   * caches (their blocks may merge into one large enough), then by growing the heap. Returns the
   * block, off its list, or 0.
   */
  private growFor(need: number): number {
    if (this.cachedBlocks() > 0) {
      this.flushCaches();
      const found = this.lists.takeFit(need);
      if (found !== 0) return found > 0 ? found : this.corruptedList();
    }
    const h = this.growTop(need);
    if (h === 0) return 0;
    if (!this.lists.remove(h, this.mem[(h >>> 2) + Word.SIZE]! & Flag.SIZE_MASK)) this.corruptedList();
    return h;
  }

  /**
   * Commits memory at the top so that the last block is free and at least `need` bytes. Returns
   * that block's offset (on its free list), or 0 when no memory can be had.
   */
  private growTop(need: number): number {
    if (this.destroyed) throw destroyedError();
    if (this.reservation === null && !this.reserveArena()) return 0;
    const arena = this.reservation!;
    const mem = this.mem;
    // A free last block already counts towards the need.
    const last = this.top > 0 ? this.freeBefore(this.top - Block.HEADER) : 0;
    const have = last === 0 ? 0 : this.top - Block.HEADER - last;
    const overhead = this.top === 0 ? 2 * Block.HEADER : 0;
    // The growth step, or just what the request needs when the step would pass a limit.
    const least = alignPage(need - have + overhead);
    let step = Math.max(least, this.growthStep());
    if (this.top + step > arena.size || this.mapped() + step > this.limit) step = least;
    if (this.top + step > arena.size || this.mapped() + step > this.limit) return 0;
    this.mmapCalls++;
    if (!commit(arena, this.top, step)) return 0;

    const oldTop = this.top;
    this.top += step;
    this.lists.limit = this.top;
    this.ensureStartsCapacity();
    if (this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
    // The new space becomes one block: at the old sentinel's place, or after the 8-byte pad.
    const h = oldTop === 0 ? Block.HEADER : oldTop - Block.HEADER;
    const size = this.top - Block.HEADER - h;
    if (oldTop === 0) mem[h >>> 2] = 0;
    mem[(h >>> 2) + Word.SIZE] = size;
    mem[(this.top - Block.HEADER) >>> 2] = size;
    mem[((this.top - Block.HEADER) >>> 2) + Word.SIZE] = 0; // the sentinel: size 0, used
    this.markStart(h);
    this.updateTrimThreshold();
    this.release(h, size, false);
    const lastSize = mem[(this.top - Block.HEADER) >>> 2]!;
    return this.top - Block.HEADER - lastSize;
  }

  /** Gives back the top of free block `h` (the last one) beyond `keep` bytes, in whole pages. */
  private trimTop(h: number, size: number, keep: number): void {
    const page = getPageSize();
    let newTop = alignPage(h + keep + 2 * Block.HEADER);
    if (h === Block.HEADER && keep === 0) newTop = 0;
    else if (newTop - Block.HEADER - h < Block.MIN) newTop += page;
    if (newTop >= this.top) return;
    if (!this.lists.remove(h, size)) this.corruptedList();
    decommit(this.reservation!, newTop, this.top - newTop);
    this.munmapCalls++;
    this.top = newTop;
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
    let n = 0;
    for (let c = 0; c < this.cacheCounts.length; c++) n += this.cacheCounts[c]!;
    return n;
  }

  /** Moves every cached block to the free lists, merging it with its free neighbours. */
  protected flushCaches(): void {
    // Every cache is proved whole first, so a damaged one is reported before any block moves.
    for (let c = 0; c < this.cacheHeads.length; c++) {
      for (let h = this.cacheHeads[c]!, left = this.cacheCounts[c]! - 1; h !== 0; left--) h = this.cacheLink(h, c, left);
    }
    for (let c = 0; c < this.cacheHeads.length; c++) {
      let h = this.cacheHeads[c]!;
      while (h !== 0) {
        const next = this.mem[(h >>> 2) + Word.NEXT_FREE]!;
        this.cacheHeads[c] = next;
        this.cacheCounts[c]!--;
        this.mem[(h >>> 2) + Word.SIZE] = c << 4;
        this.release(h, c << 4, false);
        h = next;
      }
    }
  }

  /** Releases every free byte at the top of the heap; all of it when nothing is in use there. */
  override trim(): void {
    if (this.destroyed) throw destroyedError();
    this.small.trim();
    if (this.top === 0) return;
    this.flushCaches();
    const last = this.freeBefore(this.top - Block.HEADER);
    if (last !== 0) this.trimTop(last, this.top - Block.HEADER - last, 0);
  }

  private reserveArena(): boolean {
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
  private ensureStartsCapacity(): void {
    const needWords = Math.ceil(this.top / 16 / 32);
    if (needWords <= this.starts.length) return;
    const grown = new Int32Array(Math.max(needWords, 2 * this.starts.length, 1024));
    grown.set(this.starts);
    this.starts = grown;
    this.lists.starts = grown;
  }

  protected mallocLarge(size: number, name: string | undefined): number {
    if (this.destroyed) throw destroyedError();
    const length = alignPage(Math.max(size, 1));
    if (length > MAX_VIEW_BYTES || this.mapped() + length > this.limit) return this.outOfMemory('malloc', size);
    this.mmapCalls++;
    const mapping = mapMemory(length);
    if (mapping === null) return this.outOfMemory('malloc', size);
    const bytes = new Uint8Array(mapping.buffer);
    this.large.set(mapping.address, { mapping, bytes, name: name ?? '' });
    this.largeBytes += length;
    if ((this.inUse += length) > this.peakInUse) this.peakInUse = this.inUse;
    if (this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
    if (this.scribble) bytes.fill(SCRIBBLE_BYTE);
    return mapping.address;
  }

  protected mapped(): number {
    return this.top + this.largeBytes + this.small.committed;
  }

  // ---------------------------------------------------------------------------------------------
  // The rest of the public API.

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

  override usableSize(ptr: number): number {
    checkAddress('usableSize', ptr);
    const slotSize = this.smallLive(ptr, 'usableSize');
    if (slotSize >= 0) return slotSize;
    const h = ptr - this.base - Block.HEADER;
    if (h >= Block.HEADER && h < this.top) return (this.liveWord(h, ptr, 'usableSize') & Flag.SIZE_MASK) - Block.HEADER;
    return this.largeBlock(ptr, 'usableSize').mapping.size;
  }

  override bytes(ptr: number, length?: number): Uint8Array {
    if (length !== undefined) checkSize('bytes', 'length', length);
    const usable = this.usableSize(ptr);
    const n = length ?? usable;
    if (n > usable) throw new RangeError(`bytes(${hex(ptr)}, ${n}): the block has only ${usable} usable bytes`);
    return this.viewOf(ptr, n);
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
    this.names.clear();
    this.top = 0;
    this.largeBytes = 0;
    this.inUse = 0;
    this.blockCount = 0;
    this.destroyed = true;
  }
}

function invalidPointer(op: string, ptr: number): HeapError {
  return new HeapError('ERR_INVALID_POINTER',
    `${op}(${hex(ptr)}): not an address this heap returned (expected the start of a live block's data)`, ptr);
}

function doubleFree(op: string, ptr: number): HeapError {
  return new HeapError('ERR_DOUBLE_FREE', `${op}(${hex(ptr)}): the block is already free`, ptr);
}
