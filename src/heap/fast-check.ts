// What proves the fast preset's state, and what rebuilds it: check(), which walks every invariant
// of the medium arena (./fast-arena.ts), the small-object pages (./pages.ts) and the counters, and
// throws ERR_HEAP_CORRUPTED at the first that fails; and rebuildArena(), which the shared preset
// calls to remake an arena's free lists, start bits and counts from its blocks after a thread died
// inside a call that was changing them. A layer between the engine (./fast-engine.ts) and FastHeap
// (./fast.ts), which adds what shows the state.
//
// Every walk is bounded by the counts kept in JavaScript and proves each link it reads from
// native memory before it follows it.

import { Block, Flag, Word } from '../layout/fast.js';
import { classOf } from '../strategies/tlsf.js';
import { destroyedError, hex } from './errors.js';
import { CACHE_DEPTH, FastEngine } from './fast-engine.js';
import { CACHE_WIDE_KEEP } from './fast-arena.js';

/** check() and rebuildArena() of the fast preset; FastHeap (./fast.ts) builds on it. */
export abstract class FastCheck extends FastEngine {
  /**
   * How many of the pages marked given back lie inside block `h` of `size` bytes; a marked page
   * that is not wholly inside a free block, past its header and links, is corruption.
   */
  private purgedIn(h: number, size: number, free: boolean): number {
    if (this.purgedBytes === 0) return 0;
    const shift = this.pageShift;
    const inner = (h + Block.MIN + this.pageBytes - 1) >>> shift;
    const last = Math.min((h + size - 1) >>> shift, this.purged.length - 1);
    let n = 0;
    for (let p = h >>> shift; p <= last; p++) {
      if (this.purged[p] === 0) continue;
      if (!free || p < inner || (p + 1) << shift > h + size) this.corrupted(h, `page ${p} is marked given back but holds live memory or a header`);
      n++;
    }
    return n;
  }

  override check(): void {
    if (this.destroyed) throw destroyedError();
    const mem = this.mem;
    const end = this.top - Block.HEADER;
    let used = 0;
    let usedBytes = 0;
    let free = 0;
    let prevSize = 0;
    let prevFree = false;
    let starts = 0;
    let cached = 0;
    let purgedPages = 0;
    for (let h = Block.HEADER; this.top > 0 && h < end;) {
      const word = mem[(h >>> 2) + Word.SIZE]!;
      const size = word & Flag.SIZE_MASK;
      purgedPages += this.purgedIn(h, size, (word & Flag.MASK) === Flag.FREE);
      if ((this.starts[h >>> 9]! & (1 << ((h >>> 4) & 31))) === 0) this.corrupted(h, 'a block starts where none was recorded');
      if (size < Block.MIN || h + size > end) this.corrupted(h, `size ${size} runs past the end of the heap`);
      if (mem[h >>> 2] !== prevSize) this.corrupted(h, `prev size ${mem[h >>> 2]}, expected ${prevSize}`);
      const isFree = (word & Flag.FREE) !== 0;
      const isCached = (word & Flag.CACHED) !== 0;
      if (isFree && prevFree) this.corrupted(h, 'two free neighbours were not merged');
      if ((isFree || isCached) && (word & (Flag.NAMED | Flag.OWNED)) !== 0) this.corrupted(h, 'a free block is flagged as named or owned');
      if (isFree && isCached) this.corrupted(h, 'a block is flagged both free and cached');
      if ((word & Flag.NAMED) !== 0 && !this.names.has(h)) this.corrupted(h, 'a named block has no name');
      if (isFree) free++;
      else if (isCached) cached++;
      else {
        used++;
        usedBytes += size;
      }
      starts++;
      prevFree = isFree;
      prevSize = size;
      h += size;
    }
    if (this.top > 0) {
      if (mem[end >>> 2] !== prevSize || mem[(end >>> 2) + Word.SIZE] !== 0) this.corrupted(end, 'the sentinel header is damaged');
    }
    if (purgedPages * this.pageBytes !== this.purgedBytes) {
      this.corrupted(0, `${purgedPages} pages inside free blocks are marked given back, ${this.purgedBytes} bytes counted`);
    }
    let recorded = 0;
    // The words that cover [0, top): validation looks no further (the shared preset's bitmap is
    // sized for the whole arena).
    const words = Math.min(this.starts.length, Math.ceil(this.top / 512));
    for (let i = 0; i < words; i++) {
      for (let bits = this.starts[i]!; bits !== 0; bits &= bits - 1) recorded++;
    }
    if (recorded !== starts) this.corrupted(0, `${recorded} block starts recorded, ${starts} blocks found`);
    this.checkLists(free);
    this.checkCaches(cached);
    for (const name of this.names.keys()) {
      if (name >= this.top || (mem[(name >>> 2) + Word.SIZE]! & Flag.NAMED) === 0) this.corrupted(name, 'a name is kept for a block that has none');
    }
    let largeBytes = 0;
    for (const block of this.large.values()) largeBytes += block.mapping.size;
    const pageFault = this.small.fault();
    if (pageFault !== undefined) this.corrupted(0, `small-object pages: ${pageFault}`);
    for (const ptr of this.smallNames.keys()) {
      const at = this.small.locate(ptr - this.small.base);
      if (at < 0 || !this.small.isLive(at)) {
        this.corrupted(0, `a name is kept for ${hex(ptr)}, which is not a small block in use`);
      }
    }
    const counted = this.countedInUse();
    const inUse = usedBytes + largeBytes + this.small.usage().bytes;
    if (starts !== this.blockCount || (counted !== undefined && inUse !== counted) || largeBytes !== this.largeBytes) {
      this.corrupted(0, `stats disagree with the walk: ${starts} blocks, ${used} used, ${inUse} bytes in use; ` +
        `counted ${this.blockCount} blocks, ${this.inUse} bytes`);
    }
  }

