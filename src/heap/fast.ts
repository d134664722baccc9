// The fast preset, the default, made by `new Heap()` or `new Heap({ preset: 'fast' })`: its engine
// (./fast-engine.ts) and, here, what shows and proves its state: snapshot (every region and block,
// the free lists and caches), stats, and check, which walks every invariant of the medium arena,
// the small-object pages and the counters, and throws ERR_HEAP_CORRUPTED at the first that fails;
// blockAt, which finds the live block an address falls in for bytes() and its kin; and the
// viewer's reads of the same state (view*: regions, blocks in a range, the free list, names,
// counts without walks). Every walk is bounded by the counts and proves each link before it
// follows it.

import { Block, Flag, Word } from '../layout/fast.js';
import { CLASS_SIZE, CLASS_SLOTS, Page, isLiveMark } from '../layout/pages.js';
import { classOf } from '../strategies/tlsf.js';
import { destroyedError, hex } from './errors.js';
import { doubleFree, invalidPointer } from './fast-arena.js';
import { CACHE_DEPTH, FastEngine } from './fast-engine.js';
import { VIEW_CACHED, VIEW_FREE, VIEW_USED } from './heap.js';
import type { BlockInfo, HeapSnapshot, HeapStats, RegionInfo } from './types.js';

export { CACHE_CLASSES, CACHE_MAX_BLOCK, CACHE_MAX_REQUEST, SCRIBBLE_BYTE, TRIM_MIN } from './fast-engine.js';

const classSize = CLASS_SIZE;
const classSlots = CLASS_SLOTS;

/** The fast preset, the default. Made by `new Heap()` or `new Heap({ preset: 'fast' })`. */
export class FastHeap extends FastEngine {
  /** @internal See HeapOperations. */
  override blockAt(ptr: number, op: string): number {
    if (this.destroyed) throw destroyedError();
    const small = this.small;
    const o = ptr - small.base;
    if (o >= 0 && o < small.top) {
      // A slot's start, the usual address, by its mark alone; any other by its page's slot size.
      const g = (o & 15) === 0 && isLiveMark(small.marks[o >>> Page.GRANULE_SHIFT]!) ? o >>> Page.GRANULE_SHIFT : small.slotAt(o);
      const start = small.base + (g << Page.GRANULE_SHIFT);
      if (g >= 0 && small.isLive(g)) {
        this.foundEnd = start + small.slotSize(o >>> Page.SHIFT);
        return start;
      }
      // The start of a freed block is a use after free; any other address is no block's.
      throw g >= 0 && start === ptr ? doubleFree(op, ptr) : invalidPointer(op, ptr);
    }
    const d = ptr - this.base;
    if (d >= 2 * Block.HEADER && d < this.top) {
      // The block whose data holds `ptr`, if any: the block found last, when the address falls in
      // it and it is still the same live block (its start recorded, its size word unchanged, so no
      // start lies inside it); else the last recorded start at or before the header that would
      // precede `ptr` (an address in a header finds the block before it, and fails).
      let h = this.lastSpan;
      if (h === 0 || d < h + Block.HEADER || d >= h + (this.lastSpanWord & Flag.SIZE_MASK) || !this.isStart(h) ||
          this.mem[(h >>> 2) + Word.SIZE] !== this.lastSpanWord) {
        h = this.startAtOrBefore(d - Block.HEADER);
      }
      if (h >= Block.HEADER) {
        const word = this.mem[(h >>> 2) + Word.SIZE]!;
        if (h + Block.HEADER !== d && (word & (Flag.FREE | Flag.CACHED)) !== 0) this.checkHeader(h, word);
        else if (d < h + (this.liveWord(h, ptr, op) & Flag.SIZE_MASK)) {
          this.lastSpan = h;
          this.lastSpanWord = word;
          this.foundEnd = this.base + h + (word & Flag.SIZE_MASK);
          return this.base + h + Block.HEADER;
        }
      }
      throw invalidPointer(op, ptr);
    }
    for (const [start, block] of this.large) {
      if (ptr >= start && ptr < start + block.mapping.size) {
        this.foundEnd = start + block.mapping.size;
        return start;
      }
    }
    throw this.notLarge(ptr, op);
  }

  /** @internal See HeapOperations. */
  override rawBytes(start: number, ptr: number, n: number): Uint8Array {
    const o = ptr - this.small.base;
    if (o >= 0 && o < this.small.top) return this.small.bytes.subarray(o, o + n);
    const d = ptr - this.base;
    if (d >= 0 && d < this.top) return this.bytesView.subarray(d, d + n);
    return this.largeView(this.large.get(start)!).subarray(ptr - start, ptr - start + n);
  }

