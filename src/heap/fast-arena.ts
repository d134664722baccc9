// The fast preset's state and its medium arena's block layer: every field of the engine, declared
// once here, and the operations on blocks of the arena that the rest is built from.
//
// The medium arena holds requests too large for the small-object pages (src/heap/pages.ts) and
// below `largeThreshold`: blocks with 8-byte headers and boundary tags (src/layout/fast.ts) on
// segregated free lists (src/strategies/tlsf.ts), with small-block caches. It is reserved once
// (1 GiB, PROT_NONE) and committed from its start as the heap grows (./fast-growth.ts), so it is one
// contiguous range [0, top) with one typed array over it: an address is `base + offset`, a header
// one array read, and a sentinel header (size 0, used) ends it.
//
// Invariants (FastCheck.check proves them): blocks tile [8, top - 8); bit (offset >>> 4) of `starts`
// is set exactly where a block starts; every block's size is recorded again as the next header's
// prev size; no two free blocks are neighbours; a free block is on the list of its class, a cached
// one on the cache of its size, and nothing else is on either.
//
// Every value read from native memory (a size, a prev size, a cache or free-list link) is untrusted:
// a write after free or an overflow can put any bytes there. Before the heap reads or writes
// through one, it proves it against state native code cannot reach: an offset must be a recorded
// block start below `top`, in the state the structure it came from promises (cached of the cache's
// size, free of the list's class, with a matching link back), and a size must end at a recorded
// start whose prev size agrees. Walks are bounded by the counts kept in JavaScript. Anything else
// is ERR_HEAP_CORRUPTED, raised before any write.

import { ReleasedRanges } from './released.js';
import { getPageSize, type Mapping, type Reservation } from '../os/memory.js';
import { Block, Flag, Word } from '../layout/fast.js';
import { SmallPages } from './pages.js';
import { SegregatedLists } from '../strategies/tlsf.js';
import { HeapError, destroyedError, hex } from './errors.js';
import { Heap, type HeapOperations } from './heap.js';

/** Address space to reserve for the arena, and the least we accept when the kernel refuses. */
// 1 GiB rather than the 4 GiB a view may span: V8 reads typed arrays over more than 2 GiB about
// half as fast (measured on Node 20). Blocks that do not fit go to mappings of their own.
export const ARENA_BYTES = 2 ** 30;
export const ARENA_MIN_BYTES = 16 * 1024 * 1024;
/** Large requests: the threshold starts here and may rise to the maximum. */
export const LARGE_THRESHOLD_START = 256 * 1024;
export const LARGE_THRESHOLD_MAX = 32 * 1024 * 1024;
/** A free top block is trimmed only above this many bytes, and above twice the growth step. */
export const TRIM_MIN = 128 * 1024;
/**
 * The most the trim threshold rises to when the arena grows back what a trim gave back (as glibc's
 * does when it frees a mapped chunk): a program whose heap fills and empties in cycles keeps up to
 * this much at the top rather than fault it in every cycle.
 */
export const TRIM_ADAPTED_MAX = 64 * 1024 * 1024;
/**
 * Before the arena grows, every free block whose whole pages (past its header, before its end)
 * span at least this many bytes gives them back to the kernel (FastGrowth.purgeFreeBlocks).
 */
export const PURGE_MIN = 64 * 1024;

/**
 * Small-block caches: a freed block of at most CACHE_MAX_BLOCK bytes is parked, unmerged, on a
 * LIFO list of its exact size, up to CACHE_DEPTH blocks a size, and handed straight back by the
 * next malloc of that size. The caches are flushed into the free lists before the heap grows.
 */
export const CACHE_MAX_BLOCK = 2048;
export const CACHE_MAX_REQUEST = CACHE_MAX_BLOCK - Block.HEADER;
export const CACHE_DEPTH = 32;
/**
 * The same limits for the hot paths, as a const enum whose values tsc writes into the code: V8 reads
 * an imported `const` through a module cell, checked for the temporal dead zone, at every use.
 */