  /**
   * Rebuilds the medium arena's free lists, start bits, boundary tags and block counts from a walk
   * of its blocks, for the shared preset after a thread died inside a call that was changing them
   * (src/heap/shared.ts). Every change a call makes leaves each header whole, and a block's start
   * bit is set only once its header and the next block's record of its size are written. So a
   * block in use or cached is believed, and kept as it is, only where its start is recorded and the
   * next header records its size; any other range, up to the next recorded start that proves out,
   * was free or was being split or merged, and becomes free. Free neighbours merge. Returns the
   * bytes in use or cached. The arena up to `top` must be read-write.
   */
  protected rebuildArena(): number {
    const mem = this.mem;
    const top = this.top;
    this.lists.clear();
    const words = Math.ceil(top / 512);
    const fresh = new Int32Array(words);
    let blocks = 0;
    let held = 0;
    if (top > 0) {
      const end = top - Block.HEADER;
      let prevSize = 0;
      let freeAt = -1;
      for (let h = Block.HEADER; h < end;) {
        const word = mem[(h >>> 2) + Word.SIZE]!;
        const size = word & Flag.SIZE_MASK;
        const kept = (word & Flag.FREE) === 0 && size >= Block.MIN && h + size <= end && this.isStart(h) && mem[(h + size) >>> 2] === size;
        if (!kept) {
          // Free, or not to be believed: free up to the next recorded start.
          if (freeAt < 0) freeAt = h;
          h = this.nextStart(h + Block.ALIGNMENT, end);
          continue;
        }
        if (freeAt >= 0) {
          prevSize = this.rebuiltFree(freeAt, h - freeAt, prevSize, fresh);
          blocks++;
          freeAt = -1;
        }
        mem[h >>> 2] = prevSize;
        fresh[h >>> 9]! |= 1 << ((h >>> 4) & 31);
        blocks++;
        held += size;
        prevSize = size;
        h += size;
      }
      if (freeAt >= 0) {
        prevSize = this.rebuiltFree(freeAt, end - freeAt, prevSize, fresh);
        blocks++;
      }
      mem[end >>> 2] = prevSize;
      mem[(end >>> 2) + Word.SIZE] = 0;
    }
    // Bits past the top are cleared too, so that nothing there passes for a block.
    const starts = this.starts;
    for (let i = 0; i < starts.length; i++) {
      const bits = i < words ? fresh[i]! : 0;
      if (starts[i] !== bits) starts[i] = bits;
    }
    this.blockCount = blocks;
    return held;
  }