  /** The blocks of the heap in address order (without the sentinel). */
  protected heapBlocks(): BlockInfo[] {
    const blocks: BlockInfo[] = [];
    const end = this.top - Block.HEADER;
    for (let h = Block.HEADER; h < end;) {
      const word = this.mem[(h >>> 2) + Word.SIZE]!;
      const size = word & Flag.SIZE_MASK;
      if (!this.isStart(h)) this.corrupted(h, 'a block starts where none was recorded');
      if (size < Block.MIN || h + size > end) this.corrupted(h, `size ${size} runs past the end of the heap`);
      const free = (word & (Flag.FREE | Flag.CACHED)) !== 0;
      blocks.push({ address: this.base + h, size, free, name: free ? '' : this.names.get(h) ?? '' });
      h += size;
    }
    return blocks;
  }

  /** Each committed page of the small arena as a region: its slots, or one free block for a pooled page. */
  protected smallRegions(): RegionInfo[] {
    const small = this.small;
    const regions: RegionInfo[] = [];
    for (const page of small.pages()) {
      const c = small.classOf(page);
      if (c === Page.GIVEN_BACK) continue;
      const address = small.base + page * Page.BYTES;
      if (c === 0) {
        regions.push({ address, size: Page.BYTES, blocks: [{ address, size: Page.BYTES, free: true, name: '' }] });
        continue;
      }
      const size = classSize[c]!;
      const blocks: BlockInfo[] = [];
      for (let slot = 0; slot < classSlots[c]!; slot++) {
        const at = address + slot * size;
        const free = !small.isLive(small.locate(at - small.base));
        blocks.push({ address: at, size, free, name: free ? '' : this.smallNames.get(at) ?? '' });
      }
      regions.push({ address, size: Page.BYTES, blocks });
    }
    return regions;
  }

  override snapshot(): HeapSnapshot {
    if (this.destroyed) throw destroyedError();
    const regions: RegionInfo[] = [];
    if (this.top > 0) regions.push({ address: this.base, size: this.top, blocks: this.heapBlocks() });
    regions.push(...this.smallRegions());
    for (const block of this.large.values()) {
      const { address, size } = block.mapping;
      regions.push({ address, size, blocks: [{ address, size, free: false, name: block.name }] });
    }
    const freeList: number[] = [];
    this.viewFreeList(freeList);
    return { regions, freeList };
  }

  /** @internal See HeapOperations: the lists in class order, then the caches, then the wide cache. */
  override viewFreeList(out: number[]): void {
    const { heads, count } = this.lists;
    const first = out.length;
    for (let i = 0; i < heads.length; i++) {
      for (let b = heads[i]!; b !== 0; b = this.mem[(b >>> 2) + Word.NEXT_FREE]!) {
        if (out.length - first >= count || !this.lists.isFreeIn(b, i)) this.corruptedList(b);
        out.push(this.base + b);
      }
    }
    for (let c = 0; c < this.cacheHeads.length; c++) {
      for (let b = this.cacheHeads[c]!, left = this.cacheCounts[c]! - 1; b !== 0; left--) {
        out.push(this.base + b);
        b = this.cacheLink(b, c, left);
      }
    }
    for (let i = 0; i < this.wideCount; i++) out.push(this.base + this.wide[i]!);
  }

  /** @internal See HeapOperations: stats() without the walk of the pages it makes for usedBlocks. */
  override viewCounts(out: number[]): void {
    const small = this.small;
    out.push((this.top > 0 ? 1 : 0) + this.large.size + small.pagesInUse + small.pooledPages,
      this.blockCount + this.large.size + small.slotsInPages + small.pooledPages, this.inUse, this.mapped(),
      this.top + (small.pagesInUse + small.pooledPages) * Page.BYTES + this.largeBytes);
  }

  /** @internal See HeapOperations: the small pages' log of pages that changed. */
  override viewRegionLog(): number[] {
    this.small.changes ??= [];
    return this.small.changes;
  }

  /** @internal See HeapOperations: a free block has none. */
  override viewName(address: number): string {
    const o = address - this.small.base;
    if (o >= 0 && o < this.small.top) return this.smallNames.get(address) ?? '';
    if (address >= this.base && address < this.base + this.top) return this.names.get(address - this.base) ?? '';
    return this.large.get(address)?.name ?? '';
  }

  /** @internal See HeapOperations. */
  override viewCached(): number {
    return this.cachedBlocks();
  }