export const enum Cache {
  MAX_BLOCK = 2048,
  MAX_REQUEST = 2048 - Block.HEADER,
  DEPTH = 32,
}
/** Size classes of the caches: block size / 16, up to CACHE_MAX_BLOCK. */
export const CACHE_CLASSES = CACHE_MAX_BLOCK / 16 + 1;
/**
 * The wide cache: up to CACHE_WIDE_SLOTS freed blocks above CACHE_MAX_BLOCK and up to
 * CACHE_WIDE_MAX bytes (the most the large-block threshold rises to: any block of the arena a
 * request made) are kept whole (flagged CACHED, their offsets in JavaScript, oldest first) for a
 * request of exactly their size; a block freed into a full cache sends the oldest to the free lists.
 * A request the lists could serve only past the touched top, growth, the peak rule, a realloc that
 * grows or moves, and trim() merge them all back first. A block above CACHE_WIDE_KEEP is held only
 * while a slot is free and until the first request it does not serve. A block whose free would
 * trim the top (with the free and held blocks below it) is not held: its memory goes back.
 */
export const CACHE_WIDE_SLOTS = 4;
export const CACHE_WIDE_MAX = LARGE_THRESHOLD_MAX;
/** The largest block the wide cache keeps past a request it does not serve. */
export const CACHE_WIDE_KEEP = 64 * 1024;

export const SCRIBBLE_BYTE = 0xaa;
/** What scribble fills a freed block's data with (past the list links the block keeps there). */
export const FREED_BYTE = 0xdd;


export const EMPTY_WORDS = new Uint32Array(0);
export const EMPTY_BYTES = new Uint8Array(0);

/**
 * A block in a mapping of its own. Data starts at the mapping, so it is page-aligned. `bytes` is
 * empty until something in JavaScript reads or writes the block (FastLarge.largeView): a program
 * that hands a large buffer to C never pays for a view of it.
 */
export interface LargeBlock {
  readonly mapping: Mapping;
  bytes: Uint8Array;
  name: string;
}

/** The fast preset's state and its arena's block operations; ./fast-growth.ts and on build on it. */
export abstract class FastArena extends Heap implements HeapOperations {
  // The fields the page paths of malloc and free read come first: V8 keeps an object's first
  // fields in the object itself and the rest behind one more load (measured: one field more ahead
  // of them cost the 64-byte pair 10 instructions).
  /** Small blocks (in pages). */
  protected small = new SmallPages(this.scribble ? FREED_BYTE : -1);
  /** smallNames.size, as a field: the slow paths ask the map only when it holds any name. */
  protected smallNamed = 0;
  protected inUse = 0;
  protected peakInUse = 0;
  protected reservation: Reservation | null = null;
  /** The arena's address; 0 until reserved. */
  protected base = 0;
  protected mem: Uint32Array = EMPTY_WORDS;
  protected bytesView: Uint8Array = EMPTY_BYTES;
  /** Where the arena's blocks end: the sentinel header is its last 8 bytes (committedTop says what is committed). */
  protected top = 0;
  /** Bit (offset >>> 4) is set where a block header starts. */
  protected starts: Int32Array<ArrayBufferLike> = new Int32Array(0);
  protected readonly lists = new SegregatedLists(EMPTY_WORDS);
  /** Per size class (block size / 16): the first cached block, and how many are cached. */
  protected cacheHeads: Uint32Array<ArrayBufferLike> = new Uint32Array(CACHE_CLASSES);
  protected cacheCounts: Int32Array<ArrayBufferLike> = new Int32Array(CACHE_CLASSES);
  /** flushCaches' list of the sizes whose caches hold blocks. */
  protected readonly cachesInUse = new Int32Array(CACHE_CLASSES);
  /** The wide cache's blocks (header offsets) and how many it holds. */
  protected readonly wide = new Int32Array(CACHE_WIDE_SLOTS);
  protected wideCount = 0;
  /** How many of them are larger than CACHE_WIDE_KEEP. */
  protected wideLarge = 0;
  /** Names of named blocks, by header offset; touched only for blocks flagged Flag.NAMED. */
  protected readonly names = new Map<number, string>();
  /** Names of named small blocks, by address; while it holds any, frees of small blocks take the slow path. */
  protected readonly smallNames = new Map<number, string>();
  protected readonly large = new Map<number, LargeBlock>();
  /** Large blocks' addresses whose mappings were given back: a second free of one is a double free. */
  protected readonly released = new ReleasedRanges();
  /**
   * The medium block an address inside a block was last found in (blockAt), and its size word
   * then: while the block is still recorded there with that word, another address in it needs no
   * scan of the start bitmap. 0: none.
   */
  protected lastSpan = 0;
  protected lastSpanWord = 0;
  /** Requests of at least this many bytes get mappings of their own. */
  protected largeThreshold = LARGE_THRESHOLD_START;
  /** A free block at the top larger than this is trimmed. */
  protected trimThreshold = TRIM_MIN;
  /** Bytes the last trim gave back, until the arena grows again; and the floor of trimThreshold that regrowth raised. */
  protected lastTrim = 0;
  protected trimFloor = 0;
  protected destroyed = false;
  /** Blocks a size's cache may hold: CACHE_DEPTH, or 0 where caching is off (the shared preset). */
  protected cacheDepth = CACHE_DEPTH;
  protected largeBytes = 0;
  protected peakMapped = 0;
  /** Blocks in the arena, used, cached or free (changes only when blocks split or merge). */
  protected blockCount = 0;
  protected mmapCalls = 0;
  protected munmapCalls = 0;
  /**
   * Where the arena's touched memory ends: the end of the highest block handed out since the
   * arena last shrank, or the top before its last growth. Committed memory past it was never
   * written but for the last page (the sentinel) and the header just past it, so the kernel holds
   * none of it: see mapped().
   */
  protected touchedTop = 0;
  /**
   * Committed bytes from the arena's start: `top`, and past it up to one growth step committed
   * ahead (one mmap call serves many growths) but not yet made blocks, so never written and held
   * by the kernel for none of it. The shared preset keeps it equal to `top`.
   */
  protected committedTop = 0;
  /** Byte p of it is 1 where the arena's page p lies inside a free block and was given back (purge). */
  protected purged: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  /** Bytes of the pages marked in `purged`. */
  protected purgedBytes = 0;
  /** A free block whose inner pages span at least this many bytes gives them back. */
  protected readonly purgeMin = PURGE_MIN;
  /** The kernel's page size, and its log2 (asked at construction, not when the module loads). */
  protected readonly pageBytes = getPageSize();
  protected readonly pageShift = 31 - Math.clz32(this.pageBytes);