  /** A free block of the rebuild (see rebuildArena): written, recorded in `fresh`, filed. Returns its size. */
  private rebuiltFree(h: number, size: number, prevSize: number, fresh: Int32Array): number {
    this.mem[h >>> 2] = prevSize;
    this.mem[(h >>> 2) + Word.SIZE] = size | Flag.FREE;
    fresh[h >>> 9]! |= 1 << ((h >>> 4) & 31);
    this.lists.insert(h, size);
    return size;
  }

  /** The first recorded block start at or after `from`, before `end`; else `end`. */
  private nextStart(from: number, end: number): number {
    for (let o = from; o < end;) {
      const bits = this.starts[o >>> 9]! >>> ((o >>> 4) & 31);
      if (bits === 0) {
        o = ((o >>> 9) + 1) * 512 + Block.HEADER;
        continue;
      }
      return Math.min(end, o + 16 * (31 - Math.clz32(bits & -bits)));
    }
    return end;
  }

  /** Every cached block is on the cache of its size, each cache within its depth. */
  protected checkCaches(cachedBlocks: number): void {
    const mem = this.mem;
    let total = 0;
    for (let c = 0; c < this.cacheHeads.length; c++) {
      let count = 0;
      for (let b = this.cacheHeads[c]!; b !== 0; b = mem[(b >>> 2) + Word.NEXT_FREE]!) {
        if (!this.isStart(b) || count > CACHE_DEPTH) this.corruptedList(b);
        if (mem[(b >>> 2) + Word.SIZE] !== ((c << 4) | Flag.CACHED)) this.corrupted(b, `a block in the ${c << 4}-byte cache is not a cached block of that size`);
        count++;
      }
      if (count !== this.cacheCounts[c]) this.corrupted(0, `the ${c << 4}-byte cache holds ${count} blocks, counted ${this.cacheCounts[c]}`);
      total += count;
    }
    let large = 0;
    for (let i = 0; i < this.wideCount; i++) {
      const h = this.wide[i]!;
      if (this.wideSize(h) > CACHE_WIDE_KEEP) large++;
      for (let j = 0; j < i; j++) if (this.wide[j] === h) this.corrupted(h, 'a block is in the wide cache twice');
    }
    if (large !== this.wideLarge) this.corrupted(0, `the wide cache holds ${large} blocks past ${CACHE_WIDE_KEEP} bytes, counted ${this.wideLarge}`);
    total += this.wideCount;
    if (total !== cachedBlocks) {
      this.corrupted(0, `${cachedBlocks} cached blocks in the heap, ${total} in the caches`);
    }
  }

  /** Every free block is on the list of its class exactly once, and the bitmaps agree. */
  private checkLists(freeBlocks: number): void {
    const { heads, slMaps } = this.lists;
    const mem = this.mem;
    let listed = 0;
    let flMap = 0;
    for (let i = 0; i < heads.length; i++) {
      const nonEmpty = heads[i] !== 0;
      const bit = (slMaps[i >>> 5]! >>> (i & 31)) & 1;
      if (nonEmpty !== (bit === 1)) this.corrupted(heads[i]!, `class ${i}'s bitmap bit disagrees with its list`);
      if (nonEmpty) flMap |= 1 << (i >>> 5);
      let prev = 0;
      for (let b = heads[i]!; b !== 0; b = mem[(b >>> 2) + 2]!) {
        if (!this.isStart(b) || listed++ > freeBlocks) this.corruptedList(b);
        const word = mem[(b >>> 2) + Word.SIZE]!;
        if ((word & Flag.FREE) === 0) this.corrupted(b, 'a block on a free list is in use');
        if (classOf(word & Flag.SIZE_MASK) !== i) this.corrupted(b, `a block of ${word & Flag.SIZE_MASK} bytes is filed under class ${i}`);
        if (mem[(b >>> 2) + 3] !== prev) this.corrupted(b, 'its prev-free link disagrees with the list');
        prev = b;
      }
    }
    if (flMap !== this.lists.flMap) this.corrupted(0, 'the first-level bitmap disagrees with the lists');
    if (listed !== freeBlocks || listed !== this.lists.count) {
      this.corrupted(0, `${freeBlocks} free blocks in the heap, ${listed} on the lists, ${this.lists.count} counted`);
    }
  }
}