  /** @internal See HeapOperations: the arena, the small pages in use or pooled, the large blocks. */
  override viewRegions(out: number[]): void {
    if (this.destroyed) throw destroyedError();
    const small = this.small;
    // The arena and the large blocks (few), sorted, merged with the pages (in address order).
    const others: number[][] = [];
    if (this.top > 0) others.push([this.base, this.top, Block.HEADER, this.blockCount]);
    for (const block of this.large.values()) others.push([block.mapping.address, block.mapping.size, 0, 1]);
    others.sort((a, b) => a[0]! - b[0]!);
    let o = 0;
    const end = small.fresh >>> Page.SHIFT;
    for (let page = small.firstPage; page < end; page++) {
      const c = small.classOf(page);
      if (c === Page.GIVEN_BACK) continue;
      const address = small.base + page * Page.BYTES;
      while (o < others.length && others[o]![0]! < address) out.push(...others[o++]!);
      out.push(address, Page.BYTES, 0, c === 0 ? 1 : classSlots[c]!);
    }
    while (o < others.length) out.push(...others[o++]!);
  }

  /** @internal See HeapOperations. */
  override viewRegionAt(address: number, out: number[]): boolean {
    if (this.destroyed) throw destroyedError();
    const small = this.small;
    const o = address - small.base;
    if (o >= 0 && o < small.top) {
      const page = o >>> Page.SHIFT;
      if (page < small.firstPage || page >= small.fresh >>> Page.SHIFT || small.classOf(page) === Page.GIVEN_BACK) return false;
      out.push(small.base + page * Page.BYTES, Page.BYTES, 0);
      return true;
    }
    if (address >= this.base && address < this.base + this.top) {
      out.push(this.base, this.top, Block.HEADER);
      return true;
    }
    for (const block of this.large.values()) {
      const { address: start, size } = block.mapping;
      if (address >= start && address < start + size) {
        out.push(start, size, 0);
        return true;
      }
    }
    return false;
  }

  /** @internal See HeapOperations. */
  override viewBlocks(lo: number, hi: number, out: number[]): void {
    if (this.destroyed) throw destroyedError();
    const small = this.small;
    const o = lo - small.base;
    if (o >= 0 && o < small.top) {
      const page = o >>> Page.SHIFT;
      const at = small.base + page * Page.BYTES;
      const c = small.classOf(page);
      if (c === Page.GIVEN_BACK) return;
      if (c === 0) {
        out.push(at, Page.BYTES, VIEW_FREE);
        return;
      }
      const size = classSize[c]!;
      const first = Math.max(0, Math.floor((lo - at) / size));
      for (let slot = first; slot < classSlots[c]! && at + slot * size < hi; slot++) {
        const g = small.locate(at + slot * size - small.base);
        out.push(at + slot * size, size, small.isLive(g) ? VIEW_USED : VIEW_FREE);
      }
      return;
    }
    const d = lo - this.base;
    if (d >= 0 && d < this.top) {
      const end = this.top - Block.HEADER;
      let h = this.startAtOrBefore(Math.max(d, Block.HEADER));
      if (h < 0) h = Block.HEADER;
      for (; h < end && this.base + h < hi;) {
        const word = this.mem[(h >>> 2) + Word.SIZE]!;
        const size = word & Flag.SIZE_MASK;
        if (!this.isStart(h)) this.corrupted(h, 'a block starts where none was recorded');
        if (size < Block.MIN || h + size > end) this.corrupted(h, `size ${size} runs past the end of the heap`);
        if (this.base + h + size > lo) {
          out.push(this.base + h, size, (word & Flag.CACHED) !== 0 ? VIEW_CACHED : (word & Flag.FREE) !== 0 ? VIEW_FREE : VIEW_USED);
        }
        h += size;
      }
      return;
    }
    for (const block of this.large.values()) {
      const { address, size } = block.mapping;
      if (lo >= address && lo < address + size) out.push(address, size, VIEW_USED);
    }
  }

  override stats(): HeapStats {
    if (this.destroyed) throw destroyedError();
    const mapped = this.mapped();
    const cached = this.cachedBlocks();
    const small = this.small;
    const smallUsage = small.usage();
    return {
      mapped,
      peakMapped: this.peakMapped,
      inUse: this.inUse,
      peakInUse: this.peakInUse,
      freeBytes: mapped - this.inUse,
      blocks: this.blockCount + this.large.size + small.slotsInPages + small.pooledPages,
      usedBlocks: this.blockCount - this.lists.count - cached + this.large.size + smallUsage.slots,
      freeBlocks: this.lists.count + cached + small.slotsInPages - smallUsage.slots + small.pooledPages,
      regions: (this.top > 0 ? 1 : 0) + this.large.size + small.pagesInUse + small.pooledPages,
      mmapCalls: this.mmapCalls + small.mmapCalls,
      munmapCalls: this.munmapCalls + small.munmapCalls,
    };
  }

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
    for (let i = 0; i < this.wideCount; i++) {
      const h = this.wide[i]!;
      this.wideSize(h);
      for (let j = 0; j < i; j++) if (this.wide[j] === h) this.corrupted(h, 'a block is in the wide cache twice');
    }
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