  /** Gives back the top of free block `h` (the last one) beyond `keep` bytes (./fast-growth.ts). */
  protected abstract trimTop(h: number, size: number, keep: number): void;
  /** The growth step for the heap's current size (./fast-growth.ts). */
  protected abstract growthStep(): number;

  /**
   * Writes block `h` of `size` bytes: its size word (size and flags), the next header's record of
   * its size, and its start bit. Its own prev size is the caller's.
   */
  protected makeBlock(h: number, size: number, sizeWord: number): void {
    this.mem[(h >>> 2) + Word.SIZE] = sizeWord;
    this.mem[(h + size) >>> 2] = size;
    this.markStart(h);
  }

  /**
   * Splits the `need + rest` bytes at `h` after `need`: the `rest` become a free block of their
   * own, on its list. Block `h`'s own size word is the caller's to write.
   */
  protected splitOff(h: number, need: number, rest: number): void {
    const r = h + need;
    this.mem[(r >>> 2) + Word.PREV_SIZE] = need;
    this.makeBlock(r, rest, rest | Flag.FREE);
    this.lists.insert(r, rest);
  }

  protected markStart(o: number): void {
    this.starts[o >>> 9]! |= 1 << ((o >>> 4) & 31);
    this.blockCount++;
  }

  protected clearStart(o: number): void {
    this.starts[o >>> 9]! &= ~(1 << ((o >>> 4) & 31));
    this.blockCount--;
  }

  /**
   * Makes block `h` of `size` bytes free: merges it with free neighbours, files it, and (when
   * `trim`) gives back the top if it has become too large. The block is in use, or on no list
   * (new space, a tail split off): its own size word is not read. Stats for a used block are the
   * caller's.
   */
  protected release(h: number, size: number, trim: boolean): void {
    const mem = this.mem;
    const n = h + size;
    // Both neighbours and their list links are proved before either is taken off its list, so a
    // bad one changes nothing; then neither is proved again (taking one off rewrites only links
    // the proofs followed, to blocks they proved).
    const nsize = this.freeMergeable(n);
    const p = this.freeBefore(h);
    if (p !== 0 && !this.lists.linked(p, h - p)) this.corruptedList(p);
    if (nsize !== 0) {
      this.lists.unlink(n, nsize);
      this.clearStart(n);
      size += nsize;
    }
    if (p !== 0) {
      const prevSize = h - p;
      this.lists.unlink(p, prevSize);
      this.clearStart(h);
      h = p;
      size += prevSize;
    }
    mem[(h >>> 2) + Word.SIZE] = size | Flag.FREE;
    mem[(h + size) >>> 2] = size;
    this.lists.insert(h, size);
    if (trim && h + size === this.top - Block.HEADER && this.trimsAt(size)) this.trimTop(h, size, this.growthStep());
  }

  /** Whether a free block of `size` bytes at the top passes the trim threshold, with what is committed past the blocks. */
  protected trimsAt(size: number): boolean {
    return size + this.committedTop - this.top > this.trimThreshold;
  }

  /**
   * The last recorded block start at or before offset `o` (inside the heap), or -1: a scan of the
   * start bitmap back from `o`, one word for every 512 bytes crossed.
   */
  protected startAtOrBefore(o: number): number {
    // Headers start 8 bytes into a 16-byte granule; bit k of the bitmap is the start at 16k + 8.
    const k = (o - Block.HEADER) >> 4;
    if (k < 0) return -1;
    let w = k >>> 5;
    let bits = this.starts[w]! & (-1 >>> (31 - (k & 31)));
    while (bits === 0) {
      if (w === 0) return -1;
      bits = this.starts[--w]!;
    }
    return (((w << 5) | (31 - Math.clz32(bits))) << 4) + Block.HEADER;
  }

  /** Fills the data of block `h` (`size` bytes), just freed, with FREED_BYTE, past the two list links it keeps there. */
  protected scribbleFreed(h: number, size: number): void {
    this.bytesView.fill(FREED_BYTE, h + Block.HEADER + 8, h + size);
  }

  /** Whether offset `o` is a recorded block start inside the heap. */
  protected isStart(o: number): boolean {
    return (o >>> 0) === o && o < this.top && (o & Flag.MASK) === Block.HEADER && (this.starts[o >>> 9]! & (1 << ((o >>> 4) & 31))) !== 0;
  }

  /**
   * Whether block `h` of `size` bytes ends inside the heap, at a recorded start (or the sentinel)
   * whose header records that size.
   */
  protected sizeAgrees(h: number, size: number): boolean {
    const n = h + size;
    return size >= Block.MIN && n <= this.top - Block.HEADER && this.mem[n >>> 2] === size &&
      (n === this.top - Block.HEADER || this.isStart(n));
  }

  /**
   * Proves the size word of block `h` (a recorded start): its size ends inside the heap at a header
   * that records it. (Its prev size is proved where it is followed, in freeBefore.)
   */
  protected checkHeader(h: number, sizeWord: number): void {
    const size = sizeWord & Flag.SIZE_MASK;
    if (!this.sizeAgrees(h, size)) this.corrupted(h, `its size ${size} does not match the next header's record of it`);
  }

  /**
   * The size of block `n`, a recorded start or the sentinel, when it is free (on a list); 0 when it
   * is in use or cached. A free block whose header does not prove out is corruption.
   */
  protected freeSizeAt(n: number): number {
    const word = this.mem[(n >>> 2) + Word.SIZE]!;
    if ((word & Flag.FREE) === 0) return 0;
    const size = word & Flag.SIZE_MASK;
    if ((word & Flag.MASK) !== Flag.FREE || !this.isStart(n) || !this.sizeAgrees(n, size)) {
      this.corrupted(n, 'a free block\'s header is damaged (was it written after free?)');
    }
    return size;
  }

  /** freeSizeAt(n), with a free block's list links proved too: what a merge with it will follow. */
  protected freeMergeable(n: number): number {
    const size = this.freeSizeAt(n);
    if (size !== 0 && !this.lists.linked(n, size)) this.corruptedList(n);
    return size;
  }

  /** The free block just before block `h`, or 0 when that block is in use, cached or absent. */
  protected freeBefore(h: number): number {
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

  /**
   * The size of block `h`, from the wide cache, once proved: a recorded start whose header says
   * cached, of a size the wide cache takes, that the next header records.
   */
  protected wideSize(h: number): number {
    const word = this.isStart(h) ? this.mem[(h >>> 2) + Word.SIZE]! : 0;
    const size = word & Flag.SIZE_MASK;
    if ((word & Flag.MASK) !== Flag.CACHED || size <= CACHE_MAX_BLOCK || size > CACHE_WIDE_MAX || !this.sizeAgrees(h, size)) {
      this.corrupted(h, 'a block in the wide cache is not a cached block (was it written after free?)');
    }
    return size;
  }

  /** The link of cached block `h`, the head of the cache of class `c`, once proved (see cacheLink). */
  protected cacheNext(h: number, c: number): number {
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
  protected liveWord(h: number, ptr: number, op: string): number {
    if (this.destroyed) throw destroyedError();
    if ((h & Flag.MASK) !== Block.HEADER || (this.starts[h >>> 9]! & (1 << ((h >>> 4) & 31))) === 0) {
      throw invalidPointer(op, ptr);
    }
    const sizeWord = this.mem[(h >>> 2) + Word.SIZE]!;
    this.checkHeader(h, sizeWord);
    if ((sizeWord & (Flag.FREE | Flag.CACHED)) !== 0) throw doubleFree(op, ptr);
    return sizeWord;
  }

  /** The bytes in use that check() must find; undefined where other threads may be changing it. */
  protected countedInUse(): number | undefined {
    return this.inUse;
  }

  /**
   * Bytes the heap holds for the program (stats().mapped): the arena's touched pages with its last
   * one, but those purged, the large mappings, and the pages handed out. Never less than the
   * process holds for it.
   */
  protected mapped(): number {
    const page = this.pageBytes;
    const touched = (this.touchedTop + Block.HEADER + page - 1) & -page;
    const arena = touched < this.top ? touched + page : this.top;
    return arena - this.purgedBytes + this.largeBytes + this.small.committed;
  }

  /** Bytes the heap has committed or mapped, touched or not: what `limit` bounds. */
  protected committed(): number {
    return this.committedTop + this.largeBytes + this.small.committed;
  }

  /**
   * Arena bytes [from, to) are about to be written (a block handed out, a header): the purged
   * pages among them count as held again (the kernel backs them when they are written).
   */
  protected unpurge(from: number, to: number): void {
    if (this.purgedBytes === 0) return;
    const purged = this.purged;
    const shift = this.pageShift;
    const last = Math.min((to - 1) >>> shift, purged.length - 1);
    const before = this.purgedBytes;
    for (let p = from >>> shift; p <= last; p++) {
      if (purged[p] !== 0) {
        purged[p] = 0;
        this.purgedBytes -= this.pageBytes;
      }
    }
    if (this.purgedBytes !== before && this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
  }

  /** Block memory up to `end` of the arena has been handed out: it counts as held from now on. */
  protected touch(end: number): void {
    if (end <= this.touchedTop) return;
    this.touchedTop = end;
    if (this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
  }

  protected corrupted(h: number, what: string): never {
    throw new HeapError('ERR_HEAP_CORRUPTED',
      `heap corrupted at ${hex(this.base + h)}: ${what}`, this.base + h);
  }

  /** A free-list link of `block` (by default, the one the lists last found damaged) is bad. */
  protected corruptedList(block = this.lists.damaged): never {
    return this.corrupted(block, 'its free-list links point outside the heap or disagree (was it written after free?)');
  }
}

export function invalidPointer(op: string, ptr: number): HeapError {
  return new HeapError('ERR_INVALID_POINTER',
    `${op}(${hex(ptr)}): not an address this heap returned (expected the start of a live block's data)`, ptr);
}

export function doubleFree(op: string, ptr: number): HeapError {
  return new HeapError('ERR_DOUBLE_FREE', `${op}(${hex(ptr)}): the block is already free`, ptr);
}
